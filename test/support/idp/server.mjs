#!/usr/bin/env node
// CLI: node test/support/idp/server.mjs --pki DIR [--port 0] [--host 127.0.0.1] [--ready-file FILE] [--fixtures FILE] [--quiet]
// Writes FILE atomically with {"url","port","pid"} once listening; exits cleanly on SIGTERM/SIGINT.
import { writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startIdp } from './index.mjs';

function usage(msg) {
  if (msg) process.stderr.write(`idp: ${msg}\n`);
  process.stderr.write(
    'usage: node test/support/idp/server.mjs --pki DIR [--port 0] [--host 127.0.0.1] [--ready-file FILE] [--fixtures FILE] [--quiet]\n',
  );
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      pki: { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'ready-file': { type: 'string' },
      fixtures: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (e) {
  usage(e.message);
}
if (args.help) usage();
if (!args.pki) usage('--pki DIR is required');
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad --port '${args.port}'`);

const idp = await startIdp({
  pkiDir: args.pki,
  port,
  host: args.host,
  fixtures: args.fixtures,
  log: !args.quiet,
});

const info = { url: idp.url, port: idp.port, pid: process.pid };
if (args['ready-file']) {
  const tmp = `${args['ready-file']}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(info) + '\n');
  renameSync(tmp, args['ready-file']);
}
process.stderr.write(`[idp] listening on ${idp.url} (pid ${process.pid})\n`);

let closing = false;
const shutdown = (sig) => {
  if (closing) return;
  closing = true;
  process.stderr.write(`[idp] ${sig}: shutting down\n`);
  const t = setTimeout(() => process.exit(0), 3000);
  t.unref();
  idp.close().then(() => process.exit(0));
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

#!/usr/bin/env node
// CLI: node test/support/graph/server.mjs --pki DIR --idp URL --smtp-port N --imaps-port N [--port 0] [--ready-file FILE] [--quiet]
// Writes FILE atomically with {"url","port","pid"} once listening; exits cleanly on SIGTERM/SIGINT.
import { writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startGraph } from './index.mjs';

const { values: a } = parseArgs({
  options: {
    pki: { type: 'string' },
    idp: { type: 'string' },
    'smtp-port': { type: 'string' },
    'imaps-port': { type: 'string' },
    port: { type: 'string', default: '0' },
    'ready-file': { type: 'string' },
    fixtures: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});
if (!a.pki || !a.idp || !a['smtp-port'] || !a['imaps-port']) {
  process.stderr.write(
    'usage: node test/support/graph/server.mjs --pki DIR --idp URL --smtp-port N --imaps-port N [--port 0] [--ready-file FILE] [--quiet]\n',
  );
  process.exit(2);
}
const g = await startGraph({
  pkiDir: a.pki,
  idpUrl: a.idp,
  smtpPort: Number(a['smtp-port']),
  imapsPort: Number(a['imaps-port']),
  port: Number(a.port),
  fixtures: a.fixtures,
  log: !a.quiet,
});
if (a['ready-file']) {
  const tmp = `${a['ready-file']}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ url: g.url, port: g.port, pid: process.pid }) + '\n');
  renameSync(tmp, a['ready-file']);
}
process.stderr.write(`[graph] listening on ${g.url} (pid ${process.pid})\n`);
let closing = false;
const shutdown = (sig) => {
  if (closing) return;
  closing = true;
  process.stderr.write(`[graph] ${sig}: shutting down\n`);
  setTimeout(() => process.exit(0), 3000).unref();
  g.close().then(() => process.exit(0));
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

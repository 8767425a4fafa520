#!/usr/bin/env node
// Fetch benchmark: 5,000 messages of about 20 KB downloaded to .eml files by `oauthmail fetch`'s
// code (dist/mail/fetch/: batches, fsync per file, state file) against a plain imapflow script
// (one FETCH 1:* of BODY[], fs.writeFile per message, no fsync), in the same run, against the same
// Dovecot folder. Each side runs in a fresh child process, alternating, 3 rounds; medians compared.
// Target: oauthmail's throughput >= 0.9x the plain script's. Prints JSON on stdout, the ratio on stderr.
// Needs the local stack (source .stack/env, or run through test/support/with-stack.sh); run `npm run build` first.
import { spawnSync } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
if (env.OAUTHMAIL_STACK !== '1' || !env.IMAPS_PORT) {
  process.stderr.write(
    'bench/fetch.mjs needs the local mail stack: source .stack/env (test/support/stack/start.sh) first\n',
  );
  process.exit(2);
}
const COUNT = Number(env.BENCH_FETCH_COUNT ?? 5000);
const SIZE = 20 * 1024;
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const USER = 'bob@contoso.test';

function mint() {
  const key = readFileSync(path.join(env.STACK_PKI_DIR, 'jwt-key.pem'));
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const h = b64({ alg: 'RS256', typ: 'JWT', kid: env.STACK_JWT_KID });
  const p = b64({
    iss: env.STACK_MS_ISSUER,
    sub: 'bench',
    email: USER,
    scope: 'IMAP.AccessAsUser.All',
    iat: now,
    exp: now + 3600,
  });
  return `${h}.${p}.${createSign('RSA-SHA256').update(`${h}.${p}`).sign(key).toString('base64url')}`;
}

function message(i) {
  const head = `From: Bench <bench@fabrikam.test>\r\nTo: ${USER}\r\nSubject: bench ${i}\r\nMessage-ID: <${i}.${randomBytes(4).toString('hex')}@bench>\r\nDate: Thu, 20 Nov 2025 10:00:00 +0000\r\n\r\n`;
  const line = randomBytes(57).toString('base64') + '\r\n';
  let body = '';
  while (head.length + body.length + line.length <= SIZE) body += line;
  return Buffer.from(head + body);
}

const connect = async () => {
  const c = new ImapFlow({
    host: 'localhost',
    port: Number(env.IMAPS_PORT),
    secure: true,
    auth: { user: USER, accessToken: mint() },
    logger: false,
    disableAutoIdle: true,
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
};

// --- set up the folder (4 connections appending in parallel) ---
const admin = await connect();
const folder = `bench-fetch-${Date.now().toString(36)}`;
await admin.mailboxCreate(folder);
process.stderr.write(`bench fetch: appending ${COUNT} messages of ~${SIZE / 1024} KB to ${USER}/${folder}\n`);
const t0 = Date.now();
await Promise.all(
  [0, 1, 2, 3].map(async (w) => {
    const c = w === 0 ? admin : await connect();
    for (let i = w; i < COUNT; i += 4) await c.append(folder, message(i));
    if (w !== 0) await c.logout();
  }),
);
process.stderr.write(`bench fetch: set up in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

const BASELINE = `
import { ImapFlow } from 'imapflow';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
const [cfg] = process.argv.slice(1); const c = JSON.parse(cfg);
const t = process.hrtime.bigint();
const client = new ImapFlow({ host: 'localhost', port: c.port, secure: true, auth: { user: c.user, accessToken: c.token }, logger: false });
await client.connect();
const lock = await client.getMailboxLock(c.folder);
let n = 0, bytes = 0;
for await (const m of client.fetch('1:*', { uid: true, source: true })) {
  await fsp.writeFile(path.join(c.out, m.uid + '.eml'), m.source);
  n++; bytes += m.source.length;
}
lock.release();
await client.logout();
process.stdout.write(JSON.stringify({ n, bytes, ms: Number(process.hrtime.bigint() - t) / 1e6 }));
`;
const OURS = `
const [cfg] = process.argv.slice(1); const c = JSON.parse(cfg);
const t = process.hrtime.bigint();
const { connectImap, closeImap } = await import(c.root + '/dist/mail/imap.js');
const { fetchMessages } = await import(c.root + '/dist/mail/fetch/index.js');
const { staticTokenSource } = await import(c.root + '/dist/mail/token-source.js');
const profile = { imap: { host: 'localhost', port: c.port, security: 'tls' }, sasl: 'auto' };
const { client } = await connectImap(profile, staticTokenSource(c.user, c.token), {});
const s = await fetchMessages(client, { mailbox: c.folder, out: c.out, format: 'eml', filters: {}, account: c.user });
await closeImap(client);
process.stdout.write(JSON.stringify({ n: s.fetched, bytes: s.bytes, ms: Number(process.hrtime.bigint() - t) / 1e6 }));
`;

function run(kind) {
  const out = mkdtempSync(path.join(os.tmpdir(), `oauthmail-bench-${kind}-`));
  try {
    const cfg = JSON.stringify({
      root: ROOT,
      port: Number(env.IMAPS_PORT),
      user: USER,
      token: mint(),
      folder,
      out,
    });
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', kind === 'baseline' ? BASELINE : OURS, cfg],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env,
      },
    );
    if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout);
    if (res.n !== COUNT) throw new Error(`${kind} fetched ${res.n} of ${COUNT}`);
    return res;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = [];
const ours = [];
try {
  run('baseline'); // warm-up: Dovecot's caches and the page cache
  for (let i = 0; i < ROUNDS; i++) {
    base.push(run('baseline').ms);
    ours.push(run('ours').ms);
  }
} finally {
  await admin.mailboxDelete(folder).catch(() => undefined);
  await admin.logout().catch(() => undefined);
}
const bMs = median(base);
const oMs = median(ours);
const ratio = bMs / oMs; // throughput ratio: ours / baseline
const result = {
  bench: 'fetch',
  messages: COUNT,
  messageBytes: SIZE,
  baselineMs: base.map(Math.round),
  oauthmailMs: ours.map(Math.round),
  baselineMsgsPerSec: Math.round((COUNT / bMs) * 1000),
  oauthmailMsgsPerSec: Math.round((COUNT / oMs) * 1000),
  ratio: Number(ratio.toFixed(3)),
  target: 0.9,
  ok: ratio >= 0.9,
};
process.stdout.write(JSON.stringify(result) + '\n');
process.stderr.write(
  `bench fetch: oauthmail ${result.oauthmailMsgsPerSec} msg/s vs plain imapflow ${result.baselineMsgsPerSec} msg/s: ratio ${result.ratio} (target >= 0.9) ${result.ok ? 'OK' : 'MISSED'}\n`,
);
process.exitCode = result.ok ? 0 : 1;

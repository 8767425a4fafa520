#!/usr/bin/env node
// Start-up benchmark (needs the local stack: run through `npm run bench`). Median wall time of
// whole processes, each against `node -e 0` measured in the same run, interleaved so that machine
// noise hits both sides alike:
//   --version                 target: none (reported)
//   token (file store)        cached valid token; target ≤ 2.0 × node -e 0
//   token (keychain)          cached valid token in gnome-keyring; target ≤ 2.0 × node -e 0
//   send --dry-run            reported
// Prints one JSON line per case and exits 1 when a target is missed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'oauthmail.js');
const env = process.env;
if (env.OAUTHMAIL_STACK !== '1' || !env.IDP_URL) {
  console.error('bench/startup.mjs needs the local stack: run it through `npm run bench`');
  process.exit(2);
}
const REPEAT = Number(env.BENCH_REPEAT ?? 21);
const fixtures = JSON.parse(readFileSync(path.join(ROOT, 'test/support/fixtures.json'), 'utf8'));
const TID = fixtures.microsoft.tenantId;
const CLIENT = fixtures.microsoft.clients[0].clientId;
const USER = 'alice@contoso.test';
const dir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-bench-start-'));
const cliEnv = {
  ...env,
  OAUTHMAIL_CONFIG_DIR: path.join(dir, 'config'),
  OAUTHMAIL_DATA_DIR: path.join(dir, 'data'),
  OAUTHMAIL_PROFILE: '',
  NO_COLOR: '1',
  DISPLAY: '',
  BROWSER: '',
};

function admin(p, json) {
  return new Promise((resolve, reject) => {
    const r = https.request(
      new URL(`/_admin/${p}`, env.IDP_URL),
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    r.on('error', reject);
    r.end(JSON.stringify(json));
  });
}

function run(args, input = '') {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(process.execPath, args, { env: cliEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out, err, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    c.stdin.end(input);
  });
}

async function signIn(name, storage) {
  const add = await run([
    BIN,
    'profile',
    'add',
    name,
    '--client-id',
    CLIENT,
    '--authority',
    `${env.IDP_URL}/${TID}/`,
    '--user',
    USER,
    '--storage',
    storage,
  ]);
  if (add.code !== 0) throw new Error(add.err);
  const child = spawn(process.execPath, [BIN, 'login', name, '--device'], {
    env: cliEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end();
  let err = '';
  const code = await new Promise((resolve) =>
    child.stderr.on('data', (d) => {
      err += d;
      const m = /enter the code:? (\S+)/i.exec(err);
      if (m) resolve(m[1]);
    }),
  );
  await admin('device', { user_code: code, action: 'approve', user: USER });
  const exit = await new Promise((r) => child.on('close', r));
  if (exit !== 0) throw new Error(`login ${name} failed: ${err}`);
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

await admin('config', { deviceCodeInterval: 1, accessTokenLifetime: 3600 });
await signIn('file', 'file');
await signIn('keychain', 'keychain');

const cases = [
  { name: '--version', args: [BIN, '--version'] },
  { name: 'token (file store)', args: [BIN, 'token', 'file'], target: 2.0 },
  { name: 'token (keychain)', args: [BIN, 'token', 'keychain'], target: 2.0 },
  {
    name: 'send --dry-run',
    args: [BIN, '-p', 'file', 'send', '--dry-run', '--to', 'bob@contoso.test', '-s', 'bench', '--body', 'hi'],
  },
];
// warm up the page cache and the IdP (first token call may refresh nothing, but loads files)
for (const c of cases) {
  const r = await run(c.args);
  if (r.code !== 0) throw new Error(`${c.name} failed (${r.code}): ${r.err}`);
}
const base = [];
const times = Object.fromEntries(cases.map((c) => [c.name, []]));
for (let i = 0; i < REPEAT; i++) {
  base.push((await run(['-e', '0'])).ms);
  for (const c of cases) {
    const r = await run(c.args);
    if (r.code !== 0) throw new Error(`${c.name} failed (${r.code}): ${r.err}`);
    times[c.name].push(r.ms);
  }
}
const baseMs = median(base);
let missed = 0;
for (const c of cases) {
  const ms = median(times[c.name]);
  const ratio = ms / baseMs;
  const ok = c.target === undefined || ratio <= c.target;
  if (!ok) missed++;
  console.log(
    JSON.stringify({
      bench: 'startup',
      case: c.name,
      medianMs: +ms.toFixed(1),
      nodeMedianMs: +baseMs.toFixed(1),
      ratio: +ratio.toFixed(2),
      want: c.target === undefined ? 'report' : `<= ${c.target}`,
      ok,
    }),
  );
  process.stderr.write(
    `startup: ${c.name.padEnd(20)} ${ms.toFixed(0).padStart(5)} ms = ${ratio.toFixed(2)} × node -e 0 (${baseMs.toFixed(0)} ms)${c.target ? `, want ≤ ${c.target}` : ''}${ok ? '' : '  MISSED'}\n`,
  );
}
process.exitCode = missed ? 1 : 0;

// What the CLI benches (send.mjs, startup.mjs) share: the stack check, a private CLI home, runs
// timed as whole processes, the fake identity provider's admin API, and a Microsoft profile signed
// in by device code. Not a bench itself: bench/run.mjs skips this file.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin', 'oauthmail.js');
export const env = process.env;
const fixtures = JSON.parse(readFileSync(path.join(ROOT, 'test/support/fixtures.json'), 'utf8'));
export const TID = fixtures.microsoft.tenantId;
export const CLIENT = fixtures.microsoft.clients[0].clientId;
export const USER = 'alice@contoso.test';

/** Exit 2 with `message` unless the local stack's environment (and each of `vars`) is set. */
export function needStack(message, vars = []) {
  if (env.OAUTHMAIL_STACK !== '1' || vars.some((v) => !env[v])) {
    console.error(message);
    process.exit(2);
  }
}

/** A fresh config and data folder (under a temporary `prefix…` folder) and the CLI's environment. */
export function cliHome(prefix) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const cliEnv = {
    ...env,
    OAUTHMAIL_CONFIG_DIR: path.join(dir, 'config'),
    OAUTHMAIL_DATA_DIR: path.join(dir, 'data'),
    OAUTHMAIL_PROFILE: '',
    NO_COLOR: '1',
    DISPLAY: '',
    BROWSER: '',
  };
  return { dir, cliEnv };
}

/** `run(cmd, args, input)` in `cliEnv`: exit code, stdout, stderr and wall time in ms. */
export function runner(cliEnv) {
  return (cmd, args, input = '') =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const c = spawn(cmd, args, { env: cliEnv, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('error', reject);
      c.on('close', (code) => resolve({ code, out, err, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
      c.stdin.end(input);
    });
}

/** The fake identity provider's admin API (IDP_URL): POST with a body, GET without. */
export function admin(p, json) {
  const url = new URL(`/_admin/${p}`, env.IDP_URL);
  const body = json === undefined ? undefined : JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const r = https.request(
      url,
      { method: body ? 'POST' : 'GET', headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let t = '';
        res.on('data', (c) => (t += c));
        res.on('end', () => resolve({ status: res.statusCode, json: t ? JSON.parse(t) : undefined }));
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

export const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/**
 * `oauthmail profile add NAME` for the public client (mailbox USER, with `extra` options), then
 * `oauthmail login NAME --device` approved at the IdP. Throws when either fails. The IdP should
 * have `deviceCodeInterval: 1`.
 */
export async function signIn(cliEnv, name, extra) {
  const add = await runner(cliEnv)(process.execPath, [
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
    ...extra,
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

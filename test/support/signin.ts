/**
 * A private fake Entra ID for one test file, signed with the stack's keys (so that the local
 * Postfix/Dovecot accept its tokens), plus the steps most CLI tests repeat: add a Microsoft
 * profile, sign it in with a device code approved through the admin API, call the admin API.
 *
 * Each file gets its own IdP so that `/_admin/reset` and `/_admin/stats` in one file never see
 * another file's traffic.
 */
import https from 'node:https';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdp, type IdpHandle } from './idp/index.mjs';
import { BIN, type CliHome, type CliResult } from './cli.js';
import { fixtures, idpRequest } from './stack-env.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- IdP JSON answers, checked by the assertions
export type Json = any;
export { fixtures };
export const TID: string = fixtures.microsoft.tenantId;
export const PUBLIC_CLIENT: string = fixtures.microsoft.clients[0]!.clientId;
export const ALICE: { upn: string; password: string } = fixtures.microsoft.users[0]!;

export interface TestIdp {
  idp: IdpHandle;
  url: string;
  admin(path: string, json?: unknown, method?: string): Promise<{ status: number; json: Json }>;
  close(): Promise<void>;
}

/** Start a private IdP on the stack's PKI (needs test/support/with-stack.sh). */
export async function startTestIdp(): Promise<TestIdp> {
  const pkiDir = process.env.STACK_PKI_DIR;
  if (!pkiDir) throw new Error('STACK_PKI_DIR is not set: run the tests through test/support/with-stack.sh');
  const ca = readFileSync(join(pkiDir, 'ca.pem'), 'utf8');
  const idp = await startIdp({ pkiDir });
  const admin: TestIdp['admin'] = (path, json, method) =>
    new Promise((resolve, reject) => {
      const body = json === undefined ? undefined : JSON.stringify(json);
      const r = https.request(
        new URL(`/_admin/${path}`, idp.url),
        {
          method: method ?? (body ? 'POST' : 'GET'),
          ca,
          headers: body ? { 'content-type': 'application/json' } : {},
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => {
            let j: unknown;
            try {
              j = text ? JSON.parse(text) : undefined;
            } catch {
              j = undefined;
            }
            resolve({ status: res.statusCode ?? 0, json: j });
          });
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  return { idp, url: idp.url, admin, close: () => idp.close() };
}

/**
 * `oauthmail profile add NAME` for the public client at the test IdP, file storage by default.
 * `h` may be a file's own recorded runner (`{ run: cli }`) so that the run joins its transcript.
 */
export async function addMicrosoftProfile(
  h: Pick<CliHome, 'run'>,
  name: string,
  idpUrl: string,
  extra: string[] = [],
): Promise<CliResult> {
  const storage = extra.includes('--storage') ? [] : ['--storage', 'file'];
  return h.run([
    'profile',
    'add',
    name,
    '--client-id',
    PUBLIC_CLIENT,
    '--authority',
    `${idpUrl}/${TID}/`,
    '--user',
    ALICE.upn,
    ...storage,
    ...extra,
  ]);
}

/** The custom (OpenID Connect) client and user of the fixtures, as the test IdP's /custom knows them. */
export const CUSTOM_CLIENT = fixtures.google.clients[0] as { clientId: string; secret: string };
export const CAROL = fixtures.google.users[0] as { email: string; password: string };

/**
 * `oauthmail profile add NAME --provider custom` for the fixtures' confidential client at an issuer
 * (the client secret on stdin; no --issuer when `extra` gives the endpoints), file storage unless
 * `extra` names one. `h` as for addMicrosoftProfile.
 */
export async function addCustomProfile(
  h: Pick<CliHome, 'run'>,
  name: string,
  issuer: string | undefined,
  extra: string[] = [],
): Promise<CliResult> {
  const storage = extra.includes('--storage') ? [] : ['--storage', 'file'];
  return h.run(
    [
      'profile',
      'add',
      name,
      '--provider',
      'custom',
      ...(issuer ? ['--issuer', issuer] : []),
      '--client-id',
      CUSTOM_CLIENT.clientId,
      '--client-type',
      'secret',
      '--client-secret-stdin',
      '--scopes',
      'mail',
      '--user',
      CAROL.email,
      ...storage,
      ...extra,
    ],
    { input: CUSTOM_CLIENT.secret },
  );
}

/**
 * A private test IdP for the calling file: started before its tests, reset before each (device
 * codes polled every second), closed after. Returns a getter (the IdP exists once beforeAll ran).
 */
export function usePrivateIdp(): () => TestIdp {
  let t: TestIdp | undefined;
  beforeAll(async () => {
    t = await startTestIdp();
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(async () => {
    expect((await t!.admin('reset', {})).status).toBe(200);
    expect((await t!.admin('config', { deviceCodeInterval: 1 })).status).toBe(200);
  });
  return () => t!;
}

/**
 * `oauthmail login NAME --device`, approved at the IdP as soon as the code shows on stderr.
 * The IdP should have `deviceCodeInterval: 1` for speed.
 */
export function signInDevice(
  h: CliHome,
  profile: string,
  idp: Pick<TestIdp, 'admin'>,
  user: string = ALICE.upn,
  timeoutMs = 60_000,
  extraArgs: string[] = [],
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [h.bin ?? BIN, 'login', profile, '--device', ...extraArgs], {
      env: h.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end();
    let stdout = '';
    let stderr = '';
    let approved = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /enter the code: (\S+)/.exec(stderr);
      if (m && !approved) {
        approved = true;
        idp.admin('device', { user_code: m[1], action: 'approve', user }).catch(reject);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * `oauthmail login PROFILE --device` at the stack's shared IdP (test/support/with-stack.sh), for a
 * beforeAll: the code must show on stderr within 20 s, its approval for `user` through
 * `/_admin/device` must answer 200, and the login must exit 0. The IdP should have
 * `deviceCodeInterval: 1` for speed.
 */
export async function signInDeviceAtStack(h: CliHome, profile: string, user: string): Promise<void> {
  const child = spawn(process.execPath, [h.bin ?? BIN, 'login', profile, '--device'], {
    env: h.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end();
  let err = '';
  const code = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no device code: ${err}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /enter the code:? (\S+)/i.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  expect((await idpRequest('/_admin/device', { user_code: code, action: 'approve', user })).status).toBe(200);
  const exit = await new Promise<number | null>((r) => child.on('close', r));
  expect(exit, err).toBe(0);
}

/**
 * For a beforeAll on the shared stack: the profile `work` (ALICE at the stack's IdP `idpUrl`,
 * sending through `smtp` with STARTTLS) added through `add` (a file's recorded runner, or `h`
 * itself) and signed in by device code. Returns its access token, fetched with `h.run`: printing
 * it is `token`'s job, so that run stays out of any transcript.
 */
export async function signInStackProfile(
  h: CliHome,
  idpUrl: string,
  smtp: string,
  add: Pick<CliHome, 'run'> = h,
): Promise<string> {
  expect((await idpRequest('/_admin/config', { deviceCodeInterval: 1 })).status).toBe(200);
  const r = await addMicrosoftProfile(add, 'work', idpUrl, ['--smtp', smtp, '--smtp-security', 'starttls']);
  expect(r.code, r.stderr).toBe(0);
  await signInDeviceAtStack(h, 'work', ALICE.upn);
  const tok = await h.run(['token', 'work']);
  expect(tok.code, tok.stderr).toBe(0);
  return tok.stdout.trim();
}

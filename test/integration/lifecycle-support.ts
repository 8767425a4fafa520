// Helpers for the lifecycle tests (issue 9) and microsoft-auth: the fake Entra ID in this process,
// CLI homes that trust its CA, device-code and paste sign-ins driven through the IdP, and the leak
// check.
import https from 'node:https';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startIdp, type IdpHandle } from '../support/idp/index.mjs';
import { backgroundCli, cliHome, type CliHome, type CliResult } from '../support/cli.js';
import { fixtures } from '../support/stack-env.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- IdP JSON answers, checked by the assertions
export type Json = any;
const run = promisify(execFile);
export const ROOT = join(import.meta.dirname, '..', '..');
export { fixtures };
export const MS = fixtures.microsoft;
export const TID: string = MS.tenantId;
export const PUBLIC: string = MS.clients[0]!.clientId;
export const CONFIDENTIAL = MS.clients[1]! as { clientId: string; secret: string };
export const ALICE = MS.users[0]!;

export interface Lab {
  pki: string;
  ca: string;
  idp: IdpHandle;
  /** Everything the CLI printed, for the leak check. */
  transcript: string[];
  /** Every token and secret seen, for the leak check. */
  secrets: Set<string>;
}

export async function startLab(labFixtures?: object): Promise<Lab> {
  const pki = mkdtempSync(join(tmpdir(), 'lifecycle-pki-'));
  await run('bash', [join(ROOT, 'test/support/pki.sh'), pki]);
  const ca = readFileSync(join(pki, 'ca.pem'), 'utf8');
  const idp = await startIdp({ pkiDir: pki, ...(labFixtures ? { fixtures: labFixtures } : {}) });
  return {
    pki,
    ca,
    idp,
    transcript: [],
    secrets: new Set<string>([ALICE.password, CONFIDENTIAL.secret, MS.clients[2]!.secret!]),
  };
}

export async function stopLab(lab: Lab | undefined): Promise<void> {
  await lab?.idp.close();
  if (lab?.pki) rmSync(lab.pki, { recursive: true, force: true });
}

export function req(
  lab: Lab,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  json: Json;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}> {
  const url = new URL(path, lab.idp.url);
  return new Promise((resolve, reject) => {
    const r = https.request(url, { method, ca: lab.ca, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let j: unknown;
        try {
          j = JSON.parse(text);
        } catch {
          j = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json: j, text, headers: res.headers });
      });
    });
    r.on('error', reject);
    r.end(body);
  });
}

export const admin = (lab: Lab, path: string, json?: unknown) =>
  req(
    lab,
    json === undefined ? 'GET' : 'POST',
    `/_admin/${path}`,
    json === undefined ? undefined : JSON.stringify(json),
    json === undefined ? {} : { 'content-type': 'application/json' },
  );

export function home(lab: Lab, env: NodeJS.ProcessEnv = {}): CliHome {
  return cliHome({
    NODE_EXTRA_CA_CERTS: join(lab.pki, 'ca.pem'),
    DISPLAY: '',
    WAYLAND_DISPLAY: '',
    BROWSER: '',
    SSH_CONNECTION: '',
    ...env,
  });
}

export async function cli(
  lab: Lab,
  h: CliHome,
  args: string[],
  opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv; spawn?: boolean } = {},
): Promise<CliResult> {
  const r = await h.run(args, opts);
  lab.transcript.push(`$ ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Start the CLI in the background; resolves `matched` when stderr matches, and `done` at exit. */
export function background(
  lab: Lab,
  h: CliHome,
  args: string[],
  waitFor: RegExp,
  input?: () => string | undefined,
) {
  return backgroundCli(h, args, waitFor, {
    killAfterMs: 60_000,
    keepStdinOpen: !!input,
    onExit: (r) => lab.transcript.push(`$ ${args.join(' ')}\n${r.stdout}\n${r.stderr}`),
  });
}

export async function addProfile(lab: Lab, h: CliHome, name: string, extra: string[] = []): Promise<void> {
  const r = await cli(lab, h, [
    'profile',
    'add',
    name,
    '--client-id',
    PUBLIC,
    '--authority',
    `${lab.idp.url}/${TID}/`,
    '--user',
    ALICE.upn,
    '--storage',
    'file',
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
}

/** Device-code sign-in, approved through the IdP admin API once the code is on stderr. */
export async function deviceLogin(lab: Lab, h: CliHome, name: string): Promise<CliResult> {
  const bg = background(lab, h, ['login', name, '--device'], /enter the code: (\S+)/);
  const m = await Promise.race([
    bg.matched,
    bg.done.then((r) => Promise.reject(new Error(`login exited early: ${r.stderr}`))),
  ]);
  const code = m[1]!;
  expect((await admin(lab, 'device', { user_code: code, action: 'approve', user: ALICE.upn })).status).toBe(
    200,
  );
  return bg.done;
}

/**
 * What a person does in the browser for `login --paste`: open the authorization URL, sign in
 * (consent is automatic: autoConsent), and end on the redirect, whose address is returned.
 */
export async function browserSignIn(lab: Lab, authorizeUrl: string): Promise<string> {
  const u = new URL(authorizeUrl);
  const page = await req(lab, 'GET', u.pathname + u.search);
  expect(page.status, page.text.slice(0, 300)).toBe(200);
  const txn = /name="txn" value="([^"]+)"/.exec(page.text)?.[1];
  expect(txn, 'sign-in page has a txn').toBeTruthy();
  const form = new URLSearchParams({ txn: txn!, username: ALICE.upn, password: ALICE.password }).toString();
  const r = await req(lab, 'POST', '/_flow/login', form, {
    'content-type': 'application/x-www-form-urlencoded',
  });
  expect(r.status, r.text.slice(0, 300)).toBe(302);
  return String(r.headers.location);
}

export const claims = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

/** No token or secret seen in this file's tests appears in anything the CLI printed. */
export function expectNoLeaks(lab: Lab, allowed: Set<string> = new Set()): void {
  const all = lab.transcript.join('\n');
  for (const s of lab.secrets) {
    if (!s || allowed.has(s)) continue;
    expect(all.includes(s), `a secret leaked into CLI output (${s.slice(0, 6)}…)`).toBe(false);
  }
}

/**
 * Helpers for the fetch/watch tests: the stack's environment, IMAP access tokens minted with the
 * stack's signing key (Dovecot validates them locally), an admin IMAP connection to put messages in
 * place with APPEND (exact bytes: what we append is what IMAP serves back), and a child-process
 * driver that runs the real fetch code from dist/ with a minted token (no sign-in needed).
 */
import { randomBytes } from 'node:crypto';
import { utimesSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import type { Profile } from '../../src/config/schema.js';
import { DEFAULT_RETRY } from '../../src/config/schema.js';
import { mintJwt as mintStackJwt } from '../support/stack-env.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Stack {
  imapPort: number;
  imapsPort: number;
  lmtpPort: number;
  pkiDir: string;
  kid: string;
  msIssuer: string;
  mailDir: string;
  dovecotConf: string;
  stackDir: string;
}

export function stack(env: NodeJS.ProcessEnv = process.env): Stack {
  if (env.OAUTHMAIL_STACK !== '1' || !env.IMAPS_PORT || !env.STACK_PKI_DIR) {
    throw new Error(
      'the fetch integration tests need the local mail stack: run them through test/support/with-stack.sh ' +
        '(or source .stack/env after test/support/stack/start.sh)',
    );
  }
  return {
    imapPort: Number(env.IMAP_PORT),
    imapsPort: Number(env.IMAPS_PORT),
    lmtpPort: Number(env.LMTP_PORT),
    pkiDir: env.STACK_PKI_DIR,
    kid: env.STACK_JWT_KID!,
    msIssuer: env.STACK_MS_ISSUER!,
    mailDir: env.STACK_MAIL_DIR!,
    dovecotConf: env.DOVECOT_CONF!,
    stackDir: env.OAUTHMAIL_STACK_DIR!,
  };
}

/** An access token Dovecot accepts for IMAP as `user` (or refuses: wrong scope, expired). */
export function mintImapToken(
  s: Stack,
  user: string,
  opts: { scope?: string; lifetimeSeconds?: number } = {},
): string {
  return mintStackJwt({
    user,
    scopes: (opts.scope ?? 'IMAP.AccessAsUser.All').split(/\s+/).filter(Boolean),
    ...(opts.lifetimeSeconds !== undefined ? { lifetimeSeconds: opts.lifetimeSeconds } : {}),
  });
}

export function imapProfile(s: Stack, user: string, extra: Partial<Profile> = {}): Profile {
  return {
    provider: 'microsoft',
    clientId: '11111111-1111-4111-8111-111111111111',
    clientType: 'public',
    flow: 'device',
    scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All', 'offline_access'],
    capabilities: ['read'],
    user,
    imap: { host: 'localhost', port: s.imapsPort, security: 'tls' },
    sasl: 'auto',
    retry: { ...DEFAULT_RETRY },
    storage: 'file',
    ...extra,
  };
}

/** A plain imapflow connection for putting test messages in place. */
export async function adminClient(s: Stack, user: string): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: 'localhost',
    port: s.imapsPort,
    secure: true,
    auth: { user, accessToken: mintImapToken(s, user) },
    logger: false,
    disableAutoIdle: true,
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

export async function freshFolder(c: ImapFlow, prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  await c.mailboxCreate(name);
  return name;
}

/** A deterministic PRNG (tests must be repeatable). */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

/** A raw RFC 5322 message with CRLF line ends, about `size` bytes, with a unique Message-ID. */
export function rawMessage(
  i: number,
  size: number,
  opts: { subject?: string; from?: string; extraHeaders?: string } = {},
): Buffer {
  const id = `${i}.${randomBytes(6).toString('hex')}@oauthmail.test`;
  const head =
    `From: ${opts.from ?? 'Sender <sender@fabrikam.test>'}\r\n` +
    `To: alice@contoso.test\r\n` +
    `Subject: ${opts.subject ?? `test message ${i}`}\r\n` +
    `Date: Thu, 20 Nov 2025 10:00:00 +0000\r\n` +
    `Message-ID: <${id}>\r\n` +
    (opts.extraHeaders ?? '') +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const lines: string[] = [];
  let n = Buffer.byteLength(head);
  // lines that look like mbox From_ lines on purpose
  lines.push(`From the start: message ${i}`);
  n += lines[0]!.length + 2;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const seed = randomBytes(64);
  let k = 0;
  while (n < size) {
    const len = Math.min(76, Math.max(1, size - n - 2));
    let line = '';
    for (let j = 0; j < len; j++) line += alphabet[(seed[(k + j) % 64]! + k * 7 + j) % 64];
    k++;
    lines.push(line);
    n += len + 2;
  }
  return Buffer.from(head + lines.join('\r\n') + '\r\n');
}

export async function appendAll(c: ImapFlow, folder: string, msgs: Buffer[]): Promise<void> {
  for (const m of msgs) await c.append(folder, m, [], new Date('2025-11-20T10:00:00Z'));
}

/**
 * Run the real fetch code (dist/) in a child process with a minted token. The child prints the
 * summary as JSON on stdout and its peak RSS (VmHWM from /proc/self/status, KB, read just before
 * it exits) as "max-rss-kb=N" on stderr.
 */
const DRIVER = `
const [cfg] = process.argv.slice(1);
const c = JSON.parse(cfg);
const { connectImap, closeImap } = await import(c.root + '/dist/mail/imap.js');
const { fetchMessages } = await import(c.root + '/dist/mail/fetch/index.js');
const { staticTokenSource } = await import(c.root + '/dist/mail/token-source.js');
const source = staticTokenSource(c.user, c.token);
const { client } = await connectImap(c.profile, source, c.imapOptions ?? {});
let code = 0;
try {
  const s = await fetchMessages(client, { ...c.options, account: c.user, filters: c.options.filters ?? {},
    warn: (m) => process.stderr.write('warning: ' + m + '\\n') });
  process.stdout.write(JSON.stringify(s) + '\\n');
} catch (e) {
  process.stderr.write('error: ' + (e && e.message) + '\\n');
  code = e && e.exitCode ? e.exitCode : 1;
} finally {
  await closeImap(client);
}
// VmHWM: the peak RSS of this process's own memory. (getrusage's ru_maxrss is not usable here:
// Linux carries the forking parent's peak over exec, so it reports the vitest worker's size.)
const { readFileSync } = await import('node:fs');
const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
process.stderr.write('max-rss-kb=' + (hwm ? hwm[1] : process.resourceUsage().maxRSS) + '\\n');
process.exit(code);
`;

export interface DriverRun {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export function runDriver(cfg: {
  user: string;
  token: string;
  profile: Profile;
  options: Record<string, unknown>;
  /** connectImap's options (e.g. socketTimeoutMs). */
  imapOptions?: Record<string, unknown>;
}): DriverRun {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', DRIVER, JSON.stringify({ root: ROOT, ...cfg })],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function maxRssKb(stderr: string): number {
  const m = /max-rss-kb=(\d+)/.exec(stderr);
  if (!m) throw new Error(`no max-rss-kb in the child's stderr:\n${stderr}`);
  return Number(m[1]);
}

/**
 * A run killed with SIGKILL leaves its folder lock (proper-lockfile's lock folder), which the next
 * run takes over once it is 10 s stale. Tests do not wait for that: they move the lock's clock.
 */
export function ageFetchLock(out: string): void {
  const lock = path.join(out, '.oauthmail.lock');
  const past = new Date(Date.now() - 60_000);
  try {
    utimesSync(lock, past, past);
  } catch {
    // no lock left
  }
}

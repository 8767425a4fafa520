/**
 * Helpers for the queue tests (issue 13): the CLI run the way cron runs it (`env -i` with cron's
 * few variables, no TTY, no D-Bus), Postfix faults that can be switched on and off, the stack
 * IdP's fault and config API, and the body of a delivered message.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, type CliHome, type CliResult } from '../support/cli.js';
import { idpRequest, stackEnv } from '../support/stack-env.js';
import { addMicrosoftProfile, signInDevice, startTestIdp, type TestIdp } from '../support/signin.js';
import { reloadPostfix, type Stack } from './send-support.js';

/**
 * cron's environment: HOME, LOGNAME, PATH=/usr/bin:/bin, SHELL=/bin/sh, plus what the crontab
 * sets (the oauthmail folders, the passphrase file) and the test CA (the fake IdP's HTTPS;
 * a real provider is trusted through the system roots). No DISPLAY, no D-Bus, no TTY.
 */
export function cronEnv(h: CliHome, extra: Record<string, string> = {}): Record<string, string> {
  const e = h.env;
  return {
    HOME: h.dir,
    LOGNAME: 'root',
    PATH: '/usr/bin:/bin',
    SHELL: '/bin/sh',
    OAUTHMAIL_CONFIG_DIR: e.OAUTHMAIL_CONFIG_DIR!,
    OAUTHMAIL_DATA_DIR: e.OAUTHMAIL_DATA_DIR!,
    ...(e.OAUTHMAIL_PASSPHRASE_FILE ? { OAUTHMAIL_PASSPHRASE_FILE: e.OAUTHMAIL_PASSPHRASE_FILE } : {}),
    NODE_EXTRA_CA_CERTS: stackEnv().caFile,
    ...extra,
  };
}

/** `env -i VAR=... node bin/oauthmail.js ARGS` with stdin from `input` (a pipe, not a TTY). */
export function cronRun(
  h: CliHome,
  args: string[],
  opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const vars = Object.entries(cronEnv(h, opts.env)).map(([k, v]) => `${k}=${v}`);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/env', ['-i', ...vars, process.execPath, BIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`oauthmail ${args.join(' ')} did not finish\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export { idpRequest };

/**
 * Postfix answers `reply` (e.g. "451 4.3.0 ...") at RCPT for mail from `sender`, until removed.
 * Uses the sender map installSenderFaults set up (smtpd_sender_restrictions); reloads Postfix.
 */
export async function setSenderFault(s: Stack, sender: string, reply: string | undefined): Promise<void> {
  const map = path.join(s.postfixConf, 'oauthmail-sender-faults');
  const lines = readFileSync(map, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith(`${sender} `));
  if (reply) lines.push(`${sender} ${reply}`);
  writeFileSync(map, lines.join('\n') + '\n');
  await reloadPostfix(s);
}

/** A postconf setting (returns the old value so a test can put it back). */
export function postconf(s: Stack, key: string, value: string): string {
  const old = execFileSync('postconf', ['-c', s.postfixConf, '-h', key], { encoding: 'utf8' }).trim();
  execFileSync('postconf', ['-c', s.postfixConf, '-e', `${key}=${value}`]);
  return old;
}

/** The body of an RFC 5322 message (after the first empty line), bytes as stored. */
export function bodyOf(text: string): string {
  const m = /\r?\n\r?\n/.exec(text);
  return m ? text.slice(m.index + m[0].length) : '';
}

/** A loopback port with nothing listening (bound, then closed): "the mail server is down". */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The mail server goes away for this profile only (its smtp setting points at a port with nothing
 * listening), and comes back: other test files share the stack's Postfix, so it is never stopped.
 */
export async function smtpDown(h: CliHome, profile: string): Promise<void> {
  const r = await h.run(['profile', 'edit', profile, '--set', `smtp=127.0.0.1:${await closedPort()}`]);
  if (r.code !== 0) throw new Error(r.stderr);
}

export async function smtpUp(h: CliHome, profile: string, s: Stack): Promise<void> {
  const r = await h.run(['profile', 'edit', profile, '--set', `smtp=${s.smtpHost}:${s.smtpPort}`]);
  if (r.code !== 0) throw new Error(r.stderr);
}

/**
 * Mail from `sender` waits `seconds` at RCPT (a Postfix restriction class), so that one test can
 * have a slow server without slowing the other files that share the stack's Postfix.
 */
export async function slowSender(s: Stack, sender: string, seconds: number | undefined): Promise<void> {
  const cls = 'oauthmail_test_slow';
  if (seconds !== undefined) {
    postconf(s, 'smtpd_restriction_classes', cls);
    postconf(s, cls, `sleep ${seconds}`);
  }
  await setSenderFault(s, sender, seconds === undefined ? undefined : cls);
}

/** `oauthmail login work --device` at the queue tests' private IdP, approved at once. */
export async function signInWork(h: CliHome, idp: TestIdp): Promise<void> {
  const r = await signInDevice(h, 'work', idp);
  if (r.code !== 0) throw new Error(`login failed (exit ${r.code}): ${r.stderr}`);
}

/**
 * The queue tests' set-up: a private identity provider (its revocations and faults must not reach
 * other test files) with access tokens shorter than the 5-minute minimum validity, so that every
 * send redeems the refresh token and a revocation shows at once; the profile `work` sending through
 * the stack's Postfix, signed in by device code, with short retry waits.
 */
export async function queueProfile(h: CliHome, s: Stack): Promise<TestIdp> {
  const idp = await startTestIdp();
  const cfg = await idp.admin('config', { deviceCodeInterval: 1, accessTokenLifetime: 60 });
  if (cfg.status !== 200) throw new Error(`IdP config: ${cfg.status}`);
  const add = await addMicrosoftProfile(h, 'work', idp.url, [
    '--smtp',
    `${s.smtpHost}:${s.smtpPort}`,
    '--smtp-security',
    'starttls',
  ]);
  if (add.code !== 0) throw new Error(`profile add failed: ${add.stderr}`);
  await signInWork(h, idp);
  const e = await h.run([
    'profile',
    'edit',
    'work',
    '--set',
    'retry.initialDelayMs=50',
    '--set',
    'retry.maxDelayMs=200',
  ]);
  if (e.code !== 0) throw new Error(`profile edit failed: ${e.stderr}`);
  return idp;
}

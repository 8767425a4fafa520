/**
 * Helpers for the relay tests (issue 17): start `oauthmail relay` in the background and wait for its
 * readiness line, add devices, and run the real clients (swaks, msmtp, Python's smtplib) against it.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { backgroundCli, cliHome, type CliHome, type CliResult } from './cli.js';
import type { TestIdp } from './signin.js';
import { stack, type Stack } from '../integration/send-support.js';
import { queueProfile } from '../integration/queue-support.js';

export interface RunningRelay {
  /** ports of the --listen flags, in order */
  ports: number[];
  fingerprint: string;
  stderr: () => string;
  stdout: () => string;
  pid: number;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<CliResult>;
  done: Promise<CliResult>;
}

const READY = /ready on (\S+(?: \S+)*) \(\d+ devices?\); TLS certificate SHA-256 ([0-9A-F:]+)/;

export async function startRelay(h: CliHome, args: string[], globals: string[] = []): Promise<RunningRelay> {
  let out = '';
  let err = '';
  const bg = backgroundCli(h, [...globals, 'relay', ...args], READY, {
    killAfterMs: 10 * 60_000,
    onExit: (r) => {
      out = r.stdout;
      err = r.stderr;
    },
  });
  let live = '';
  let liveOut = '';
  bg.child.stderr.on('data', (d: Buffer) => (live += d.toString()));
  bg.child.stdout.on('data', (d: Buffer) => (liveOut += d.toString()));
  const m = await Promise.race([
    bg.matched,
    bg.done.then((r) => {
      throw new Error(`relay exited ${r.code} before it was ready:\n${r.stderr}`);
    }),
  ]);
  const ports = m[1]!.split(' ').map((l) => Number(/:(\d+)$/.exec(l)![1]));
  return {
    ports,
    fingerprint: m[2]!,
    stderr: () => live || err,
    stdout: () => liveOut || out,
    pid: bg.child.pid!,
    signal: (sig) => bg.child.kill(sig),
    stop: async () => {
      bg.child.kill('SIGTERM');
      return bg.done;
    },
    done: bg.done,
  };
}

/** `oauthmail [-p PROFILE] relay user add NAME ...`: the password it printed once. */
export async function addDevice(
  h: CliHome,
  name: string,
  args: string[] = [],
  profile = 'work',
): Promise<string> {
  const r = await h.run(['-p', profile, 'relay', 'user', 'add', name, ...args]);
  if (r.code !== 0) throw new Error(`relay user add ${name}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

export interface ToolResult {
  code: number | null;
  out: string;
}

/** Run a program (swaks, msmtp, python3) with stdin `input`; stdout and stderr together. */
export function tool(cmd: string, args: string[], input = '', timeoutMs = 60_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    child.stdin.end(input);
  });
}

/** swaks flags: AUTH MECH as USER, over STARTTLS (-tls), implicit TLS (--tls-on-connect) or none. */
export function auth(
  mech: 'LOGIN' | 'PLAIN',
  user: string,
  pass: string,
  from: string,
  to: string,
  tls: 'starttls' | 'implicit' | 'none' = 'starttls',
): string[] {
  const t = { starttls: ['-tls'], implicit: ['--tls-on-connect'], none: [] }[tls];
  return [...t, '-a', mech, '-au', user, '-ap', pass, '--from', from, '--to', to];
}

/**
 * The relay tests' set-up: the stack, a CLI home without a desktop session, and the profile `work`
 * (ALICE through the stack's Postfix, signed in at a private IdP: queue-support's queueProfile).
 */
export async function relayLab(): Promise<{ s: Stack; h: CliHome; idp: TestIdp }> {
  const s = stack();
  const h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '', DBUS_SESSION_BUS_ADDRESS: '' });
  const idp = await queueProfile(h, s);
  return { s, h, idp };
}

/** swaks against the relay on 127.0.0.1:port, a message from a file (`--data`), quiet but for errors. */
export function swaks(port: number, args: string[], message?: string, dir?: string): Promise<ToolResult> {
  const extra: string[] = [];
  if (message !== undefined) {
    const f = path.join(dir ?? '/tmp', `swaks-${process.pid}-${Math.random().toString(36).slice(2)}.eml`);
    writeFileSync(f, message);
    extra.push('--data', `@${f}`);
  }
  return tool('swaks', [
    '--server',
    '127.0.0.1',
    '--port',
    String(port),
    '--timeout',
    '30',
    ...args,
    ...extra,
  ]);
}

/**
 * A message with CRLF line ends, a unique tag in its subject and body (for waitForMail). The body
 * has no final CRLF: every client adds one before the closing dot (swaks always adds one, so a
 * message that ended with CRLF would arrive with an empty line more than it had).
 */
export function message(
  tag: string,
  opts: { from?: string; to?: string; bcc?: string; body?: string } = {},
): string {
  const lines = [
    `From: ${opts.from ?? '"Scanner 2nd floor" <scanner@printers.invalid>'}`,
    `To: ${opts.to ?? 'bob@contoso.test'}`,
    ...(opts.bcc ? [`Bcc: ${opts.bcc}`] : []),
    `Subject: relay ${tag}`,
    `Message-ID: <${tag}@printers.invalid>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
  ];
  const body = opts.body ?? `scan ${tag}\r\n.\r\n..leading dots \r\nüñí ${tag}`;
  return lines.join('\r\n') + '\r\n' + body;
}

/** How swaks, msmtp and smtplib show a refusal in their transcripts ("<** 554" or, in TLS, "<~* 554"). */
export const REFUSED = '<(?:~\\*|\\*\\*) ';

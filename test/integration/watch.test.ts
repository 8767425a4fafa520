/**
 * `oauthmail watch --exec CMD` (the real CLI, signed in by device code) runs CMD once for each of
 * 10 messages delivered while it idles, with the exact message on stdin, and keeps going across a
 * Dovecot restart in the middle.
 *
 * The restart must not disturb other test files, so this file starts a private stack
 * (test/support/stack/start.sh in a temp folder, with a copy of the shared stack's PKI so that the
 * same CA and JWT key work) and restarts only that stack's Dovecot. Everything started here is
 * stopped in afterAll, also when a test fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import { BIN, cliHome, type CliHome } from '../support/cli.js';
import { startPrivateStack } from '../support/stack-env.js';
import { ALICE, addMicrosoftProfile, signInDevice, startTestIdp, type TestIdp } from '../support/signin.js';
import { ROOT, adminClient, rawMessage, stack, type Stack } from './fetch-support.js';

const STACK_SH = path.join(ROOT, 'test', 'support', 'stack');
let privDir: string | undefined;
let priv: Stack;
let privEnv: Record<string, string> = {};
let idp: TestIdp | undefined;
let h: CliHome | undefined;
let work: string;
let watcher: ChildProcess | undefined;
let token = '';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

/** Poll `check` until it returns true; fail with `what` (and the watcher's stderr) after `limitMs`. */
async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  limitMs = 60_000,
  log?: () => string,
): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end)
      throw new Error(`gave up waiting for ${what}${log ? `\n--- watch stderr ---\n${log()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An admin IMAP connection to the private stack, retried while its Dovecot (re)starts. */
async function privAdmin(): Promise<ImapFlow> {
  let c: ImapFlow | undefined;
  await waitFor('the private Dovecot to accept a login', async () => {
    c = await adminClient(priv, ALICE.upn).catch(() => undefined);
    return !!c;
  });
  return c!;
}

async function deliver(msgs: Buffer[]): Promise<void> {
  const c = await privAdmin();
  try {
    for (const m of msgs) await c.append('INBOX', m);
  } finally {
    await c.logout().catch(() => undefined);
  }
}

/** Stop only the private stack's Dovecot master (and its children), then start it again. */
async function restartDovecot(): Promise<void> {
  const state = readFileSync(path.join(privDir!, 'state'), 'utf8');
  const baseDir = /^DOVECOT_BASE_DIR='([^']+)'/m.exec(state)![1]!;
  const conf = /^DOVECOT_CONF='([^']+)'/m.exec(state)![1]!;
  const pid = Number(readFileSync(path.join(baseDir, 'master.pid'), 'utf8').trim());
  expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain(conf);
  process.kill(pid, 'SIGTERM');
  await waitFor('the private Dovecot to exit', () => !alive(pid), 20_000);
  const r = spawnSync('dovecot', ['-c', conf], { stdio: 'ignore', timeout: 30_000 });
  expect(r.status).toBe(0);
  await waitFor('a new Dovecot master', () => {
    const f = path.join(baseDir, 'master.pid');
    return existsSync(f) && Number(readFileSync(f, 'utf8').trim()) !== pid;
  });
}

beforeAll(async () => {
  const shared = stack();
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-watch-'));
  privDir = mkdtempSync('/tmp/om-watch-stack-');
  privEnv = startPrivateStack(privDir, shared.pkiDir);
  priv = stack({ ...privEnv });
  expect(priv.imapsPort).not.toBe(shared.imapsPort);

  idp = await startTestIdp();
  expect((await idp.admin('config', { deviceCodeInterval: 1 })).status).toBe(200);
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  const add = await addMicrosoftProfile(h, 'work', idp.url, [
    '--imap',
    `localhost:${priv.imapsPort}`,
    '--imap-security',
    'tls',
  ]);
  expect(add.code, add.stderr).toBe(0);
  const login = await signInDevice(h, 'work', idp);
  expect(login.code, login.stderr).toBe(0);
  const t = await h.run(['token', 'work']);
  expect(t.code, t.stderr).toBe(0);
  token = t.stdout.trim();
}, 120_000);

afterAll(async () => {
  if (watcher && watcher.exitCode === null && watcher.signalCode === null) watcher.kill('SIGKILL');
  await idp?.close();
  if (privDir) {
    spawnSync('bash', [path.join(STACK_SH, 'stop.sh'), privDir], { stdio: 'ignore', timeout: 60_000 });
    rmSync(privDir, { recursive: true, force: true });
  }
  if (work) rmSync(work, { recursive: true, force: true });
  if (h) rmSync(h.dir, { recursive: true, force: true });
}, 90_000);

describe('oauthmail watch --exec', () => {
  it('runs the command once per message for 10 messages, across a Dovecot restart', async () => {
    const out = path.join(work, 'out');
    mkdirSync(out);
    // one file per message, named by the UID the command is given
    const cmd =
      'cat > "$WATCH_OUT/msg-$OAUTHMAIL_UID-$OAUTHMAIL_MAILBOX.eml.part" && mv "$WATCH_OUT/msg-$OAUTHMAIL_UID-$OAUTHMAIL_MAILBOX.eml.part" "$WATCH_OUT/msg-$OAUTHMAIL_UID-$OAUTHMAIL_MAILBOX.eml"';
    watcher = spawn(process.execPath, [BIN, 'watch', '-p', 'work', '--exec', cmd], {
      env: { ...h!.env, WATCH_OUT: out },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    watcher.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    watcher.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => watcher!.on('close', (code) => r(code)));
    const log = () => stderr;
    await waitFor('watch to start idling', () => /watching INBOX/.test(stderr), 30_000, log);

    const msgs = Array.from({ length: 10 }, (_, i) =>
      rawMessage(i + 1, 300 + i * 5000, { subject: `watch ${i + 1}` }),
    );
    const done = () => readdirSync(out).filter((f) => f.endsWith('.eml'));
    // five while idling, one at a time
    for (const [i, m] of msgs.slice(0, 5).entries()) {
      await deliver([m]);
      await waitFor(`message ${i + 1} handled`, () => done().length === i + 1, 60_000, log);
    }
    // Dovecot goes away under the idling watch and comes back
    await restartDovecot();
    await waitFor('watch to notice the restart', () => /reconnecting in/.test(stderr), 60_000, log);
    await deliver(msgs.slice(5, 7));
    await waitFor('watch to reconnect', () => /reconnected to INBOX/.test(stderr), 90_000, log);
    await waitFor('messages 6 and 7 handled', () => done().length === 7, 60_000, log);
    // and it idles again afterwards
    for (const [i, m] of msgs.slice(7).entries()) {
      await deliver([m]);
      await waitFor(`message ${i + 8} handled`, () => done().length === i + 8, 60_000, log);
    }

    // exactly one run per message, each with the exact bytes on stdin
    const files = done().sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
    expect(files).toEqual(Array.from({ length: 10 }, (_, i) => `msg-${i + 1}-INBOX.eml`));
    for (const [i, f] of files.entries()) expect(readFileSync(path.join(out, f)).equals(msgs[i]!)).toBe(true);
    expect(readdirSync(out).filter((f) => f.endsWith('.part'))).toEqual([]);

    watcher.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('stopping');
    // nothing handled twice, and no token anywhere in what it printed
    expect(readdirSync(out)).toHaveLength(10);
    expect(token.length).toBeGreaterThan(100);
    expect(stdout + stderr).not.toContain(token);
    expect(stdout + stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
  }, 300_000);
});

describe('oauthmail watch --out', () => {
  it('saves each new message into a Maildir, as fetch does, and prints its path', async () => {
    const c = await privAdmin();
    await c.mailboxCreate('WatchOut');
    const before = rawMessage(100, 700, { subject: 'already there' });
    await c.append('WatchOut', before);
    await c.logout().catch(() => undefined);
    const out = path.join(work, 'maildir');
    const w = spawn(
      process.execPath,
      [BIN, 'watch', '-p', 'work', '--mailbox', 'WatchOut', '--out', out, '--format', 'maildir'],
      {
        env: h!.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    watcher = w;
    let stdout = '';
    let stderr = '';
    w.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    w.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => w.on('close', (code) => r(code)));
    const log = () => stderr;
    await waitFor('watch to start idling', () => /watching WatchOut/.test(stderr), 30_000, log);
    const files = () => (existsSync(path.join(out, 'new')) ? readdirSync(path.join(out, 'new')) : []);
    // like fetch: what was there before is saved too (the state file starts empty)
    await waitFor('the message already there', () => files().length === 1, 60_000, log);
    const msgs = [rawMessage(101, 400), rawMessage(102, 90_000), rawMessage(103, 600_000)];
    const a = await privAdmin();
    for (const m of msgs) await a.append('WatchOut', m);
    await a.logout().catch(() => undefined);
    await waitFor('three new messages saved', () => files().length === 4, 60_000, log);
    const want = [before, ...msgs].map((m) => m.toString('hex')).sort();
    expect(
      files()
        .map((f) => readFileSync(path.join(out, 'new', f)).toString('hex'))
        .sort(),
    ).toEqual(want);
    w.kill('SIGTERM');
    expect(await exited).toBe(0);
    const printed = stdout.trim().split('\n');
    expect(printed).toHaveLength(4);
    for (const p of printed) expect(existsSync(p)).toBe(true);
  }, 180_000);
});

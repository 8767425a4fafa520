/**
 * `watch --exec` across restarts and failures, against the shared stack's Dovecot with a profile
 * signed in by device code:
 *  - messages that arrive while no watch runs are handed to the command at the next start (the
 *    last UID handled is kept in the data folder), each exactly once;
 *  - a command that keeps failing is tried --exec-tries times, then the message is moved to
 *    --failed-folder (and never lost);
 *  - `watch --out FILE` stops at once with exit 2 instead of reconnecting once a second for ever.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import { backgroundCli, cliHome, type CliHome } from '../support/cli.js';
import { signInStackProfile } from '../support/signin.js';
import { adminClient, freshFolder, rawMessage, stack as fetchStack } from './fetch-support.js';
import { stack } from './send-support.js';

const ALICE = 'alice@contoso.test';
let h: CliHome;
let admin: ImapFlow;
const fs = fetchStack();

beforeAll(async () => {
  const s = stack();
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  await signInStackProfile(h, s.idpUrl, `${s.smtpHost}:${s.smtpPort}`);
  const e = await h.run([
    'profile',
    'edit',
    'work',
    '--imap',
    `localhost:${fs.imapsPort}`,
    '--imap-security',
    'tls',
  ]);
  expect(e.code, e.stderr).toBe(0);
  admin = await adminClient(fs, ALICE);
}, 90_000);
afterAll(async () => {
  await admin?.logout().catch(() => undefined);
  rmSync(h.dir, { recursive: true, force: true });
});

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  log: () => string,
): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function count(box: string): Promise<number> {
  const st = await admin.status(box, { messages: true });
  return st ? (st.messages ?? -1) : -1;
}

function watch(args: string[]) {
  let err = '';
  const w = backgroundCli(h, ['watch', '-p', 'work', '--verbose', ...args], /watching /, {
    killAfterMs: 60_000,
  });
  // the watcher's stderr so far, for a failure message while it still runs
  w.child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { ...w, log: () => err };
}

describe('watch --exec keeps its place', () => {
  it('messages that arrive while it is stopped are handled at the next start, each once', async () => {
    const box = await freshFolder(admin, 'watch-state');
    const out = path.join(h.dir, 'handled');
    mkdirSync(out);
    const cmd = `cat > ${out}/$OAUTHMAIL_UID.eml`;
    const m = [rawMessage(1, 500), rawMessage(2, 700), rawMessage(3, 900), rawMessage(4, 300)];
    await admin.append(box, m[0]!); // there before the first watch: not handed over (a first run starts from now)

    const w1 = watch(['--mailbox', box, '--exec', cmd]);
    await w1.matched;
    await admin.append(box, m[1]!);
    await until('UID 2 handled', () => existsSync(path.join(out, '2.eml')), w1.log);
    w1.child.kill('SIGTERM');
    expect((await w1.done).code).toBe(0);

    // while no watch runs
    await admin.append(box, m[2]!);
    await admin.append(box, m[3]!);
    const w2 = watch(['--mailbox', box, '--exec', cmd]);
    await w2.matched;
    await until('UIDs 3 and 4 handled', () => existsSync(path.join(out, '4.eml')), w2.log);
    w2.child.kill('SIGTERM');
    expect((await w2.done).code).toBe(0);

    expect(readdirSync(out).sort()).toEqual(['2.eml', '3.eml', '4.eml']);
    for (const [uid, msg] of [
      [2, m[1]!],
      [3, m[2]!],
      [4, m[3]!],
    ] as const)
      expect(readFileSync(path.join(out, `${uid}.eml`)).equals(msg)).toBe(true);
  });

  it('a command that keeps failing is tried again, then the message is moved to --failed-folder', async () => {
    const box = await freshFolder(admin, 'watch-fail');
    const failed = await freshFolder(admin, 'watch-failed');
    const triesFile = path.join(h.dir, `tries-${box}`);
    writeFileSync(triesFile, '');
    const w = watch([
      '--mailbox',
      box,
      '--exec',
      `echo x >> ${triesFile}; exit 3`,
      '--exec-tries',
      '3',
      '--exec-retry-wait',
      '0.05',
      '--failed-folder',
      failed,
    ]);
    await w.matched;
    await admin.append(box, rawMessage(7, 400, { subject: 'will fail' }));
    await until('the message moved', async () => (await count(failed)) === 1, w.log);
    w.child.kill('SIGTERM');
    const r = await w.done;
    expect(r.code).toBe(0);
    expect(readFileSync(triesFile, 'utf8').trim().split('\n')).toHaveLength(3);
    expect(r.stderr).toMatch(/the command exited with 3 for UID 1; trying again in 0\.1 s \(2\/3\)/);
    expect(r.stderr).toMatch(new RegExp(`kept failing \\(exit 3\\) for UID 1; moved it to ${failed}`));
    expect(await count(box)).toBe(0);
  });
});

describe('watch --out', () => {
  it('a file in the way is exit 2 at once, not a reconnect loop', async () => {
    const file = path.join(h.dir, 'not-a-folder');
    writeFileSync(file, 'x');
    const r = await h.run(['watch', '-p', 'work', '--out', file], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/a file is in the way/);
    expect(r.stderr).not.toMatch(/reconnecting/);
  });
});

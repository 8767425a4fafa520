/**
 * Issue 13: a cron job's notification is never lost. `oauthmail sendmail` run the way cron runs
 * it (env -i, no TTY, no D-Bus, the encrypted file store with its passphrase in a file), for each
 * failure: the sign-in revoked at the identity provider, the identity provider answering 503,
 * the mail server down (the profile's SMTP port with nothing listening: the stack's Postfix is
 * shared with other test files, so it is not stopped), Postfix answering 451 (to mail from one
 * sender of this file's own): the message is queued and sendmail exits 0; once the
 * fault is repaired `queue run` delivers every queued message exactly once, body byte-identical,
 * into Dovecot. A 550 for the recipient queues nothing and keeps sendmail's exit code.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cliHome, type CliHome, type CliResult } from '../support/cli.js';
import {
  mailbox,
  installSenderFaults,
  postfixLog,
  postfixSettled,
  stack,
  waitForMail,
  type Stack,
} from './send-support.js';
import { ALICE, type TestIdp } from '../support/signin.js';
import {
  bodyOf,
  cronRun,
  queueProfile,
  setSenderFault,
  signInWork,
  smtpDown,
  smtpUp,
} from './queue-support.js';

let s: Stack;
let h: CliHome;
let idp: TestIdp;
/** Mail from this sender gets 451 while the fault is on (other files share Postfix and send as alice). */
const Q451 = 'q451@contoso.test';
const transcript: string[] = [];
const secrets = new Set<string>();
const tag = () => `q${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
const BOB = 'bob@contoso.test';

async function cron(args: string[], input?: string, env?: Record<string, string>): Promise<CliResult> {
  const r = await cronRun(h, args, { ...(input !== undefined ? { input } : {}), ...(env ? { env } : {}) });
  transcript.push(`$ ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** What cron hands to sendmail for a job's output (LF line endings, a lone dot in the body). */
function cronMessage(t: string): string {
  return `From: root (Cron Daemon)\nTo: ${BOB}\nSubject: Cron <root@host> backup ${t}\n\nbackup failed ${t}\n.\nline with trailing space \nüñí ${t}\n`;
}

function queueFiles(): string[] {
  const dir = path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue');
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.msg'));
  } catch {
    return [];
  }
}

/** sendmail in cron: exit 0, one line on stderr saying queued, why, and what delivers it. */
async function expectQueued(t: string, why: RegExp, extra: string[] = []): Promise<string> {
  const before = queueFiles().length;
  const r = await cron(['sendmail', ...extra, '-t', '-i'], cronMessage(t));
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^oauthmail: queued [0-9a-z]{9}-[0-9a-f]{12} \(/);
  expect(lines[0]).toMatch(why);
  expect(lines[0]).toMatch(/oauthmail queue run/);
  const files = queueFiles();
  expect(files.length).toBe(before + 1);
  const dir = path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue');
  for (const f of files) expect(statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  return /queued (\S+) /.exec(lines[0]!)![1]!;
}

/** After the repair: `queue run` from cron delivers it once, body identical to what was queued. */
async function expectDeliveredOnce(t: string, id: string): Promise<void> {
  const queued = readFileSync(path.join(h.env.OAUTHMAIL_DATA_DIR!, 'queue', `${id}.msg`));
  const queuedRaw = queued.subarray(queued.indexOf(0x0a) + 1).toString('utf8');
  const r = await cron(['queue', 'run']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(new RegExp(`delivered ${id} \\(work\\): 250 `));
  expect(queueFiles()).toEqual([]);
  const got = await waitForMail(s, BOB, `backup ${t}`, 1);
  expect(got).toHaveLength(1);
  // byte-identical body: what sendmail read (CRLF on the wire) is what Dovecot stored
  const want = `backup failed ${t}\r\n.\r\nline with trailing space \r\nüñí ${t}\r\n`;
  expect(bodyOf(queuedRaw)).toBe(want);
  expect(bodyOf(got[0]!.text).replace(/\r?\n/g, '\r\n')).toBe(want);
  expect(Buffer.from(bodyOf(got[0]!.text).replace(/\r?\n/g, '\r\n'))).toEqual(Buffer.from(want));
  // the same Message-ID as the queued file
  const mid = /^Message-ID: (<[^>]+>)/im.exec(queuedRaw)![1]!;
  expect(got[0]!.text).toContain(mid);
  // a second run sends nothing more
  const mark = postfixLog(s).length;
  const again = await cron(['queue', 'run']);
  expect(again.code, again.stderr).toBe(0);
  await postfixSettled(s, { since: mark });
  expect(mailbox(s, BOB).filter((m) => m.text.includes(`backup ${t}`))).toHaveLength(1);
}

beforeAll(async () => {
  s = stack();
  await installSenderFaults(s);
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '', DBUS_SESSION_BUS_ADDRESS: '' });
  // the passphrase in a file, not in the crontab (OAUTHMAIL_PASSPHRASE_FILE)
  const pass = path.join(h.dir, 'passphrase');
  writeFileSync(pass, 'correct horse battery staple\n');
  chmodSync(pass, 0o600);
  h.env.OAUTHMAIL_PASSPHRASE_FILE = pass;
  // a private identity provider (revocations and faults here must not reach other test files);
  // access tokens shorter than the 5-minute minimum validity: every send redeems the refresh token
  idp = await queueProfile(h, s);
  const tok = await h.run(['token', 'work']);
  secrets.add(tok.stdout.trim());
}, 90_000);

const signIn = () => signInWork(h, idp);

afterAll(async () => {
  await idp?.close();
  const all = transcript.join('\n');
  for (const sec of secrets) if (sec) expect(all.includes(sec), 'a token leaked').toBe(false);
  expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
  expect(all).not.toContain('correct horse battery staple');
});

describe('sendmail from cron: queued on every failure that is not the message, delivered once after the repair', () => {
  it('the secrets are encrypted with the passphrase from OAUTHMAIL_PASSPHRASE_FILE, and cron reads them', async () => {
    const secretsDir = path.join(h.env.OAUTHMAIL_DATA_DIR!, 'secrets');
    const files = readdirSync(secretsDir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const text = readFileSync(path.join(f.parentPath, f.name), 'utf8');
      expect(text.startsWith('{"oauthmail":"secret"'), f.name).toBe(true); // the encrypted envelope
      expect(text).not.toMatch(/RefreshToken|refresh_token|"secret":"/);
    }
    const t = tag();
    const r = await cron(['sendmail', '-t', '-i'], cronMessage(t));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(await waitForMail(s, BOB, `backup ${t}`, 1)).toHaveLength(1);
    // without the file the store cannot be read: the message is queued, not lost
    const bad = await cron(['sendmail', '-t', '-i'], cronMessage(tag()), {
      OAUTHMAIL_PASSPHRASE_FILE: '/nonexistent/passphrase',
    });
    expect(bad.code, bad.stderr).toBe(0);
    expect(bad.stderr).toMatch(/queued .*cannot be read in this session.*passphrase file/);
    const ids = (await cron(['queue', 'list', '--json'])).stdout;
    for (const m of JSON.parse(ids) as Array<{ id: string }>) {
      expect((await cron(['queue', 'drop', m.id])).code).toBe(0);
    }
    expect(queueFiles()).toEqual([]);
  });

  it('sign-in revoked at the identity provider: queued, exit 0; after a new sign-in queue run delivers it once', async () => {
    const t = tag();
    expect((await idp.admin('revoke-refresh-tokens', { user: ALICE.upn })).status).toBe(200);
    const id = await expectQueued(t, /a sign-in is needed: .*oauthmail login work/);
    // status tells the truth: not signed in, the date, the provider's code, the fix, exit 4
    const st = await cron(['status', 'work']);
    expect(st.code, st.stderr).toBe(4);
    expect(st.stdout).toMatch(/signed in\s+no/);
    expect(st.stdout).toMatch(/refused on \d{4}-\d\d-\d\d.*AADSTS\d+.*run oauthmail login work/);
    expect(st.stdout).toMatch(/queue\s+1 waiting/);
    await signIn();
    await expectDeliveredOnce(t, id);
  }, 60_000);

  it('identity provider answering 503: queued, exit 0 (no "exit code 6"); delivered once when it is back', async () => {
    const t = tag();
    expect((await idp.admin('faults', { endpoint: 'token', status: 503, times: -1 })).status).toBe(200);
    const id = await expectQueued(t, /temporarily unavailable/);
    const legacy = await cron(['sendmail', '--no-queue', '-t', '-i'], cronMessage(tag()));
    expect(legacy.code, legacy.stderr).toBe(75);
    expect(legacy.stderr).not.toMatch(/exit code 6/);
    expect(queueFiles()).toHaveLength(1);
    expect((await idp.admin('faults', undefined, 'DELETE')).status).toBe(200);
    await expectDeliveredOnce(t, id);
  }, 60_000);

  it('mail server down (nothing listening on its port): queued, exit 0; delivered once when it is back', async () => {
    const t = tag();
    await smtpDown(h, 'work');
    let id: string;
    try {
      id = await expectQueued(t, /the mail server is not available now/);
      const q = await cron(['queue', 'run']);
      expect(q.code).toBe(6); // still down: deferred, kept
      expect(q.stderr).toMatch(new RegExp(`deferred ${id}`));
      expect(queueFiles()).toHaveLength(1);
    } finally {
      await smtpUp(h, 'work', s);
    }
    // the deferred message has a next attempt time (backoff): --force tries it now
    const r = await cron(['queue', 'run', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(queueFiles()).toEqual([]);
    expect(await waitForMail(s, BOB, `backup ${t}`, 1)).toHaveLength(1);
  }, 60_000);

  it('Postfix answering 451: queued, exit 0; delivered once after the 451 is gone', async () => {
    const t = tag();
    await setSenderFault(s, Q451, '451 4.3.0 oauthmail test: try again later');
    let id: string;
    try {
      id = await expectQueued(t, /the mail server is not available now: .*451/, ['-f', Q451]);
    } finally {
      await setSenderFault(s, Q451, undefined);
    }
    await expectDeliveredOnce(t, id);
  }, 60_000);

  it("550 for the recipient: nothing queued, sendmail's exit code (67)", async () => {
    const r = await cron(['sendmail', 'nobody@contoso.test'], `Subject: x ${tag()}\n\nx\n`);
    expect(r.code, r.stderr).toBe(67);
    expect(r.stderr).not.toMatch(/queued/);
    expect(queueFiles()).toEqual([]);
  });
});

describe('status tells the truth', () => {
  it('after refresh --all printed FAILED (refused at the identity provider), status says not signed in, with date, code and fix: exit 4, --json problem', async () => {
    expect((await idp.admin('revoke-refresh-tokens', { user: ALICE.upn })).status).toBe(200);
    const ref = await cron(['refresh', '--all']);
    expect(ref.code).toBe(4);
    expect(ref.stderr).toMatch(/work: FAILED/);
    const st = await cron(['status']);
    expect(st.code, st.stdout + st.stderr).toBe(4);
    expect(st.stdout).toMatch(/signed in\s+no/);
    expect(st.stdout).not.toMatch(/refreshed on next use/);
    expect(st.stdout).toMatch(
      /the sign-in has ended: its last refresh was refused on \d{4}-\d\d-\d\dT[\d:.]+Z \(AADSTS\d+\): run oauthmail login work/,
    );
    const j = await cron(['status', '--json']);
    expect(j.code).toBe(4);
    const row = JSON.parse(j.stdout)[0];
    expect(row.signedIn).toBe(false);
    expect(row.health.lastFailureCode).toMatch(/^AADSTS\d+$/);
    expect(row.problems).toEqual([
      {
        problem: expect.stringMatching(
          /^the sign-in has ended: its last refresh was refused on .*\(AADSTS\d+\)$/,
        ),
        fix: 'oauthmail login work',
      },
    ]);
    await signIn();
    const ok = await cron(['status']);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/signed in\s+yes/);
  }, 60_000);
});

describe('the queue from the outside: send --queue, flushes, dead letters, status, --verify', () => {
  it('send --queue keeps it (Message-ID on stdout); refresh --all delivers it; a successful sendmail flushes the rest', async () => {
    const t = tag();
    await smtpDown(h, 'work');
    let mid: string;
    try {
      const r = await cron([
        'send',
        '--queue',
        '-p',
        'work',
        '--to',
        BOB,
        '-s',
        `sendq ${t}`,
        '--body',
        `b ${t}`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      mid = r.stdout.trim();
      expect(mid).toMatch(/^<[^<>\s]+>$/);
      // send announces its retries first ("retrying in …"), then says it queued
      expect(r.stderr).toMatch(/^oauthmail: queued \S+ \(the mail server is not available now/m);
      // without --queue, send keeps its exit code and queues nothing
      const plain = await cron(['send', '-p', 'work', '--to', BOB, '-s', `plain ${t}`, '--body', 'x']);
      expect(plain.code).toBe(6);
      expect(queueFiles()).toHaveLength(1);
      // one more from cron, through sendmail
      await expectQueued(t, /the mail server is not available now/);
      expect(queueFiles()).toHaveLength(2);
    } finally {
      await smtpUp(h, 'work', s);
    }
    const ref = await cron(['refresh', '--all']);
    expect(ref.code, ref.stderr).toBe(0);
    expect(ref.stderr).toMatch(/queue: 2 delivered, 0 deferred, 0 dead/);
    expect(queueFiles()).toEqual([]);
    const got = await waitForMail(s, BOB, `sendq ${t}`, 1);
    expect(got).toHaveLength(1);
    expect(got[0]!.text).toContain(mid!);
    expect(await waitForMail(s, BOB, `backup ${t}`, 1)).toHaveLength(1);

    // queued again, then a later successful sendmail delivers it too
    const t2 = tag();
    await smtpDown(h, 'work');
    try {
      await expectQueued(t2, /not available now/);
    } finally {
      await smtpUp(h, 'work', s);
    }
    const ok = await cron(['sendmail', BOB], `Subject: flush ${t2}\n\nnow\n`);
    expect(ok.code, ok.stderr).toBe(0);
    expect(queueFiles()).toEqual([]);
    expect(await waitForMail(s, BOB, `backup ${t2}`, 1)).toHaveLength(1);
  }, 90_000);

  it('the profile key queue=off keeps the old contract: exit 75 and nothing queued', async () => {
    expect((await h.run(['profile', 'edit', 'work', '--set', 'queue=off'])).code).toBe(0);
    try {
      await setSenderFault(s, Q451, '451 4.3.0 oauthmail test: try again later');
      const r = await cron(['sendmail', '-f', Q451, '-t', '-i'], cronMessage(tag()));
      expect(r.code, r.stderr).toBe(75);
      expect(r.stderr).not.toMatch(/queued/);
      expect(queueFiles()).toEqual([]);
      // --queue on the command line wins over the profile
      const q = await cron(['sendmail', '--queue', '-f', Q451, '-t', '-i'], cronMessage(tag()));
      expect(q.code, q.stderr).toBe(0);
      expect(queueFiles()).toHaveLength(1);
    } finally {
      await setSenderFault(s, Q451, undefined);
      expect((await h.run(['profile', 'edit', 'work', '--unset', 'queue'])).code).toBe(0);
    }
    const run = await cron(['queue', 'run']);
    expect(run.code, run.stderr).toBe(0);
    expect(queueFiles()).toEqual([]);
  }, 60_000);

  it('status shows what waits (exit 6 over OAUTHMAIL_QUEUE_WARN_AGE); a refused message and an expired one become dead letters (exit 5)', async () => {
    await smtpDown(h, 'work');
    let id: string;
    try {
      id = await expectQueued(tag(), /not available now/);
    } finally {
      await smtpUp(h, 'work', s);
    }
    const st = await cron(['status', 'work', '--json'], undefined, { OAUTHMAIL_QUEUE_WARN_AGE: '0' });
    expect(st.code, st.stderr).toBe(6);
    const j = JSON.parse(st.stdout)[0];
    expect(j.signedIn).toBe(true);
    expect(j.queue).toMatchObject({ waiting: 1, dead: 0 });
    expect(j.queue.oldestQueuedAt).toMatch(/^\d{4}-/);
    expect(j.warnings.map((w: { code: string }) => w.code)).toContain('queue_waiting');
    const text = await cron(['status', 'work']);
    expect(text.code, text.stderr).toBe(0); // under an hour: fine
    expect(text.stdout).toMatch(/queue\s+1 waiting \(oldest \d+ seconds/);
    expect((await cron(['queue', 'list'])).stdout).toContain(id!);
    const show = await cron(['queue', 'show', id!]);
    expect(show.stdout).toMatch(/^Message-ID: </m);
    expect(show.stderr).toContain('"profile": "work"');

    // a maximum age of 0: it is too old now, dead letter, reported
    const run = await cron(['queue', 'run', '--max-age', '0']);
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(new RegExp(`dead ${id!} \\(work\\): expired`));
    expect(queueFiles()).toEqual([]);
    // a message the server refuses for good goes there too (queued from a time it could not be sent)
    await smtpDown(h, 'work');
    try {
      const r = await cron(['sendmail', 'nobody@contoso.test'], `Subject: dead ${tag()}\n\nx\n`);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      await smtpUp(h, 'work', s);
    }
    const run2 = await cron(['queue', 'run']);
    expect(run2.code).toBe(5);
    expect(run2.stderr).toMatch(/dead \S+ \(work\): refused: .*550/);
    const dead = JSON.parse((await cron(['queue', 'list', '--dead', '--json'])).stdout) as Array<{
      id: string;
    }>;
    expect(dead).toHaveLength(2);
    const st2 = await cron(['status', 'work']);
    expect(st2.code).toBe(5);
    expect(st2.stdout).toMatch(/queue\s+2 dead/);
    expect(st2.stdout).toMatch(/dead letters\): run oauthmail queue list --dead/);
    for (const d of dead) expect((await cron(['queue', 'drop', '--dead', d.id])).code).toBe(0);
    expect((await cron(['status', 'work'])).code).toBe(0);
    expect((await cron(['queue', 'drop', '../../config/config'])).code).toBe(2);
  }, 60_000);

  it('status --verify finds a sign-in revoked since its last use (text and --json), with the fix; exit 4', async () => {
    expect((await idp.admin('revoke-refresh-tokens', { user: ALICE.upn })).status).toBe(200);
    const before = await cron(['status', 'work']);
    expect(before.code, before.stdout).toBe(0); // nothing has tried the token since: status cannot know
    const v = await cron(['status', 'work', '--verify']);
    expect(v.code, v.stdout + v.stderr).toBe(4);
    expect(v.stdout).toMatch(/signed in\s+no/);
    expect(v.stdout).toMatch(/verified now\s+no/);
    expect(v.stdout).toMatch(/refused on .*AADSTS\d+\): run oauthmail login work/);
    expect(v.stderr).toMatch(/hint: run: oauthmail login work/);
    const j = await cron(['status', 'work', '--json']);
    expect(j.code).toBe(4);
    const row = JSON.parse(j.stdout)[0];
    expect(row.signedIn).toBe(false);
    expect(row.problems[0].problem).toMatch(
      /the sign-in has ended: its last refresh was refused on \d{4}-.*\(AADSTS\d+\)/,
    );
    expect(row.problems[0].fix).toBe('oauthmail login work');
    await signIn();
    const after = await cron(['status', 'work', '--verify']);
    expect(after.code, after.stdout).toBe(0);
    expect(after.stdout).toMatch(/verified now\s+yes/);
  }, 60_000);
});

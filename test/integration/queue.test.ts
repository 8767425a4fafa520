/**
 * Issue 13: a cron job's notification is never lost. `oauthmail sendmail` run the way cron runs
 * it (env -i, no TTY, no D-Bus, the encrypted file store with its passphrase in a file), for each
 * failure: the sign-in revoked at the identity provider, the identity provider answering 503,
 * Postfix stopped, Postfix answering 451: the message is queued and sendmail exits 0; once the
 * fault is repaired `queue run` delivers every queued message exactly once, body byte-identical,
 * into Dovecot. A 550 for the recipient queues nothing and keeps sendmail's exit code.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cliHome, type CliHome, type CliResult } from '../support/cli.js';
import { mailbox, installSenderFaults, stack, waitForMail, type Stack } from './send-support.js';
import { ALICE, signInDeviceAtStack, signInStackProfile } from '../support/signin.js';
import { bodyOf, clearIdpFaults, cronRun, idpRequest, postfix, setSenderFault } from './queue-support.js';

let s: Stack;
let h: CliHome;
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
async function expectQueued(t: string, why: RegExp): Promise<string> {
  const before = queueFiles().length;
  const r = await cron(['sendmail', '-t', '-i'], cronMessage(t));
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
  const again = await cron(['queue', 'run']);
  expect(again.code, again.stderr).toBe(0);
  await new Promise((r2) => setTimeout(r2, 500));
  expect(mailbox(s, BOB).filter((m) => m.text.includes(`backup ${t}`))).toHaveLength(1);
}

beforeAll(async () => {
  s = stack();
  installSenderFaults(s);
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '', DBUS_SESSION_BUS_ADDRESS: '' });
  // the passphrase in a file, not in the crontab (OAUTHMAIL_PASSPHRASE_FILE)
  const pass = path.join(h.dir, 'passphrase');
  writeFileSync(pass, 'correct horse battery staple\n');
  chmodSync(pass, 0o600);
  h.env.OAUTHMAIL_PASSPHRASE_FILE = pass;
  // access tokens shorter than the 5-minute minimum validity: every send redeems the refresh token
  expect((await idpRequest('/_admin/config', { accessTokenLifetime: 60 })).status).toBe(200);
  secrets.add(await signInStackProfile(h, s.idpUrl, `${s.smtpHost}:${s.smtpPort}`));
  const e = await h.run([
    'profile',
    'edit',
    'work',
    '--set',
    'retry.initialDelayMs=50',
    '--set',
    'retry.maxDelayMs=200',
  ]);
  expect(e.code, e.stderr).toBe(0);
}, 90_000);

afterAll(async () => {
  await clearIdpFaults().catch(() => undefined);
  await idpRequest('/_admin/config', { accessTokenLifetime: 3600 }).catch(() => undefined);
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
      expect(text).not.toMatch(/RefreshToken|refresh_token|"secret"/);
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
    expect((await idpRequest('/_admin/revoke-refresh-tokens', { user: ALICE.upn })).status).toBe(200);
    const id = await expectQueued(t, /a sign-in is needed: .*oauthmail login work/);
    // status tells the truth: not signed in, the date, the provider's code, the fix, exit 4
    const st = await cron(['status', 'work']);
    expect(st.code, st.stderr).toBe(4);
    expect(st.stdout).toMatch(/signed in\s+no/);
    expect(st.stdout).toMatch(/refused on \d{4}-\d\d-\d\d.*AADSTS\d+.*run oauthmail login work/);
    expect(st.stdout).toMatch(/queue\s+1 waiting/);
    await signInDeviceAtStack(h, 'work', ALICE.upn);
    await expectDeliveredOnce(t, id);
  }, 60_000);

  it('identity provider answering 503: queued, exit 0 (no "exit code 6"); delivered once when it is back', async () => {
    const t = tag();
    expect(
      (await idpRequest('/_admin/faults', { endpoint: 'token', status: 503, times: -1 })).status,
    ).toBe(200);
    const id = await expectQueued(t, /temporarily unavailable/);
    const legacy = await cron(['sendmail', '--no-queue', '-t', '-i'], cronMessage(tag()));
    expect(legacy.code, legacy.stderr).toBe(75);
    expect(legacy.stderr).not.toMatch(/exit code 6/);
    expect(queueFiles()).toHaveLength(1);
    expect(await clearIdpFaults()).toBe(200);
    await expectDeliveredOnce(t, id);
  }, 60_000);

  it('Postfix stopped: queued, exit 0; delivered once when it runs again', async () => {
    const t = tag();
    postfix(s, 'stop');
    let id: string;
    try {
      id = await expectQueued(t, /the mail server is not available now/);
      const q = await cron(['queue', 'run']);
      expect(q.code).toBe(6); // still down: deferred, kept
      expect(q.stderr).toMatch(new RegExp(`deferred ${id}`));
      expect(queueFiles()).toHaveLength(1);
    } finally {
      postfix(s, 'start');
    }
    // the deferred message has a next attempt time (backoff): --force tries it now
    const r = await cron(['queue', 'run', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(queueFiles()).toEqual([]);
    expect(await waitForMail(s, BOB, `backup ${t}`, 1)).toHaveLength(1);
  }, 60_000);

  it('Postfix answering 451: queued, exit 0; delivered once after the 451 is gone', async () => {
    const t = tag();
    setSenderFault(s, 'alice@contoso.test', '451 4.3.0 oauthmail test: try again later');
    let id: string;
    try {
      id = await expectQueued(t, /the mail server is not available now: .*451/);
    } finally {
      setSenderFault(s, 'alice@contoso.test', undefined);
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

/**
 * The real CLI (`node bin/oauthmail.js`) reading mail: `mailboxes`, `list` and `fetch` with a
 * profile signed in by device code at a private fake IdP (signed with the stack's key, so the
 * local Dovecot accepts its tokens), IMAP pointed at the stack's IMAPS port.
 *
 * Also: the shared-mailbox case as far as the stack models it, the refresh-once-and-retry rule for
 * a refused token (counted at the IdP, and with a TokenSource at the core level), and no token in
 * anything the CLI printed, --verbose included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import { cliHome, type CliHome, type CliResult } from '../support/cli.js';
import {
  ALICE,
  addMicrosoftProfile,
  signInDevice,
  startTestIdp,
  type Json,
  type TestIdp,
} from '../support/signin.js';
import { adminClient, freshFolder, imapProfile, mintImapToken, rawMessage, stack } from './fetch-support.js';
import { connectImap, closeImap } from '../../src/mail/imap.js';
import type { TokenSource } from '../../src/mail/token-source.js';

const s = stack();
const SHARED = 'shared@contoso.test';
let idp: TestIdp;
let h: CliHome;
let admin: ImapFlow;
let work: string;
const folders: string[] = [];
const transcript: string[] = [];
const tokens = new Set<string>();

async function cli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  const r = await h.run(args, { timeoutMs: 60_000, ...opts });
  transcript.push(`$ oauthmail ${args.join(' ')}\n[exit ${r.code}]\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The access token the profile holds now (not in the transcript: printing it is `token`'s job). */
async function rememberToken(profile: string): Promise<void> {
  const t = await h.run(['token', profile]);
  expect(t.code, t.stderr).toBe(0);
  tokens.add(t.stdout.trim());
}

const mid = (b: Buffer | string) =>
  /^Message-ID: <([^>]+)>/im.exec(typeof b === 'string' ? b : b.toString('latin1'))?.[1];
const jsonLines = (out: string): Json[] =>
  out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

async function folderWith(
  prefix: string,
  msgs: Array<{ raw: Buffer; seen?: boolean; date?: string }>,
): Promise<string> {
  const f = await freshFolder(admin, prefix);
  folders.push(f);
  for (const m of msgs)
    await admin.append(f, m.raw, m.seen ? ['\\Seen'] : [], new Date(m.date ?? '2025-11-20T10:00:00Z'));
  return f;
}

async function count(folder: string): Promise<{ messages: number; unseen: number }> {
  const st = await admin.status(folder, { messages: true, unseen: true });
  if (!st) throw new Error(`STATUS ${folder} failed`);
  return { messages: st.messages ?? -1, unseen: st.unseen ?? -1 };
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-fetch-cli-'));
  idp = await startTestIdp();
  expect((await idp.admin('config', { deviceCodeInterval: 1 })).status).toBe(200);
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  const imap = ['--imap', `localhost:${s.imapsPort}`, '--imap-security', 'tls'];
  const add = await cli([
    'profile',
    'add',
    'work',
    '--client-id',
    '11111111-1111-4111-8111-111111111111',
    '--authority',
    `${idp.url}/3f9c1e2a-7b4d-4c8e-9a61-5d2f8e7b1c40/`,
    '--user',
    ALICE.upn,
    '--storage',
    'file',
    ...imap,
  ]);
  expect(add.code, add.stderr).toBe(0);
  const login = await signInDevice(h, 'work', idp);
  transcript.push(login.stdout, login.stderr);
  expect(login.code, login.stderr).toBe(0);
  await rememberToken('work');
  // a profile for the shared mailbox: SASL user shared@, signed in as its delegate alice
  const addShared = await addMicrosoftProfile(h, 'shared', idp.url, ['--user', SHARED, ...imap]);
  transcript.push(addShared.stdout, addShared.stderr);
  expect(addShared.code, addShared.stderr).toBe(0);
  const loginShared = await signInDevice(h, 'shared', idp, ALICE.upn);
  transcript.push(loginShared.stdout, loginShared.stderr);
  expect(loginShared.code, loginShared.stderr).toBe(0);
  await rememberToken('shared');
  admin = await adminClient(s, ALICE.upn);
}, 120_000);

afterAll(async () => {
  for (const f of folders) await admin?.mailboxDelete(f).catch(() => undefined);
  await admin?.logout().catch(() => undefined);
  await idp?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  if (h) rmSync(h.dir, { recursive: true, force: true });
});

describe('oauthmail mailboxes', () => {
  it('shows the folder tree with message and unseen counts (table and --json)', async () => {
    const f = await folderWith('mb', [
      { raw: rawMessage(1, 500) },
      { raw: rawMessage(2, 500), seen: true },
      { raw: rawMessage(3, 500) },
    ]);
    const t = await cli(['mailboxes', '-p', 'work']);
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^FOLDER\s+MESSAGES\s+UNSEEN\s+SPECIAL$/);
    expect(lines[1]).toMatch(/^INBOX\s/);
    expect(lines.find((l) => l.startsWith(f + ' '))).toMatch(new RegExp(`^${f}\\s+3\\s+2$`));

    const j = await cli(['mailboxes', '-p', 'work', '--json']);
    expect(j.code, j.stderr).toBe(0);
    const rows = JSON.parse(j.stdout) as Json[];
    expect(rows[0].path).toBe('INBOX');
    expect(rows.find((r) => r.path === f)).toMatchObject({
      path: f,
      messages: 3,
      unseen: 2,
      selectable: true,
    });
  });
});

describe('oauthmail list', () => {
  let f: string;
  beforeAll(async () => {
    f = await folderWith('list', [
      {
        raw: rawMessage(1, 400, { from: 'Bob <bob@contoso.test>', subject: 'Invoice 1001' }),
        date: '2025-01-10T10:00:00Z',
        seen: true,
      },
      {
        raw: rawMessage(2, 2000, { from: 'Carol <carol@fabrikam.test>', subject: 'lunch?' }),
        date: '2025-02-10T10:00:00Z',
      },
      {
        raw: rawMessage(3, 600, { from: 'Bob <bob@contoso.test>', subject: 'Re: lunch?' }),
        date: '2025-03-10T10:00:00Z',
      },
      {
        raw: rawMessage(4, 800, { from: 'Dave <dave@fabrikam.test>', subject: 'Invoice 1002' }),
        date: '2025-04-10T10:00:00Z',
        seen: true,
      },
      {
        raw: rawMessage(5, 900, { from: 'Erin <erin@fabrikam.test>', subject: 'status report' }),
        date: '2025-05-10T10:00:00Z',
      },
    ]);
  });
  const subjects = (r: CliResult) => jsonLines(r.stdout).map((x) => x.subject);

  it('prints a table: one row per message with UID, date, from, subject, size and flags', async () => {
    const r = await cli(['list', '-p', 'work', '--mailbox', f]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s*UID\s+DATE\s+FROM\s+SUBJECT\s+SIZE\s+FLAGS$/);
    expect(lines).toHaveLength(6);
    expect(lines[1]).toMatch(
      /^\s+1\s+2025-11-20 10:00\s+Bob <bob@contoso\.test>\s+Invoice 1001\s+\S+ B\s+\\Seen$/,
    );
    expect(lines[2]).toMatch(/^\s+2\s.*Carol <carol@fabrikam\.test>\s+lunch\?\s+\d+\.\d KB$/);
  });

  it('--json prints one JSON object per line', async () => {
    const r = await cli(['list', '-p', 'work', '--mailbox', f, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = jsonLines(r.stdout);
    expect(rows.map((x) => x.uid)).toEqual([1, 2, 3, 4, 5]);
    expect(rows[0]).toMatchObject({
      uid: 1,
      from: 'Bob <bob@contoso.test>',
      subject: 'Invoice 1001',
      flags: ['\\Seen'],
    });
    expect(rows[1].flags).toEqual([]);
    expect(rows[1].size).toBeGreaterThan(2000 - 80);
  });

  it('filters: --unseen, --since, --before, --from, --subject, --limit', async () => {
    expect(subjects(await cli(['list', '-p', 'work', '--mailbox', f, '--json', '--unseen']))).toEqual([
      'lunch?',
      'Re: lunch?',
      'status report',
    ]);
    expect(
      subjects(await cli(['list', '-p', 'work', '--mailbox', f, '--json', '--since', '2025-03-01'])),
    ).toEqual(['Re: lunch?', 'Invoice 1002', 'status report']);
    expect(
      subjects(await cli(['list', '-p', 'work', '--mailbox', f, '--json', '--before', '2025-02-11'])),
    ).toEqual(['Invoice 1001', 'lunch?']);
    expect(
      subjects(await cli(['list', '-p', 'work', '--mailbox', f, '--json', '--from', 'bob@contoso'])),
    ).toEqual(['Invoice 1001', 'Re: lunch?']);
    expect(
      subjects(await cli(['list', '-p', 'work', '--mailbox', f, '--json', '--subject', 'invoice'])),
    ).toEqual(['Invoice 1001', 'Invoice 1002']);
    // the newest N
    expect(subjects(await cli(['list', '-p', 'work', '--mailbox', f, '--json', '--limit', '2']))).toEqual([
      'Invoice 1002',
      'status report',
    ]);
    expect(
      subjects(
        await cli([
          'list',
          '-p',
          'work',
          '--mailbox',
          f,
          '--json',
          '--unseen',
          '--from',
          'bob',
          '--limit',
          '5',
        ]),
      ),
    ).toEqual(['Re: lunch?']);
  });

  it('no match: nothing on stdout, a sentence on stderr, exit 0', async () => {
    const r = await cli(['list', '-p', 'work', '--mailbox', f, '--subject', 'no-such-subject-xyz']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`no messages in ${f} match`);
  });

  it('bad input and a missing folder: exit 2 and exit 5 with what to do', async () => {
    const bad = await cli(['list', '-p', 'work', '--mailbox', f, '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since "yesterday-ish": not a date');
    const lim = await cli(['list', '-p', 'work', '--mailbox', f, '--limit', '0']);
    expect(lim.code).toBe(2);
    const missing = await cli(['list', '-p', 'work', '--mailbox', 'No-Such-Folder-123']);
    expect(missing.code, missing.stderr).toBe(5);
    expect(missing.stderr).toContain('mailbox No-Such-Folder-123 not found');
    expect(missing.stderr).toContain('oauthmail mailboxes');
  });
});

describe('oauthmail fetch', () => {
  const emlFiles = (dir: string) =>
    readdirSync(dir)
      .filter((x) => x.endsWith('.eml'))
      .sort();

  it('eml: byte-identical files, one path per line on stdout; a rerun fetches only new messages', async () => {
    const msgs = [rawMessage(1, 300), rawMessage(2, 40_000), rawMessage(3, 900_000), rawMessage(4, 1200)];
    const f = await folderWith(
      'eml',
      msgs.map((raw) => ({ raw })),
    );
    const out = path.join(work, 'eml');
    const r = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const printed = r.stdout.trim().split('\n');
    expect(printed).toHaveLength(4);
    const files = emlFiles(out);
    expect(files).toHaveLength(4);
    expect(printed.map((p) => path.basename(p)).sort()).toEqual(files);
    const byId = new Map(msgs.map((m) => [mid(m)!, m]));
    for (const file of files) {
      const bytes = readFileSync(path.join(out, file));
      expect(bytes.equals(byId.get(mid(bytes)!)!)).toBe(true);
    }
    expect(r.stderr).toMatch(/fetch: 4 saved to /);
    // nothing new: nothing fetched
    const again = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/fetch: 0 saved/);
    // two new ones: only they are fetched
    const more = [rawMessage(5, 500), rawMessage(6, 700)];
    for (const m of more) await admin.append(f, m);
    const third = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--json']);
    expect(third.code, third.stderr).toBe(0);
    const saved = jsonLines(third.stdout);
    expect(saved.map((x) => x.uid)).toEqual([5, 6]);
    for (const sv of saved) expect(readFileSync(sv.file).equals(more[sv.uid - 5]!)).toBe(true);
    expect(emlFiles(out)).toHaveLength(6);
    // the server still has them all (no action asked for), and they are still unseen
    expect(await count(f)).toEqual({ messages: 6, unseen: 6 });
  });

  it('maildir: files in new/, byte-identical; a rerun fetches only new messages', async () => {
    const msgs = [rawMessage(1, 300), rawMessage(2, 600_000), rawMessage(3, 2000)];
    const f = await folderWith(
      'maildir',
      msgs.map((raw) => ({ raw })),
    );
    const out = path.join(work, 'maildir');
    const r = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--format', 'maildir']);
    expect(r.code, r.stderr).toBe(0);
    for (const sub of ['tmp', 'new', 'cur']) expect(existsSync(path.join(out, sub))).toBe(true);
    const byId = new Map(msgs.map((m) => [mid(m)!, m]));
    const check = (n: number) => {
      const names = readdirSync(path.join(out, 'new'));
      expect(names).toHaveLength(n);
      for (const name of names) {
        expect(name).toMatch(/^\d+\.oauthmail-[0-9a-f]{8}-\d+-\d+\.[^/]+,S=\d+$/);
        const bytes = readFileSync(path.join(out, 'new', name));
        expect(bytes.equals(byId.get(mid(bytes)!)!)).toBe(true);
      }
      expect(readdirSync(path.join(out, 'tmp'))).toEqual([]);
    };
    check(3);
    const extra = rawMessage(4, 800);
    byId.set(mid(extra)!, extra);
    await admin.append(f, extra);
    const again = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--format', 'maildir']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim().split('\n')).toHaveLength(1);
    check(4);
  });

  it('mbox: one mboxrd file, From_ lines escaped, CRLF to LF; a rerun appends only new messages', async () => {
    const msgs = [rawMessage(1, 300), rawMessage(2, 5000)];
    const f = await folderWith(
      'mbox',
      msgs.map((raw) => ({ raw })),
    );
    const out = path.join(work, 'mbox');
    const r = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--format', 'mbox']);
    expect(r.code, r.stderr).toBe(0);
    const mboxFile = path.join(
      out,
      readdirSync(out).find((x) => x.endsWith('.mbox'))!,
    );
    const expected = (m: Buffer) =>
      m
        .toString('latin1')
        .replace(/\r\n/g, '\n')
        .replace(/^(>*From )/gm, '>$1');
    const parse = () =>
      readFileSync(mboxFile, 'latin1')
        .split(/^(?=From MAILER-DAEMON )/m)
        .filter(Boolean);
    let parts = parse();
    expect(parts).toHaveLength(2);
    for (const [i, p] of parts.entries()) {
      expect(p).toMatch(/^From MAILER-DAEMON \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/);
      expect(p.slice(p.indexOf('\n') + 1)).toBe(expected(msgs[i]!) + '\n');
      expect(p).toContain('\n>From the start: message');
    }
    const extra = rawMessage(3, 700);
    await admin.append(f, extra);
    const again = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--format', 'mbox']);
    expect(again.code, again.stderr).toBe(0);
    parts = parse();
    expect(parts).toHaveLength(3);
    expect(parts[2]!.slice(parts[2]!.indexOf('\n') + 1)).toBe(expected(extra) + '\n');
  });

  it('a filtered fetch, then an unfiltered one: the second saves exactly the messages the first skipped (mbox, no duplicates)', async () => {
    const msgs = [rawMessage(1, 300), rawMessage(2, 400), rawMessage(3, 500), rawMessage(4, 600)];
    const f = await folderWith(
      'mixed',
      msgs.map((raw, i) => ({ raw, seen: i % 2 === 0 })),
    );
    const out = path.join(work, 'mixed');
    const ids = () =>
      readFileSync(
        path.join(
          out,
          readdirSync(out).find((x) => x.endsWith('.mbox'))!,
        ),
        'latin1',
      )
        .split(/^(?=From MAILER-DAEMON )/m)
        .filter(Boolean)
        .map((p) => mid(p));
    const first = await cli([
      'fetch',
      '-p',
      'work',
      '--mailbox',
      f,
      '--out',
      out,
      '--format',
      'mbox',
      '--unseen',
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(ids()).toEqual([mid(msgs[1]!), mid(msgs[3]!)]);
    const second = await cli([
      'fetch',
      '-p',
      'work',
      '--mailbox',
      f,
      '--out',
      out,
      '--format',
      'mbox',
      '--json',
    ]);
    expect(second.code, second.stderr).toBe(0);
    expect(jsonLines(second.stdout).map((x) => x.uid)).toEqual([1, 3]);
    expect(ids()).toEqual([mid(msgs[1]!), mid(msgs[3]!), mid(msgs[0]!), mid(msgs[2]!)]);
    const third = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--format', 'mbox']);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout).toBe('');
    expect(ids()).toHaveLength(4);
  });

  it('--mark-seen sets \\Seen only on the saved messages (the --unseen filter)', async () => {
    const f = await folderWith('seen', [
      { raw: rawMessage(1, 300) },
      { raw: rawMessage(2, 300), seen: true },
      { raw: rawMessage(3, 300) },
    ]);
    const out = path.join(work, 'seen');
    const r = await cli([
      'fetch',
      '-p',
      'work',
      '--mailbox',
      f,
      '--out',
      out,
      '--unseen',
      '--mark-seen',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(r.stdout).map((x) => x.uid)).toEqual([1, 3]);
    expect(r.stderr).toContain('2 marked seen');
    expect(await count(f)).toEqual({ messages: 3, unseen: 0 });
    const list = await cli(['list', '-p', 'work', '--mailbox', f, '--unseen', '--json']);
    expect(list.stdout).toBe('');
  });

  it('--move-to moves the saved messages; a missing target fails before anything is downloaded', async () => {
    const msgs = [rawMessage(1, 300), rawMessage(2, 300)];
    const f = await folderWith(
      'move',
      msgs.map((raw) => ({ raw })),
    );
    const target = await freshFolder(admin, 'moved');
    folders.push(target);
    const bad = await cli([
      'fetch',
      '-p',
      'work',
      '--mailbox',
      f,
      '--out',
      path.join(work, 'move-bad'),
      '--move-to',
      'No-Such-Target-9',
    ]);
    expect(bad.code, bad.stderr).toBe(5);
    expect(bad.stderr).toContain('No-Such-Target-9 not found');
    expect(existsSync(path.join(work, 'move-bad')) ? emlFiles(path.join(work, 'move-bad')) : []).toEqual([]);
    expect(await count(f)).toEqual({ messages: 2, unseen: 2 });

    const out = path.join(work, 'move');
    const r = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--move-to', target]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`2 moved to ${target}`);
    expect(emlFiles(out)).toHaveLength(2);
    expect((await count(f)).messages).toBe(0);
    expect((await count(target)).messages).toBe(2);
  });

  it('--delete removes the saved messages from the server; the files stay', async () => {
    const msgs = [rawMessage(1, 300), rawMessage(2, 800_000), rawMessage(3, 300)];
    const f = await folderWith(
      'delete',
      msgs.map((raw) => ({ raw })),
    );
    const out = path.join(work, 'delete');
    const r = await cli(['fetch', '-p', 'work', '--mailbox', f, '--out', out, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('3 deleted');
    expect((await count(f)).messages).toBe(0);
    const ids = emlFiles(out).map((x) => mid(readFileSync(path.join(out, x))));
    expect(ids.sort()).toEqual(msgs.map((m) => mid(m)).sort());
    // --move-to and --delete together: bad usage
    const both = await cli([
      'fetch',
      '-p',
      'work',
      '--mailbox',
      f,
      '--out',
      out,
      '--delete',
      '--move-to',
      'INBOX',
    ]);
    expect(both.code).toBe(2);
  });

  it('--verbose: the protocol log is on stderr, and still no token in it', async () => {
    const f = await folderWith('verbose', [{ raw: rawMessage(1, 300) }]);
    const r = await cli([
      '--verbose',
      'fetch',
      '-p',
      'work',
      '--mailbox',
      f,
      '--out',
      path.join(work, 'verbose'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/imap/i);
    expect(r.stderr).toMatch(/signed in to localhost as alice@contoso\.test/);
    const l = await cli(['--verbose', 'list', '-p', 'work', '--mailbox', f]);
    expect(l.code, l.stderr).toBe(0);
    const m = await cli(['--verbose', 'mailboxes', '-p', 'work']);
    expect(m.code, m.stderr).toBe(0);
  });
});

describe('shared mailbox and refused tokens', () => {
  it('SASL user is the shared mailbox; the stack does not model delegation, so Dovecot refuses: one refresh, one retry, exit 5', async () => {
    // Dovecot's oauth2 passdb (username_attribute = email) admits a token only for the mailbox
    // named in its email claim: alice's token for shared@ is refused, as Exchange would refuse it
    // without FullAccess. What we can check: the user sent is shared@, the refusal is explained,
    // and the cached token (which looked valid) is refreshed exactly once and tried once more.
    const before = (await idp.admin('stats')).json;
    const r = await cli(['--verbose', 'list', '-p', 'shared']);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain(`AUTHENTICATE failed for ${SHARED}`);
    expect(r.stderr).toMatch(/FullAccess|shared mailbox/);
    expect(r.stderr).toContain('the server refused the token; getting a new one and trying once more');
    const after = (await idp.admin('stats')).json;
    const refreshes = (after.token?.refresh_token ?? 0) - (before.token?.refresh_token ?? 0);
    expect(refreshes).toBe(1);
    await rememberToken('shared');
  });

  it('a token the server accepts is not refreshed (the work profile: no IdP call)', async () => {
    const before = (await idp.admin('stats')).json;
    const r = await cli(['list', '-p', 'work', '--mailbox', 'INBOX', '--limit', '1']);
    expect(r.code, r.stderr).toBe(0);
    const after = (await idp.admin('stats')).json;
    expect((after.token?.refresh_token ?? 0) - (before.token?.refresh_token ?? 0)).toBe(0);
  });

  it('core: a refused token that looked valid → exactly one forced refresh and one retry', async () => {
    const calls: boolean[] = [];
    const good = mintImapToken(s, ALICE.upn);
    const wrongScope = mintImapToken(s, ALICE.upn, { scope: 'SMTP.Send' });
    const source: TokenSource = {
      user: ALICE.upn,
      getAccessToken: (o) => {
        calls.push(!!o?.forceRefresh);
        return Promise.resolve(o?.forceRefresh ? good : wrongScope);
      },
    };
    const conn = await connectImap(imapProfile(s, ALICE.upn), source, {});
    expect(conn.refreshed).toBe(true);
    expect(calls).toEqual([false, true]);
    await closeImap(conn.client);

    // both refused: exactly two tries, then a MailServerError (exit 5) that says why
    const refused: boolean[] = [];
    const bad: TokenSource = {
      user: ALICE.upn,
      getAccessToken: (o) => {
        refused.push(!!o?.forceRefresh);
        return Promise.resolve(wrongScope);
      },
    };
    const e = (await connectImap(imapProfile(s, ALICE.upn), bad, {}).then(
      () => ({ code: 'connected', message: '' }),
      (x: unknown) => x as { code?: string; exitCode?: number; message: string },
    )) as { code?: string; exitCode?: number; message: string };
    expect(refused).toEqual([false, true]);
    expect(e).toMatchObject({ code: 'imap_auth_refused', exitCode: 5 });
    expect(e.message).toContain(`AUTHENTICATE failed for ${ALICE.upn}`);
  });
});

describe('no secrets in output', () => {
  it('no access token (nor its SASL encoding, nor any JWT) in any captured stdout/stderr, --verbose included', async () => {
    await rememberToken('work');
    const all = transcript.join('\n');
    expect(all.length).toBeGreaterThan(1000);
    expect(all).toContain('imap'); // the --verbose runs are in here
    for (const t of tokens) {
      expect(t.length).toBeGreaterThan(100);
      expect(all.includes(t), 'a token leaked into CLI output').toBe(false);
      for (const u of [ALICE.upn, SHARED]) {
        expect(all.includes(Buffer.from(`user=${u}\x01auth=Bearer ${t}\x01\x01`).toString('base64'))).toBe(
          false,
        );
      }
      // a token's signature alone is enough to be a leak
      expect(all.includes(t.split('.')[2]!)).toBe(false);
    }
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
  });
});

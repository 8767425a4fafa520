/**
 * Sending through Microsoft Graph from a profile (issue 16): a Microsoft profile with
 * `transport graph`, signed in by device code at the stack's IdP for the Graph scopes, sends with
 * `oauthmail send` and `oauthmail sendmail -t` through the local Graph endpoint
 * (test/support/graph), which delivers through the stack's Postfix into Dovecot. What arrives is
 * what was sent (text, HTML, attachment, UTF-8), Bcc recipients get it but no copy shows a Bcc
 * field, a 429 with Retry-After is waited out, one that outlasts the retries queues in sendmail and
 * `queue run` delivers it over Graph, and `--json` says accepted (202), not delivered.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cliHome, type CliHome, type CliResult } from '../support/cli.js';
import { addMicrosoftProfile, signInDeviceAtStack } from '../support/signin.js';
import { fixtures, graphAdmin, idpRequest } from '../support/stack-env.js';
import { ALICE, BOB, CAROL, DAEMON, SHARED, graphBase } from './graph-support.js';
import { mailbox, stack, waitForMail, type Stack } from './send-support.js';

let s: Stack;
let h: CliHome;
const transcript: string[] = [];
let token = '';
const tag = () => `g${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

async function cli(args: string[], opts: { input?: string } = {}): Promise<CliResult> {
  const r = await h.run(args, opts);
  transcript.push(`$ ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The endpoint answers alice's next sendMail(s) with 429 and this Retry-After (seconds). */
const throttleSendMail = (retryAfter: number, times: number | 'always') =>
  graphAdmin('faults', { status: 429, retryAfter, path: `/users/${ALICE}/sendMail`, method: 'POST', times });

/** What `send --json` says over Graph: 202, accepted for delivery, not delivered. */
const ACCEPTED = { transport: 'graph', status: 202, accepted: true, delivered: false };

/** `oauthmail send -p g --json ARGS...` */
const sendJson = (...args: string[]) => cli(['send', '-p', 'g', '--json', ...args]);

interface SentRecord {
  mailbox: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  messageId: string;
  accepted: string[];
}
interface LogEntry {
  method: string;
  path: string;
  status: number;
}
const sent = async (messageId: string) =>
  (await graphAdmin<{ sent: SentRecord[] }>('sent')).json.sent.filter((x) => x.messageId === messageId);
const requests = async (part: string) =>
  (await graphAdmin<{ requests: LogEntry[] }>('log')).json.requests.filter((r) => r.path.includes(part));

/** The header block of a delivered message, unfolded. */
const headerOf = (text: string) =>
  text
    .split(/\r?\n\r?\n/)[0]!
    .replace(/\r?\n[ \t]+/g, ' ')
    .split(/\r?\n/);

/** The parts of a (one-level or nested) multipart message: their headers and decoded bodies. */
function parts(text: string): Array<{ type: string; head: string; body: Buffer }> {
  const out: Array<{ type: string; head: string; body: Buffer }> = [];
  const walk = (chunk: string) => {
    const i = chunk.search(/\r?\n\r?\n/);
    const head = i < 0 ? chunk : chunk.slice(0, i);
    const body = i < 0 ? '' : chunk.slice(i).replace(/^\r?\n\r?\n/, '');
    const flat = head.replace(/\r?\n[ \t]+/g, ' ');
    const type = /^content-type:\s*([^;\s]+)/im.exec(flat)?.[1]?.toLowerCase() ?? 'text/plain';
    const boundary = /boundary="?([^";\s]+)"?/i.exec(flat)?.[1];
    if (type.startsWith('multipart/') && boundary) {
      for (const p of body.split(`--${boundary}`).slice(1))
        if (!p.startsWith('--')) walk(p.replace(/^\r?\n/, ''));
      return;
    }
    const cte = /^content-transfer-encoding:\s*(\S+)/im.exec(flat)?.[1]?.toLowerCase();
    const decoded =
      cte === 'base64'
        ? Buffer.from(body.replace(/\s+/g, ''), 'base64')
        : cte === 'quoted-printable'
          ? Buffer.from(
              body
                .replace(/=\r?\n/g, '')
                .replace(/=([0-9A-F]{2})/g, (_m, x: string) => String.fromCharCode(parseInt(x, 16))),
              'latin1',
            )
          : Buffer.from(body, 'utf8');
    out.push({ type, head: flat, body: decoded });
  };
  walk(text);
  return out;
}

beforeAll(async () => {
  s = stack();
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  // other files' switches are scoped to their own mailboxes; clear what could touch alice's
  await graphAdmin('faults', undefined, 'DELETE');
  await graphAdmin('config', { refuseSendAs: false, disabledMailboxes: [], quotaExceeded: [] });
  expect((await idpRequest('/_admin/config', { deviceCodeInterval: 1 })).status).toBe(200);
  const add = await addMicrosoftProfile({ run: cli }, 'g', s.idpUrl, [
    '--transport',
    'graph',
    '--graph-url',
    graphBase(),
  ]);
  expect(add.code, add.stderr).toBe(0);
  await signInDeviceAtStack(h, 'g', ALICE);
  const t = await h.run(['token', 'g']);
  expect(t.code, t.stderr).toBe(0);
  token = t.stdout.trim();
}, 60_000);

beforeEach(async () => {
  await graphAdmin('faults', undefined, 'DELETE');
});

afterAll(async () => {
  await graphAdmin('faults', undefined, 'DELETE');
  const all = transcript.join('\n');
  expect(token.length).toBeGreaterThan(20);
  expect(all.includes(token), 'a token leaked into CLI output').toBe(false);
  expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
});

describe('a profile with transport graph', () => {
  it('asks for the Graph scopes and signs in for a token with the Graph audience', async () => {
    const show = await cli(['profile', 'show', 'g']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/transport\s+graph/);
    expect(show.stdout).toMatch(
      /scopes\s+https:\/\/graph\.microsoft\.com\/Mail\.Send https:\/\/graph\.microsoft\.com\/Mail\.ReadWrite offline_access/,
    );
    expect(show.stdout).not.toMatch(/outlook\.office\.com/);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as {
      aud: string;
      scp: string;
    };
    expect(claims.aud).toBe('https://graph.microsoft.com');
    expect(claims.scp.split(' ')).toEqual(expect.arrayContaining(['Mail.Send', 'Mail.ReadWrite']));
    // `scopes` explains them; `test` (SMTP and IMAP checks) says plainly it does not check Graph yet
    const sc = await cli(['scopes', '--provider', 'microsoft']);
    expect(sc.stdout).toMatch(
      /https:\/\/graph\.microsoft\.com\/Mail\.Send {2}\(delegated\)\n {4}why: +send mail with transport graph/,
    );
    expect(sc.stdout).toMatch(/https:\/\/graph\.microsoft\.com\/\.default {2}\(application\)/);
    const test = await cli(['test', 'g']);
    expect(test.code).toBe(2);
    expect(test.stderr).toMatch(/oauthmail test does not check transport graph profiles yet/);
  });

  it('send: text, HTML, attachment, Bcc and UTF-8 arrive through Graph; no Bcc field in any copy; --json says accepted, not delivered', async () => {
    const t = tag();
    const html = path.join(h.dir, `${t}.html`);
    writeFileSync(html, `<p>Grüße <b>${t}</b> ✓</p>`);
    const data = randomBytes(200 * 1024);
    const att = path.join(h.dir, 'Bericht-ü.bin');
    writeFileSync(att, data);
    const r = await sendJson(
      '--to',
      BOB,
      '--cc',
      SHARED,
      '--bcc',
      CAROL,
      '-s',
      `Grüße ✓ ${t}`,
      '--header',
      `X-Tag: ${t}`,
      '--body',
      `Hallo ünïcödé ✓ ${t}`,
      '--html',
      html,
      '--attach',
      att,
    );
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject(ACCEPTED);
    expect(j.messageId).toMatch(/^<[^<>\s]+@contoso\.test>$/);
    expect(r.stdout).not.toMatch(/"delivered":true/);
    // Graph got the Bcc recipient (from the Bcc field added for Graph only) ...
    const rec = await sent(j.messageId as string);
    expect(rec).toHaveLength(1);
    expect(rec[0]!.bcc).toEqual([CAROL]);
    expect(rec[0]!.to).toEqual([BOB]);
    expect(rec[0]!.cc).toEqual([SHARED]);
    // ... and every recipient has exactly one copy, none with a Bcc field
    for (const who of [BOB, SHARED, CAROL]) {
      const got = await waitForMail(s, who, `X-Tag: ${t}`, 1);
      expect(got, who).toHaveLength(1);
      const text = got[0]!.text;
      const head = headerOf(text);
      expect(
        head.filter((l) => /^bcc:/i.test(l)),
        who,
      ).toEqual([]);
      if (who !== CAROL) expect(text, who).not.toContain(CAROL);
      expect(head).toContain(`Message-ID: ${j.messageId as string}`);
      expect(head.find((l) => /^subject:/i.test(l))).toMatch(/=\?UTF-8\?/i);
      const ps = parts(text);
      expect(ps.find((p) => p.type === 'text/plain')!.body.toString('utf8')).toContain(
        `Hallo ünïcödé ✓ ${t}`,
      );
      expect(ps.find((p) => p.type === 'text/html')!.body.toString('utf8')).toContain(
        `<p>Grüße <b>${t}</b> ✓</p>`,
      );
      const a = ps.find((p) => /filename/i.test(p.head));
      expect(a, 'the attachment').toBeDefined();
      expect(a!.body.equals(data)).toBe(true);
    }
    // sent through Graph, not SMTP: the endpoint logged the sendMail
    expect((await requests(`/users/${ALICE}/sendMail`)).some((q) => q.status === 202)).toBe(true);
  });

  it('send --attach 10 MB: through a draft and an upload session, to To and Bcc, the attachment intact', async () => {
    const t = tag();
    const data = randomBytes(10 * 1024 * 1024);
    const att = path.join(h.dir, `${t}.bin`);
    writeFileSync(att, data);
    const before = (await requests(`/users/${ALICE}/`)).length;
    const r = await sendJson(
      '--to',
      BOB,
      '--bcc',
      CAROL,
      '-s',
      `large ${t}`,
      '--header',
      `X-Tag: ${t}`,
      '--body',
      t,
      '--attach',
      att,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject(ACCEPTED);
    const log = (await requests(`/users/${ALICE}/`))
      .slice(before)
      .map(
        (q) =>
          `${q.method} ${q.path.replace(/.*\/users\/[^/]+\//, '').replace(/messages\/[^/]+/, 'messages/ID')} ${q.status}`,
      );
    expect(log).toContain('POST messages/ID/attachments/createUploadSession 201');
    expect(log).toContain('POST messages/ID/send 202');
    expect(log.filter((l) => l.startsWith('POST sendMail'))).toEqual([]);
    for (const who of [BOB, CAROL]) {
      const got = await waitForMail(s, who, `X-Tag: ${t}`, 1, 30_000);
      expect(got, who).toHaveLength(1);
      expect(
        headerOf(got[0]!.text).filter((l) => /^bcc:/i.test(l)),
        who,
      ).toEqual([]);
      const a = parts(got[0]!.text).find((p) => /filename/i.test(p.head));
      expect(a!.body.equals(data), who).toBe(true);
    }
  }, 60_000);

  it('sendmail -t: recipients from To and Bcc, delivered through Graph, the Bcc field removed', async () => {
    const t = tag();
    const input = [
      `From: ${ALICE}`,
      `To: ${BOB}`,
      `Bcc: ${CAROL}`,
      `Subject: sendmail over graph ${t}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      `cron said ✓ ${t}`,
      '',
    ].join('\n');
    const r = await cli(['sendmail', '-t', '-i'], { input });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
    for (const who of [BOB, CAROL]) {
      const got = await waitForMail(s, who, `sendmail over graph ${t}`, 1);
      expect(got, who).toHaveLength(1);
      expect(
        headerOf(got[0]!.text).filter((l) => /^bcc:/i.test(l)),
        who,
      ).toEqual([]);
      expect(got[0]!.text).toContain(`cron said ✓ ${t}`);
    }
    expect(mailbox(s, SHARED).filter((m) => m.text.includes(t))).toEqual([]);
  });

  it('a 429 with Retry-After is waited out, said on stderr, and the message sent once', async () => {
    const t = tag();
    await throttleSendMail(1, 1);
    const before = (await requests(`/users/${ALICE}/sendMail`)).length;
    const started = Date.now();
    const r = await sendJson('--to', BOB, '-s', `throttled ${t}`, '--body', t);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(r.stderr).toMatch(
      /retrying in 1\.0 s \(2\/5\): Microsoft Graph \(send, mailbox alice@contoso\.test\) is throttling requests: 429/,
    );
    expect(JSON.parse(r.stdout)).toMatchObject(ACCEPTED);
    const log = (await requests(`/users/${ALICE}/sendMail`)).slice(before);
    expect(log.map((q) => q.status)).toEqual([429, 202]);
    expect(await waitForMail(s, BOB, `throttled ${t}`, 1)).toHaveLength(1);
  });

  it('sendmail: throttling that outlasts the retries queues the message (exit 0); queue run delivers it over Graph', async () => {
    const t = tag();
    await throttleSendMail(0, 'always');
    const input = `From: ${ALICE}\nTo: ${BOB}\nSubject: queued over graph ${t}\n\n${t}\n`;
    const r = await cli(['sendmail', '-t', '-i'], { input });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^oauthmail: queued \S+ \(temporarily unavailable: Microsoft Graph \(send, mailbox alice@contoso\.test\) is throttling requests: 429/,
    );
    expect(mailbox(s, BOB).filter((m) => m.text.includes(t))).toEqual([]);
    // with --no-queue the same failure is sendmail's EX_TEMPFAIL
    const nq = await cli(['sendmail', '-t', '-i', '--no-queue'], { input: input.replace(t, `${t}-nq`) });
    expect(nq.code, nq.stderr).toBe(75);
    await graphAdmin('faults', undefined, 'DELETE');
    const run = await cli(['queue', 'run']);
    expect(run.code, run.stderr).toBe(0);
    expect(await waitForMail(s, BOB, `queued over graph ${t}`, 1)).toHaveLength(1);
    const st = await cli(['queue', 'list', '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).not.toContain(t);
  });

  it('Graph refusals keep their exit codes: Send As denied is 5 for send and 69 for sendmail, nothing queued', async () => {
    const t = tag();
    const r = await cli(['send', '-p', 'g', '--from', SHARED, '--to', BOB, '-s', `sendas ${t}`, '--body', t]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/refused to send as shared@contoso\.test: ErrorSendAsDenied/);
    const sm = await cli(['sendmail', '-t', '-i'], {
      input: `From: ${SHARED}\nTo: ${BOB}\nSubject: sendas ${t}\n\n${t}\n`,
    });
    expect(sm.code, sm.stderr).toBe(69);
    expect(sm.stderr).not.toMatch(/queued/);
    expect(mailbox(s, BOB).filter((m) => m.text.includes(t))).toEqual([]);
  });

  it('send --batch over Graph, then --resume after a throttled line: every line delivered exactly once', async () => {
    const t = tag();
    const file = path.join(h.dir, `${t}.jsonl`);
    writeFileSync(
      file,
      [1, 2, 3, 4, 5, 6]
        .map((n) => JSON.stringify({ to: BOB, subject: `batch ${t} #${n}`, text: `n${n}` }))
        .join('\n') + '\n',
    );
    // one send refused for longer than the client waits: that line fails (exit 6), the rest go
    await throttleSendMail(3600, 1);
    const first = await cli(['send', '-p', 'g', '--batch', file, '--connections', '1']);
    expect(first.code, first.stderr).toBe(6);
    const lines = first.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string; line: number; error?: { code: string } });
    expect(lines.filter((l) => l.status === 'sent')).toHaveLength(5);
    expect(lines.filter((l) => l.status === 'failed').map((l) => l.error?.code)).toEqual(['graph_throttled']);
    const again = await cli(['send', '-p', 'g', '--batch', file, '--resume']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/batch: 1 sent, 0 failed, 5 already sent/);
    for (let n = 1; n <= 6; n++)
      expect(await waitForMail(s, BOB, `batch ${t} #${n}`, 1), `line ${n}`).toHaveLength(1);
    // nothing twice: Graph took each line's message exactly once
    const ids = readFileSync(`${file}.results.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string; messageId?: string })
      .filter((l) => l.status === 'sent')
      .map((l) => l.messageId!);
    expect(new Set(ids).size).toBe(6);
    for (const id of ids) expect(await sent(id), id).toHaveLength(1);
    for (let n = 1; n <= 6; n++)
      expect(
        mailbox(s, BOB).filter((m) => m.text.includes(`batch ${t} #${n}`)),
        `line ${n}`,
      ).toHaveLength(1);
  });

  it('app-only (client credentials): asks for graph .default and sends for the mailbox through Graph', async () => {
    const t = tag();
    const secret = fixtures.microsoft.clients[2]!.secret!;
    const add = await cli(
      [
        ...['profile', 'add', 'gapp', '--client-id', DAEMON, '--user', ALICE, '--storage', 'file'],
        ...['--authority', `${s.idpUrl}/${fixtures.microsoft.tenantId}/`, '--flow', 'client-credentials'],
        ...[
          '--client-type',
          'secret',
          '--client-secret-stdin',
          '--transport',
          'graph',
          '--graph-url',
          graphBase(),
        ],
      ],
      { input: secret + '\n' },
    );
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(readFileSync(h.configFile, 'utf8')).profiles.gapp.scopes).toEqual([
      'https://graph.microsoft.com/.default',
    ]);
    const r = await cli(['send', '-p', 'gapp', '--json', '--to', BOB, '-s', `app-only ${t}`, '--body', t]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject(ACCEPTED);
    expect(await waitForMail(s, BOB, `app-only ${t}`, 1)).toHaveLength(1);
    expect(transcript.join('\n')).not.toContain(secret);
  });
});

/**
 * The Graph client (src/mail/graph) against the local Graph endpoint of the stack
 * (test/support/graph), which delivers through the stack's Postfix into Dovecot and reads from
 * Dovecot: what arrives is what was sent (Bcc apart), large messages go through a draft and an
 * upload session, throttling is waited out, and Graph's refusals become named errors with the
 * project's exit codes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, OauthmailError } from '../../src/errors/index.js';
import { graphAdmin, idpMint } from '../support/stack-env.js';
import {
  ALICE,
  BOB,
  CAROL,
  G,
  SHARED,
  delivered,
  graphClient,
  graphTokens,
  lf,
  traceAndRest,
} from './graph-support.js';

interface LogEntry {
  method: string;
  path: string;
  status: number;
  clientRequestId?: string;
}
const requests = async (pathPart: string): Promise<LogEntry[]> =>
  (await graphAdmin<{ requests: LogEntry[] }>('log')).json.requests.filter((r) => r.path.includes(pathPart));

/** A MIME message with CRLF line ends; `extra` header lines go after Subject. */
function mime(o: {
  from?: string;
  to: string;
  cc?: string;
  subject: string;
  extra?: string[];
  body?: string;
}): Buffer {
  const id = randomUUID();
  return Buffer.from(
    [
      `From: ${o.from ?? ALICE}`,
      `To: ${o.to}`,
      ...(o.cc ? [`Cc: ${o.cc}`] : []),
      `Subject: ${o.subject}`,
      ...(o.extra ?? []),
      `Message-ID: <${id}@oauthmail.test>`,
      'Date: Sun, 29 Nov 2026 12:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      o.body ?? `body ${id}\r\nline with trailing space \r\n.\r\nüñí ✓\r\n`,
    ].join('\r\n'),
    'utf8',
  );
}

async function expectError(p: Promise<unknown>): Promise<OauthmailError> {
  const e = await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(OauthmailError);
  return e as OauthmailError;
}

beforeAll(async () => {
  // other files' faults are scoped to their own mailboxes; these are ours
  await graphAdmin('config', {
    refuseSendAs: false,
    disabledMailboxes: [],
    quotaExceeded: [],
    maxSendSize: 35 * 1024 * 1024,
  });
});
afterAll(async () => {
  await graphAdmin('faults', undefined, 'DELETE');
  await graphAdmin('config', {
    refuseSendAs: false,
    disabledMailboxes: [],
    quotaExceeded: [],
    maxSendSize: 35 * 1024 * 1024,
  });
});

describe('Graph client: sending', () => {
  it('a message arrives in Dovecot byte for byte; Bcc recipients get it, and no copy shows a Bcc field', async () => {
    const tag = `graph-bytes ${randomUUID()}`;
    const raw = mime({ to: BOB, cc: SHARED, subject: `${tag} =?UTF-8?B?w7zDscOt?=` });
    const { client } = graphClient(graphTokens(ALICE));
    const r = await client.sendMime(raw, { from: ALICE, to: [BOB, SHARED, CAROL] });
    expect(r).toMatchObject({ status: 202, accepted: true, method: 'sendMail', uploadSessions: 0 });

    for (const who of [BOB, SHARED, CAROL]) {
      const [file] = await delivered(who, tag);
      expect(file, `${who} got the message`).toBeDefined();
      const { trace, rest } = traceAndRest(file!);
      expect(trace.every((t) => /^(Return-Path|Delivered-To|Received)$/i.test(t))).toBe(true);
      expect(rest.equals(lf(raw)), `${who}: delivered bytes differ from those sent`).toBe(true);
      expect(file!.toString('latin1')).not.toMatch(/^Bcc:/im);
      expect(rest.toString('latin1')).not.toContain(CAROL);
    }
    // Graph was handed the Bcc (from the envelope) and delivered to it
    const sent = (
      await graphAdmin<{ sent: Array<{ bcc: string[]; to: string[]; rejected: string[] }> }>('sent')
    ).json.sent;
    expect(sent.find((s) => s.to.includes(BOB) && s.bcc.includes(CAROL))).toMatchObject({
      bcc: [CAROL],
      rejected: [],
    });
  });

  it('sends a 10 MB attachment through a draft and an upload session; it arrives intact', async () => {
    const tag = `graph-large ${randomUUID()}`;
    const data = randomBytes(10 * 1024 * 1024);
    const b = `b-${randomUUID()}`;
    const text = `see the attachment ${tag}\r\n`;
    const raw = Buffer.from(
      [
        `From: ${ALICE}`,
        `To: ${BOB}`,
        `Subject: ${tag}`,
        `Message-ID: <${randomUUID()}@oauthmail.test>`,
        'MIME-Version: 1.0',
        `Content-Type: multipart/mixed; boundary="${b}"`,
        '',
        `--${b}`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        text,
        `--${b}`,
        'Content-Type: application/octet-stream; name="data.bin"',
        'Content-Disposition: attachment; filename="data.bin"',
        'Content-Transfer-Encoding: base64',
        '',
        data.toString('base64').replace(/.{76}/g, '$&\r\n'),
        `--${b}--`,
        '',
      ].join('\r\n'),
    );
    expect(raw.length).toBeGreaterThan(13 * 1024 * 1024);
    // every request carries our client-request-id (Graph's correlation header), so that the
    // endpoint's log shows ours apart from other files'
    const cid = randomUUID();
    const { client } = graphClient(graphTokens(ALICE), {
      fetch: (url, init) =>
        fetch(url, {
          ...init,
          headers: { ...(init?.headers as Record<string, string>), 'client-request-id': cid },
        }),
    });
    const r = await client.sendMime(raw, { from: ALICE, to: [BOB] });
    expect(r).toMatchObject({ status: 202, method: 'draft', uploadSessions: 1 });

    // every request stayed under Graph's 4 MB limit (the endpoint answers 413 otherwise):
    // draft, upload session, three ranges of 3.75 MB at most, send
    const log = (await graphAdmin<{ requests: LogEntry[] }>('log')).json.requests.filter(
      (e) => e.clientRequestId === cid,
    );
    expect(
      log.map((e) => `${e.method} ${e.path.replace(/\/(messages|_upload)\/[^/]+/, '/$1/ID')} ${e.status}`),
    ).toEqual([
      'POST /v1.0/users/alice@contoso.test/messages 201',
      'POST /v1.0/users/alice@contoso.test/messages/ID/attachments/createUploadSession 201',
      'PUT /_upload/ID 200',
      'PUT /_upload/ID 200',
      'PUT /_upload/ID 201',
      'POST /v1.0/users/alice@contoso.test/messages/ID/send 202',
    ]);

    const [file] = await delivered(BOB, tag, 1, 30_000);
    expect(file).toBeDefined();
    const s = file!.toString('latin1');
    expect(s).toContain(`Subject: ${tag}`);
    expect(s).toContain(text.replace('\r\n', '\n'));
    const part = /filename="data\.bin"[\s\S]*?\n\n([A-Za-z0-9+/=\n]+)\n--/.exec(s);
    expect(part, 'the attachment part').not.toBeNull();
    expect(Buffer.from(part![1]!.replace(/\n/g, ''), 'base64').equals(data)).toBe(true);
  });

  it('waits out a 429 for its Retry-After, then sends once', async () => {
    const tag = `graph-429 ${randomUUID()}`;
    await graphAdmin('faults', { status: 429, retryAfter: 7, path: `/users/${ALICE}/sendMail`, times: 2 });
    const notices: number[] = [];
    const { client, waits } = graphClient(graphTokens(ALICE), {
      onRetry: (n) => notices.push(n.status ?? 0),
    });
    const before = (await requests(`/users/${ALICE}/sendMail`)).length;
    const r = await client.sendMime(mime({ to: BOB, subject: tag }), { from: ALICE, to: [BOB] });
    expect(r.status).toBe(202);
    expect(waits).toEqual([7000, 7000]);
    expect(notices).toEqual([429, 429]);
    const log = (await requests(`/users/${ALICE}/sendMail`)).slice(before);
    expect(log.map((e) => e.status)).toEqual([429, 429, 202]);
    expect(await delivered(BOB, tag)).toHaveLength(1);
  });

  it('gives up with exit 6 when throttling lasts, or when Retry-After is longer than it waits at once', async () => {
    await graphAdmin('faults', { status: 429, retryAfter: 1, path: `/users/${ALICE}/mailFolders`, times: 5 });
    const a = graphClient(graphTokens(ALICE), { maxAttempts: 3 });
    const e1 = await expectError(a.client.listFolders());
    expect(e1.exitCode).toBe(ExitCode.TRANSIENT);
    expect(e1.code).toBe('graph_throttled');
    expect(e1.message).toMatch(/throttling .*429 ApplicationThrottled \(Retry-After 1 s\)/);
    expect(a.waits).toEqual([1000, 1000]);
    await graphAdmin('faults', undefined, 'DELETE');

    await graphAdmin('faults', { status: 429, retryAfter: 3600, path: `/users/${ALICE}/mailFolders` });
    const b = graphClient(graphTokens(ALICE));
    const e2 = await expectError(b.client.listFolders());
    expect(e2.code).toBe('graph_throttled');
    expect(b.waits).toEqual([]);
  });

  it('retries a 503 on a send, but not a 504 (the message may have gone): exit 6 saying so', async () => {
    const tag = `graph-503 ${randomUUID()}`;
    await graphAdmin('faults', { status: 503, path: `/users/${ALICE}/sendMail` });
    const { client, waits } = graphClient(graphTokens(ALICE));
    await client.sendMime(mime({ to: BOB, subject: tag }), { from: ALICE, to: [BOB] });
    expect(waits).toHaveLength(1);
    expect(await delivered(BOB, tag)).toHaveLength(1);

    await graphAdmin('faults', { status: 504, path: `/users/${ALICE}/sendMail` });
    const before = (await requests(`/users/${ALICE}/sendMail`)).length;
    const e = await expectError(
      client.sendMime(mime({ to: BOB, subject: `${tag} 504` }), { from: ALICE, to: [BOB] }),
    );
    expect(e.exitCode).toBe(ExitCode.TRANSIENT);
    expect(e.code).toBe('graph_timeout');
    expect(e.message).toMatch(/may or may not have been sent/);
    expect((await requests(`/users/${ALICE}/sendMail`)).slice(before)).toHaveLength(1);
  });

  it('refreshes a refused token once and repeats the request', async () => {
    const expired = await idpMint({ user: ALICE, scopes: [`${G}Mail.ReadWrite`], lifetime: -600 });
    const tokens = graphTokens(ALICE, { first: expired });
    const { client } = graphClient(tokens);
    const folders = await client.listFolders();
    expect(folders.map((f) => f.displayName)).toContain('Inbox');
    expect(tokens.forced).toBe(1);
  });
});

describe('Graph client: refusals are named', () => {
  it('ErrorSendAsDenied: exit 5, names the From address and the fix', async () => {
    const { client } = graphClient(graphTokens(ALICE));
    const e = await expectError(
      client.sendMime(mime({ from: BOB, to: CAROL, subject: 'send as' }), { from: BOB, to: [CAROL] }),
    );
    expect(e.exitCode).toBe(ExitCode.MAIL);
    expect(e.code).toBe('graph_send_as_denied');
    expect(e.message).toContain(`send as ${BOB}`);
    expect(e.hint).toMatch(/Send As/);
    expect(JSON.stringify(e)).not.toMatch(/eyJ/); // no token anywhere in what could be printed
  });

  it('the Send-As switch, MailboxNotEnabledForRESTAPI, ErrorQuotaExceeded, ErrorMessageSizeExceeded', async () => {
    // the shared mailbox, with alice as its delegate: other files do not use it for Graph
    const { client } = graphClient(graphTokens(ALICE), { mailbox: SHARED });
    const msg = () => mime({ from: SHARED, to: BOB, subject: `shared ${randomUUID()}` });
    try {
      await graphAdmin('config', { refuseSendAs: [SHARED] });
      const e1 = await expectError(client.sendMime(msg(), { from: SHARED, to: [BOB] }));
      expect([e1.code, e1.exitCode]).toEqual(['graph_send_as_denied', ExitCode.MAIL]);
      await graphAdmin('config', { refuseSendAs: false, disabledMailboxes: [SHARED] });
      const e2 = await expectError(client.sendMime(msg(), { from: SHARED, to: [BOB] }));
      expect([e2.code, e2.exitCode]).toEqual(['graph_mailbox_not_enabled', ExitCode.MAIL]);
      expect(e2.message).toMatch(/MailboxNotEnabledForRESTAPI.*on-premises/);
      const e2b = await expectError(client.listFolders());
      expect(e2b.code).toBe('graph_mailbox_not_enabled');
      await graphAdmin('config', { disabledMailboxes: [], quotaExceeded: [SHARED] });
      const e3 = await expectError(client.sendMime(msg(), { from: SHARED, to: [BOB] }));
      expect([e3.code, e3.exitCode]).toEqual(['graph_quota_exceeded', ExitCode.MAIL]);
      await graphAdmin('config', { quotaExceeded: [], maxSendSize: 100 });
      const e4 = await expectError(client.sendMime(msg(), { from: SHARED, to: [BOB] }));
      expect([e4.code, e4.exitCode]).toEqual(['graph_message_too_large', ExitCode.MAIL]);
    } finally {
      await graphAdmin('config', {
        refuseSendAs: false,
        disabledMailboxes: [],
        quotaExceeded: [],
        maxSendSize: 35 * 1024 * 1024,
      });
    }
    // and with the switches off, the delegate sends as the shared mailbox
    const tag = `graph-shared ${randomUUID()}`;
    await client.sendMime(mime({ from: SHARED, to: BOB, subject: tag }), { from: SHARED, to: [BOB] });
    const [file] = await delivered(BOB, tag);
    expect(file!.toString('latin1')).toMatch(/^Return-Path: <shared@contoso\.test>/m);
  });

  it('a token without the permission: exit 4 naming the permissions; a non-delegate gets no shared mailbox', async () => {
    const sendOnly = graphClient(graphTokens(ALICE, { scopes: [`${G}Mail.Send`] }));
    const e1 = await expectError(sendOnly.client.listFolders());
    expect([e1.code, e1.exitCode]).toEqual(['graph_access_denied', ExitCode.AUTH]);
    expect(e1.hint).toMatch(/Mail\.ReadWrite/);
    const bobOnShared = graphClient(graphTokens(BOB), { mailbox: SHARED });
    const e2 = await expectError(bobOnShared.client.listFolders());
    expect([e2.code, e2.exitCode]).toEqual(['graph_access_denied', ExitCode.AUTH]);
  });

  it('Graph sends to every To/Cc address: an envelope without one of them is refused before any request (exit 2)', async () => {
    const { client } = graphClient(graphTokens(ALICE));
    const before = (await requests(`/users/${ALICE}/sendMail`)).length;
    const e = await expectError(
      client.sendMime(mime({ to: BOB, cc: CAROL, subject: 'subset' }), { to: [BOB] }),
    );
    expect([e.code, e.exitCode]).toEqual(['graph_envelope_mismatch', ExitCode.USAGE]);
    expect(e.message).toContain(CAROL);
    expect(await requests(`/users/${ALICE}/sendMail`)).toHaveLength(before);
  });

  it('app-only: a client-credentials token with Graph application permissions sends for a mailbox', async () => {
    const tag = `graph-app ${randomUUID()}`;
    const { client } = graphClient(graphTokens(ALICE, { app: true }));
    const r = await client.sendMime(mime({ to: BOB, subject: tag }), { from: ALICE, to: [BOB] });
    expect(r.status).toBe(202);
    expect(await delivered(BOB, tag)).toHaveLength(1);
    const me = graphClient(graphTokens(ALICE, { app: true }), { me: true });
    const e = await expectError(me.client.listFolders());
    expect(e.exitCode).toBe(ExitCode.MAIL);
    expect(e.message).toMatch(/400 BadRequest/);
  });
});

describe('Graph client: reading', () => {
  it('delta lists everything, then only what is new; $value is the stored MIME; move and delete show as removed', async () => {
    const reader = graphClient(graphTokens(BOB)).client;
    const first = await reader.delta('inbox', undefined, 7);
    expect(first.restarted).toBe(false);
    const seen = new Set(first.messages.map((m) => m.id));
    expect(seen.size).toBe(first.messages.length);

    const tag = `graph-delta ${randomUUID()}`;
    const sender = graphClient(graphTokens(ALICE)).client;
    const raw = mime({ to: BOB, subject: tag });
    await sender.sendMime(raw, { to: [BOB] });
    await sender.sendMime(mime({ to: BOB, subject: `${tag} two` }), { to: [BOB] });
    const [file] = await delivered(BOB, `${tag} two`);
    expect(file).toBeDefined();

    // other files deliver to bob too: look at ours
    const second = await reader.delta('inbox', first.deltaLink, 1);
    expect(second.restarted).toBe(false);
    const ours = second.messages.filter((m) => String(m.subject).startsWith(tag));
    expect(ours.map((m) => m.subject).sort()).toEqual([tag, `${tag} two`]);
    expect(second.messages.filter((m) => seen.has(m.id))).toEqual([]);
    const mine = ours.find((m) => m.subject === tag)!;
    const other = ours.find((m) => m.subject !== tag)!;
    // IMAP (and Graph's $value) hand out CRLF line ends: the bytes sent, after the trace fields
    const got = await reader.getMime(mine.id);
    expect(traceAndRest(got).rest.equals(raw)).toBe(true);

    const moved = await reader.moveMessage(mine.id, 'archive');
    expect(moved).not.toBe(mine.id);
    await reader.deleteMessage(other.id);
    const third = await reader.delta('inbox', second.deltaLink);
    expect(third.removed).toEqual(expect.arrayContaining([mine.id, other.id]));
    expect(third.messages.map((m) => m.id)).not.toContain(mine.id);
    expect((await reader.getMime(moved)).toString('latin1')).toContain(tag);
    const e = await expectError(reader.getMime(other.id));
    expect([e.code, e.exitCode]).toEqual(['graph_item_not_found', ExitCode.MAIL]);

    const folders = await reader.listFolders();
    expect(folders.map((f) => f.displayName)).toEqual(expect.arrayContaining(['Inbox', 'Archive']));
    const archived: string[] = [];
    for await (const page of reader.listMessages('archive', 2)) {
      expect(page.length).toBeLessThanOrEqual(2);
      archived.push(...page.map((m) => m.id));
    }
    expect(archived).toContain(moved);
  });

  it('a delta token the server no longer knows (410 SyncStateNotFound) starts a full round, flagged', async () => {
    const reader = graphClient(graphTokens(BOB)).client;
    const one = await reader.delta('inbox');
    await graphAdmin('delta/expire', {});
    const again = await reader.delta('inbox', one.deltaLink);
    expect(again.restarted).toBe(true);
    expect(again.messages.map((m) => m.id).sort()).toEqual(one.messages.map((m) => m.id).sort());
    const log = await requests(`/users/${BOB}/mailFolders/inbox/messages/delta`);
    expect(log.some((e) => e.status === 410)).toBe(true);
  });

  it('a delegate reads the shared mailbox', async () => {
    const tag = `graph-shared-read ${randomUUID()}`;
    await graphClient(graphTokens(ALICE)).client.sendMime(mime({ to: SHARED, subject: tag }), {
      to: [SHARED],
    });
    await delivered(SHARED, tag);
    const reader = graphClient(graphTokens(ALICE), { mailbox: SHARED }).client;
    const round = await reader.delta('inbox');
    expect(round.messages.some((m) => m.subject === tag)).toBe(true);
  });
});

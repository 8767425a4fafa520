/**
 * The local Microsoft Graph endpoint itself (test/support/graph), driven with plain fetch: it checks
 * tokens as Graph does, keeps Graph's limits (4 MB requests, the upload-session protocol), pages
 * delta rounds, and sends JSON messages too. The client's own tests are in graph-client.test.ts.
 * Uses bob as the sender so that faults and switches of the other file do not meet these.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { idpMint, mintJwt, tamperSignature } from '../support/stack-env.js';
import { BOB, CAROL, DELEGATED, G, SHARED, delivered, graphBase } from './graph-support.js';

interface Answer {
  status: number;
  headers: Headers;
  json: { error?: { code: string; message: string; innerError?: Record<string, string> } } & Record<
    string,
    unknown
  >;
  text: string;
}

async function call(
  method: string,
  path: string,
  o: { token?: string; body?: string | Buffer; type?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(path.startsWith('https:') ? path : `${graphBase()}${path}`, {
    method,
    headers: {
      ...(o.token ? { Authorization: `Bearer ${o.token}` } : {}),
      ...(o.type ? { 'Content-Type': o.type } : {}),
      ...o.headers,
    },
    ...(o.body !== undefined ? { body: o.body } : {}),
  });
  const text = await res.text();
  let json = {} as Answer['json'];
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, json, text };
}

const bobToken = () => idpMint({ user: BOB, scopes: DELEGATED });
const mime = (subject: string, extra = '') =>
  Buffer.from(
    `From: ${BOB}\r\nTo: ${CAROL}\r\nSubject: ${subject}\r\nMessage-ID: <${randomUUID()}@oauthmail.test>\r\n${extra}\r\nhello\r\n`,
  );

describe('local Graph endpoint: tokens', () => {
  it('401 InvalidAuthenticationToken without a token, with a bad signature, an expired token or an Exchange audience', async () => {
    const good = await bobToken();
    const cases: Array<[string | undefined, RegExp]> = [
      [undefined, /empty/],
      [tamperSignature(good), /signature/i],
      [await idpMint({ user: BOB, scopes: [`${G}Mail.Read`], lifetime: -600 }), /expired/],
      // what Dovecot and Postfix accept is refused here, as Graph refuses an Outlook token
      [mintJwt({ user: BOB }), /audience/i],
    ];
    for (const [token, why] of cases) {
      const r = await call('GET', '/me/mailFolders', token ? { token } : {});
      expect(r.status).toBe(401);
      expect(r.json.error?.code).toBe('InvalidAuthenticationToken');
      expect(r.json.error?.message).toMatch(why);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(r.headers.get('request-id')).toBe(r.json.error?.innerError?.['request-id']);
    }
    expect((await call('GET', '/me/mailFolders', { token: good })).status).toBe(200);
  });

  it('403 ErrorAccessDenied without the scope or role; /me is for delegated tokens only', async () => {
    const sendOnly = await idpMint({ user: BOB, scopes: [`${G}Mail.Send`] });
    const r = await call('GET', '/me/mailFolders', { token: sendOnly });
    expect([r.status, r.json.error?.code]).toEqual([403, 'ErrorAccessDenied']);
    const app = await idpMint({ clientId: '33333333-3333-4333-8333-333333333333', scopes: [`${G}.default`] });
    const me = await call('GET', '/me/mailFolders', { token: app });
    expect([me.status, me.json.error?.code]).toEqual([400, 'BadRequest']);
    expect((await call('GET', `/users/${BOB}/mailFolders`, { token: app })).status).toBe(200);
    // an app without Graph application permissions (the public client has none)
    const none = await idpMint({ scopes: [`${G}.default`] });
    expect((await call('GET', `/users/${BOB}/mailFolders`, { token: none })).json.error?.code).toBe(
      'ErrorAccessDenied',
    );
    const who = await call('GET', '/users/nobody@contoso.test', { token: app });
    expect([who.status, who.json.error?.code]).toEqual([404, 'ErrorInvalidUser']);
  });
});

describe('local Graph endpoint: sending', () => {
  it('sendMail with base64 MIME answers 202 with no body; JSON messages are sent too, Bcc hidden', async () => {
    const token = await bobToken();
    const tag = `endpoint-mime ${randomUUID()}`;
    const r = await call('POST', '/me/sendMail', {
      token,
      type: 'text/plain',
      body: mime(tag).toString('base64'),
    });
    expect([r.status, r.text]).toEqual([202, '']);
    expect(await delivered(CAROL, tag)).toHaveLength(1);

    const jtag = `endpoint-json ${randomUUID()}`;
    const j = await call('POST', `/users/${BOB}/sendMail`, {
      token,
      type: 'application/json',
      body: JSON.stringify({
        message: {
          subject: jtag,
          body: { contentType: 'HTML', content: '<p>hi ✓</p>' },
          toRecipients: [{ emailAddress: { address: CAROL } }],
          bccRecipients: [{ emailAddress: { address: SHARED } }],
        },
        saveToSentItems: false,
      }),
    });
    expect(j.status).toBe(202);
    const [toCarol] = await delivered(CAROL, jtag);
    const [toShared] = await delivered(SHARED, jtag);
    for (const f of [toCarol!, toShared!]) {
      expect(f.toString('utf8')).toMatch(/^From: bob@contoso\.test$/m);
      expect(f.toString('utf8')).not.toMatch(/^Bcc:/im);
    }
  });

  it('413 ErrorRequestEntityTooLarge over 4 MB; 400 for a body that is not base64', async () => {
    const token = await bobToken();
    const big = mime('big', `X-Pad: ${'a'.repeat(3 * 1024 * 1024)}\r\n`).toString('base64');
    expect(big.length).toBeGreaterThan(4 * 1024 * 1024);
    const r = await call('POST', '/me/sendMail', { token, type: 'text/plain', body: big });
    expect([r.status, r.json.error?.code]).toEqual([413, 'ErrorRequestEntityTooLarge']);
    const bad = await call('POST', '/me/sendMail', { token, type: 'text/plain', body: 'not base64 at all!' });
    expect([bad.status, bad.json.error?.code]).toEqual([400, 'ErrorMimeContentInvalidBase64String']);
  });

  it('upload sessions: 3 MB minimum, ranges in order, at most 4 MB each, no Authorization; 201 and Location at the end', async () => {
    const token = await bobToken();
    const tag = `endpoint-upload ${randomUUID()}`;
    const draft = await call('POST', '/me/messages', {
      token,
      type: 'text/plain',
      body: mime(tag).toString('base64'),
    });
    expect(draft.status).toBe(201);
    const id = String(draft.json.id);
    const small = await call('POST', `/me/messages/${id}/attachments/createUploadSession`, {
      token,
      type: 'application/json',
      body: JSON.stringify({ AttachmentItem: { attachmentType: 'file', name: 'a.bin', size: 1000 } }),
    });
    expect([small.status, small.json.error?.code]).toEqual([
      400,
      'ErrorAttachmentSizeShouldNotBeLessThanMinimumSize',
    ]);
    const data = randomBytes(7 * 1024 * 1024);
    const s = await call('POST', `/me/messages/${id}/attachments/createUploadSession`, {
      token,
      type: 'application/json',
      body: JSON.stringify({ AttachmentItem: { attachmentType: 'file', name: 'b.bin', size: data.length } }),
    });
    expect(s.status).toBe(201);
    expect(s.json.nextExpectedRanges).toEqual(['0-']);
    const url = String(s.json.uploadUrl);
    const put = (from: number, to: number) =>
      call('PUT', url, {
        body: data.subarray(from, to + 1),
        headers: { 'Content-Range': `bytes ${from}-${to}/${data.length}` },
      });
    const half = 2 * 1024 * 1024;
    expect((await put(0, data.length - 1)).status).toBe(413); // over 4 MB in one request
    expect((await put(half, 2 * half - 1)).status).toBe(416); // not where the session stands
    const one = await put(0, half - 1);
    expect(one.status).toBe(200);
    expect(one.json.nextExpectedRanges).toEqual([`${half}-`]);
    expect((await put(half, 2 * half - 1)).status).toBe(200);
    expect((await put(2 * half, 3 * half - 1)).status).toBe(200);
    const last = await put(3 * half, data.length - 1);
    expect(last.status).toBe(201);
    expect(last.headers.get('location')).toMatch(/attachments\('/);
    expect((await put(3 * half, data.length - 1)).status).toBe(404); // the session is over
    expect((await call('POST', `/me/messages/${id}/send`, { token })).status).toBe(202);
    const [file] = await delivered(CAROL, tag);
    expect(file!.toString('latin1')).toContain('filename="b.bin"');
  });
});

describe('local Graph endpoint: delta paging', () => {
  it('pages by Prefer: odata.maxpagesize with nextLink, ends with a deltaLink; an unknown token is 410 SyncStateNotFound', async () => {
    const token = await bobToken();
    const tag = `endpoint-delta ${randomUUID()}`;
    for (let i = 0; i < 3; i++) {
      const m = Buffer.from(`From: ${BOB}\r\nTo: ${BOB}\r\nSubject: ${tag} ${i}\r\n\r\nhi\r\n`).toString(
        'base64',
      );
      expect((await call('POST', '/me/sendMail', { token, type: 'text/plain', body: m })).status).toBe(202);
    }
    await delivered(BOB, `${tag} 2`);
    const first = await call('GET', '/me/mailFolders/inbox/messages/delta', {
      token,
      headers: { Prefer: 'odata.maxpagesize=2' },
    });
    expect(first.status).toBe(200);
    expect(first.headers.get('preference-applied')).toBe('odata.maxpagesize=2');
    let page = first;
    let pages = 1;
    while (page.json['@odata.nextLink']) {
      expect((page.json.value as unknown[]).length).toBeLessThanOrEqual(2);
      page = await call('GET', page.json['@odata.nextLink'] as string, {
        token,
        headers: { Prefer: 'odata.maxpagesize=2' },
      });
      expect(page.status).toBe(200);
      pages++;
    }
    expect(pages).toBeGreaterThan(1); // bob's inbox has three messages at least
    expect(String(page.json['@odata.deltaLink'])).toMatch(/\$deltatoken=/);
    const gone = await call('GET', '/me/mailFolders/inbox/messages/delta?$deltatoken=nope', { token });
    expect([gone.status, gone.json.error?.code]).toEqual([410, 'SyncStateNotFound']);
  });
});

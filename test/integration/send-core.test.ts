/**
 * The send core against the local Postfix + Dovecot, with tokens minted with the stack's signing
 * key: a full MIME message read back from Dovecot, the single refresh-and-retry on a refused
 * token, retry and exit codes on 4xx/5xx, TLS verification.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import libmime from 'libmime';

const decodeWords = (s: string): string => libmime.decodeWords(s);
import { buildMessage } from '../../src/mail/message.js';
import { SmtpClient } from '../../src/mail/smtp.js';
import type { TokenSource } from '../../src/mail/token-source.js';
import {
  installSenderFaults,
  mailbox,
  mintJwt,
  postfixLog,
  smtpProfile,
  stack,
  waitForMail,
  type Stack,
  postfixSettled,
} from './send-support.js';

let s: Stack;
const tag = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  s = stack();
  await installSenderFaults(s);
});

/** A TokenSource that counts what the mail code asked for; `tokens` are handed out in order. */
function countingSource(user: string, first: string, refreshed: string) {
  const calls: boolean[] = [];
  const src: TokenSource = {
    user,
    getAccessToken: (o) => {
      calls.push(!!o?.forceRefresh);
      return Promise.resolve(o?.forceRefresh ? refreshed : first);
    },
  };
  return { src, calls };
}

/** Minimal MIME walk: leaf parts with their headers and decoded bodies. */
function parts(raw: string): Array<{ headers: string; body: Buffer }> {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const body = rest.join('\r\n\r\n');
  const unfolded = head!.replace(/\r?\n[ \t]+/g, ' ');
  const ct = /^content-type:\s*([^\r\n]*)/im.exec(unfolded)?.[1] ?? 'text/plain';
  const b = /boundary="?([^";\r\n]+)"?/i.exec(ct)?.[1];
  if (/^multipart\//i.test(ct) && b) {
    return body
      .split(`--${b}`)
      .slice(1)
      .filter((p) => !p.startsWith('--'))
      .flatMap((p) => parts(p.replace(/^\r?\n/, '')));
  }
  const enc = /^content-transfer-encoding:\s*(\S+)/im.exec(unfolded)?.[1]?.toLowerCase();
  let data: Buffer;
  if (enc === 'base64') data = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  else if (enc === 'quoted-printable')
    data = Buffer.from(
      body
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    );
  else data = Buffer.from(body);
  return [{ headers: unfolded, body: data }];
}

describe('a full message', () => {
  it('UTF-8 subject, HTML + text, two attachments, cc and bcc arrive intact; no Bcc header anywhere', async () => {
    const t = tag();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'om-att-'));
    const pdf = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x10, 0x80, ...Buffer.from(' binary ' + t)]);
    writeFileSync(path.join(dir, 'report.pdf'), pdf);
    writeFileSync(path.join(dir, 'données.csv'), `a,b\n1,ü ${t}\n`);
    const subject = `Grüße aus Köln — 東京 ✓ ${t}`;
    const user = 'alice@contoso.test';
    const built = await buildMessage(
      {
        to: ['Bob Example <bob@contoso.test>'],
        cc: ['shared@contoso.test'],
        bcc: ['carol@fabrikam.test'],
        subject,
        text: `plain ${t} — ünïcødé`,
        html: `<p>html <b>${t}</b> — ünïcødé</p>`,
        attachments: [path.join(dir, 'report.pdf'), path.join(dir, 'données.csv')],
        priority: 'high',
      },
      { user, signature: 'Alice\nContoso' },
    );
    const { src } = countingSource(user, mintJwt(s, user), mintJwt(s, user));
    const client = await SmtpClient.create(smtpProfile(s, user), src);
    const r = await client.send(built);
    client.close();
    expect(r.response).toMatch(/^250 /);
    expect(r.accepted.sort()).toEqual(['bob@contoso.test', 'carol@fabrikam.test', 'shared@contoso.test']);

    for (const who of ['bob@contoso.test', 'shared@contoso.test', 'carol@fabrikam.test']) {
      const got = await waitForMail(s, who, t, 1);
      expect(got, who).toHaveLength(1);
      const raw = got[0]!.text;
      const head = raw.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ');
      expect(head).not.toMatch(/^bcc:/im);
      expect(decodeWords(/^subject:\s*(.*)$/im.exec(head)![1]!)).toBe(subject);
      expect(head).toMatch(/^x-priority:\s*1/im);
      const ps = parts(raw);
      const text = ps.find((p) => /content-type:\s*text\/plain/i.test(p.headers))!;
      const html = ps.find((p) => /content-type:\s*text\/html/i.test(p.headers))!;
      expect(text.body.toString('utf8')).toContain(`plain ${t} — ünïcødé`);
      expect(text.body.toString('utf8')).toContain('-- \nAlice\nContoso');
      expect(html.body.toString('utf8')).toContain(`<p>html <b>${t}</b> — ünïcødé</p>`);
      const att = ps.filter((p) => /content-disposition:\s*attachment/i.test(p.headers));
      expect(att).toHaveLength(2);
      expect(att.find((p) => /report\.pdf/.test(p.headers))!.body.equals(pdf)).toBe(true);
      const csv = att.find((p) => /donn/.test(p.headers))!;
      expect(csv.body.toString('utf8')).toBe(`a,b\n1,ü ${t}\n`);
      // the file name survives (RFC 2231 or encoded word)
      expect(decodeWords(csv.headers)).toMatch(/donn(é|%C3%A9)es\.csv/i);
    }
  });
});

describe('a refused access token', () => {
  it('gets exactly one forced refresh and one more AUTH, then the message goes out', async () => {
    const user = 'alice@contoso.test';
    const t = tag();
    const before = postfixLog(s).length;
    // a token that looks valid but lacks the SMTP scope: Dovecot refuses it
    const { src, calls } = countingSource(user, mintJwt(s, user, { scope: 'User.Read' }), mintJwt(s, user));
    const client = await SmtpClient.create(smtpProfile(s, user), src);
    const built = await buildMessage(
      { to: ['bob@contoso.test'], subject: `refresh ${t}`, text: 'x' },
      { user },
    );
    const r = await client.send(built);
    client.close();
    expect(r.response).toMatch(/^250 /);
    expect(calls).toEqual([false, true]);
    expect(client.stats.refreshes).toBe(1);
    expect(await waitForMail(s, 'bob@contoso.test', `refresh ${t}`, 1)).toHaveLength(1);
    // Postfix counts AUTH commands per session: one refused + one accepted (logged at its end)
    await postfixSettled(s, { since: before });
    const sessions =
      postfixLog(s)
        .slice(before)
        .match(/auth=\d+\/\d+/g) ?? [];
    expect(sessions).toContain('auth=1/2');
    expect(sessions.some((x) => /\/[3-9]/.test(x))).toBe(false);
  });

  it('when the refreshed token is refused too: no second refresh, exit 5 with a sentence, no token in the message', async () => {
    const user = 'alice@contoso.test';
    const bad1 = mintJwt(s, user, { scope: 'User.Read' });
    const bad2 = mintJwt(s, user, { scope: 'Mail.Read' });
    const { src, calls } = countingSource(user, bad1, bad2);
    const client = await SmtpClient.create(smtpProfile(s, user), src);
    const built = await buildMessage({ to: ['bob@contoso.test'], subject: 'never', text: 'x' }, { user });
    const err = await client.send(built).then(
      () => undefined,
      (e: unknown) => e as { exitCode: number; message: string; hint?: string; code: string },
    );
    client.close();
    expect(err?.exitCode).toBe(5);
    expect(err?.code).toBe('smtp_auth_refused');
    expect(err?.message).toMatch(/refused the sign-in|authentication/i);
    expect(calls).toEqual([false, true]);
    for (const tok of [bad1, bad2]) {
      expect(err?.message).not.toContain(tok);
      expect(err?.hint ?? '').not.toContain(tok);
    }
  });

  it('OAUTHBEARER (RFC 7628): same single refresh', async () => {
    const user = 'alice@contoso.test';
    const t = tag();
    const { src, calls } = countingSource(user, mintJwt(s, user, { scope: 'User.Read' }), mintJwt(s, user));
    const client = await SmtpClient.create(smtpProfile(s, user, { sasl: 'oauthbearer' }), src);
    const r = await client.send(
      await buildMessage({ to: ['bob@contoso.test'], subject: `bearer ${t}`, text: 'x' }, { user }),
    );
    client.close();
    expect(r.response).toMatch(/^250 /);
    expect(calls).toEqual([false, true]);
    expect(await waitForMail(s, 'bob@contoso.test', `bearer ${t}`, 1)).toHaveLength(1);
  });
});

describe('server refusals and retries', () => {
  it('4xx is retried per the policy and ends in exit 6 (TransientError)', async () => {
    const user = 'alice@contoso.test';
    const { src } = countingSource(user, mintJwt(s, user), mintJwt(s, user));
    const client = await SmtpClient.create(
      smtpProfile(s, user, {
        retry: { mode: 'any', maxAttempts: 3, initialDelayMs: 10, multiplier: 2, maxDelayMs: 50 },
      }),
      src,
    );
    const built = await buildMessage(
      { from: 'tempfail@contoso.test', to: ['bob@contoso.test'], subject: 'x', text: 'x' },
      { user },
    );
    const err = (await client.send(built).catch((e: unknown) => e)) as { exitCode: number; message: string };
    client.close();
    expect(err.exitCode).toBe(6);
    expect(err.message).toMatch(/451/);
    expect(err.message).toMatch(/after 3 attempts/);
  });

  it('5xx is not retried: exit 5 after one attempt', async () => {
    const user = 'alice@contoso.test';
    const { src } = countingSource(user, mintJwt(s, user), mintJwt(s, user));
    const client = await SmtpClient.create(smtpProfile(s, user), src);
    const built = await buildMessage(
      { from: 'permfail@contoso.test', to: ['bob@contoso.test'], subject: 'x', text: 'x' },
      { user },
    );
    const err = (await client.send(built).catch((e: unknown) => e)) as { exitCode: number; message: string };
    client.close();
    expect(err.exitCode).toBe(5);
    expect(err.message).toMatch(/554/);
    expect(err.message).not.toMatch(/attempts/);
  });

  it('a connection refused is temporary (exit 6)', async () => {
    const user = 'alice@contoso.test';
    const { src } = countingSource(user, mintJwt(s, user), mintJwt(s, user));
    const client = await SmtpClient.create(
      smtpProfile(s, user, {
        smtp: { host: '127.0.0.1', port: 1, security: 'starttls' },
        retry: { mode: 'any', maxAttempts: 2, initialDelayMs: 10, multiplier: 2, maxDelayMs: 20 },
      }),
      src,
    );
    const err = (await client
      .send(await buildMessage({ to: ['bob@contoso.test'], text: 'x' }, { user }))
      .catch((e: unknown) => e)) as {
      exitCode: number;
      message: string;
    };
    client.close();
    expect(err.exitCode).toBe(6);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('a certificate that does not chain to the trusted CA is refused (exit 3, hint --ca)', async () => {
    const user = 'alice@contoso.test';
    const { src, calls } = countingSource(user, mintJwt(s, user), mintJwt(s, user));
    // trust only the server's own leaf certificate (not a CA): verification must fail
    const client = await SmtpClient.create(smtpProfile(s, user), src, {
      caFile: path.join(s.pkiDir, 'server.pem'),
    });
    const err = (await client
      .send(await buildMessage({ to: ['bob@contoso.test'], text: 'x' }, { user }))
      .catch((e: unknown) => e)) as {
      exitCode: number;
      hint: string;
    };
    client.close();
    expect(err.exitCode).toBe(3);
    expect(err.hint).toMatch(/--ca/);
    expect(calls).toEqual([]); // no token was sent to an unverified server
  });

  it('implicit TLS (port 465 style) works too', async () => {
    const user = 'alice@contoso.test';
    const t = tag();
    const { src } = countingSource(user, mintJwt(s, user), mintJwt(s, user));
    const client = await SmtpClient.create(
      smtpProfile(s, user, { smtp: { host: 'localhost', port: s.smtpsPort, security: 'tls' } }),
      src,
    );
    await client.send(
      await buildMessage({ to: ['bob@contoso.test'], subject: `tls ${t}`, text: 'x' }, { user }),
    );
    client.close();
    expect(await waitForMail(s, 'bob@contoso.test', `tls ${t}`, 1)).toHaveLength(1);
    expect(mailbox(s, 'bob@contoso.test').length).toBeGreaterThan(0);
  });
});

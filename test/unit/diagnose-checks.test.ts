/**
 * The checks behind `oauthmail test` without a network: profile consistency, the token step, the
 * claims of crafted JWTs, Google's token-info (injected fetch), the report text and its JSON
 * schema; and the catalogue entries `oauthmail test` relies on (SMTP and IMAP replies).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  checkFailure,
  runChecks,
  renderReport,
  type CheckDeps,
  type TestReport,
} from '../../src/diagnose/checks.js';
import { validate, type Schema } from '../integration/diagnose-schema.js';
import type { Profile } from '../../src/config/schema.js';
import { DEFAULT_RETRY } from '../../src/config/schema.js';
import { AuthError, UsageError } from '../../src/errors/index.js';
import type { TokenProvider } from '../../src/auth/types.js';
import { adviseSmtpReply } from '../../src/mail/smtp-replies.js';
import { imapErrorFrom } from '../../src/mail/imap-replies.js';

const schema = JSON.parse(
  readFileSync(path.join(import.meta.dirname, '..', '..', 'docs', 'test-report.schema.json'), 'utf8'),
) as Schema;
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: Record<string, unknown>) =>
  `${b64({ typ: 'JWT', alg: 'RS256' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}.c2lnbmF0dXJl`;
const CLIENT = '11111111-1111-4111-8111-111111111111';
const exo = (extra: Record<string, unknown> = {}) =>
  jwt({
    aud: 'https://outlook.office.com',
    scp: 'SMTP.Send IMAP.AccessAsUser.All',
    upn: 'alice@contoso.com',
    tid: 't',
    appid: CLIENT,
    ...extra,
  });

const profile = (p: Partial<Profile> = {}): Profile => ({
  provider: 'microsoft',
  clientId: CLIENT,
  clientType: 'public',
  flow: 'device',
  capabilities: ['send', 'read'],
  scopes: [
    'https://outlook.office.com/SMTP.Send',
    'https://outlook.office.com/IMAP.AccessAsUser.All',
    'offline_access',
  ],
  sasl: 'auto',
  storage: 'file',
  retry: { ...DEFAULT_RETRY },
  user: 'alice@contoso.com',
  // a closed loopback port: the mail checks fail fast with a network error
  smtp: { host: '127.0.0.1', port: 1, security: 'none' },
  imap: { host: '127.0.0.1', port: 1, security: 'none' },
  ...p,
});

const providerWith = (token: string | Error) => () =>
  Promise.resolve({
    getToken: () =>
      token instanceof Error
        ? Promise.reject(token)
        : Promise.resolve({
            accessToken: token,
            expiresOn: null,
            scopes: [],
            account: 'alice@contoso.com',
            fromCache: false,
          }),
  } as unknown as TokenProvider);

async function check(p: Profile, token: string | Error, extra: Partial<CheckDeps> = {}): Promise<TestReport> {
  const rep = await runChecks({
    name: 'work',
    profile: p,
    provider: providerWith(token),
    timeoutMs: 2000,
    ...extra,
  });
  expect(validate(schema, rep)).toEqual([]);
  const text = renderReport(rep);
  if (typeof token === 'string') expect(text).not.toContain(token);
  return rep;
}
const byId = (rep: TestReport, id: string) => rep.checks.find((c) => c.id === id)!;

describe('profile check', () => {
  it('Graph scopes in a Microsoft profile: config failure (exit 3) with the corrected scopes; the rest skipped', async () => {
    const rep = await check(profile({ scopes: ['SMTP.Send', 'offline_access'] }), exo());
    expect(byId(rep, 'profile')).toMatchObject({
      status: 'fail',
      kind: 'config',
      exitCode: 3,
      code: 'graph_scopes',
    });
    expect(byId(rep, 'profile').fix).toContain('https://outlook.office.com/SMTP.Send');
    expect(rep.checks.slice(1).map((c) => c.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
    expect(rep.exitCode).toBe(3);
  });

  it('a Google profile with gmail.send only: says gmail.send is not enough', async () => {
    const rep = await check(
      profile({
        provider: 'google',
        clientId: 'x.apps.googleusercontent.com',
        scopes: ['https://www.googleapis.com/auth/gmail.send'],
      }),
      'opaque',
    );
    expect(byId(rep, 'profile').summary).toMatch(
      /must ask for https:\/\/mail\.google\.com\/ \(gmail\.send is not accepted/,
    );
  });

  it('client credentials without a stored secret: config failure naming `profile secret`', async () => {
    const rep = await check(
      profile({
        flow: 'client-credentials',
        clientType: 'secret',
        scopes: ['https://outlook.office365.com/.default'],
      }),
      exo(),
      { hasCredential: () => Promise.resolve(false) },
    );
    expect(byId(rep, 'profile')).toMatchObject({
      status: 'fail',
      code: 'no_credential',
      fix: 'oauthmail profile secret work --stdin',
    });
  });

  it('no TLS to a remote host: refused before any token leaves; missing offline_access: a warning', async () => {
    const rep = await check(
      profile({ smtp: { host: 'smtp.example.com', port: 25, security: 'none' } }),
      exo(),
    );
    expect(byId(rep, 'profile')).toMatchObject({ status: 'fail', code: 'tls_required' });
    const rep2 = await check(
      profile({
        scopes: ['https://outlook.office.com/SMTP.Send', 'https://outlook.office.com/IMAP.AccessAsUser.All'],
      }),
      exo({ scp: 'SMTP.Send' }),
    );
    expect(byId(rep2, 'profile').warnings.join()).toMatch(/no offline_access/);
  });
});

describe('token and claims checks', () => {
  it('sign-in needed: the provider error becomes the token failure, exit 4', async () => {
    const rep = await check(
      profile(),
      new AuthError('profile work is not signed in', {
        code: 'not_signed_in',
        hint: 'run: oauthmail login work',
      }),
    );
    expect(byId(rep, 'token')).toMatchObject({
      status: 'fail',
      kind: 'auth',
      exitCode: 4,
      fix: 'run: oauthmail login work',
    });
    expect(byId(rep, 'claims').summary).toBe('skipped: the token check failed');
  });

  it('a usage error from the provider keeps its own exit code 2 (was turned into config, exit 3)', async () => {
    // e.g. the identity provider answers invalid_request: `oauthmail token` exits 2, so must `test`
    const rep = await check(
      profile(),
      new UsageError('the identity provider refused the request as malformed (invalid_request)', {
        code: 'invalid_request',
        hint: "run again with --verbose; check the profile's endpoints and client settings",
      }),
    );
    expect(byId(rep, 'token')).toMatchObject({
      status: 'fail',
      kind: 'usage',
      exitCode: 2,
      code: 'invalid_request',
    });
    expect(rep.exitCode).toBe(2);
    expect(renderReport(rep)).toContain('(usage failure, exit 2, invalid_request)');
    expect(renderReport(rep).trim().split('\n').pop()).toBe('1 check failed for profile work (exit 2)');
    // what `oauthmail test` exits with
    const err = checkFailure(rep);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ exitCode: 2, code: 'invalid_request' });
    expect(err?.message).toBe(
      'token check failed: the identity provider refused the request as malformed (invalid_request)',
    );
  });

  it('a good token: claims pass with the details; the mail checks then fail as network trouble (exit 6)', async () => {
    const rep = await check(profile(), exo());
    expect(byId(rep, 'claims')).toMatchObject({ status: 'pass' });
    expect(byId(rep, 'claims').details).toMatchObject({
      audience: 'https://outlook.office.com',
      user: 'alice@contoso.com',
      appId: CLIENT,
    });
    expect(byId(rep, 'smtp')).toMatchObject({
      status: 'fail',
      kind: 'transient',
      exitCode: 6,
      code: 'smtp_connect',
    });
    expect(rep.exitCode).toBe(6);
  });

  it('an expired token, a token for another app, and a token for another user', async () => {
    const expired = await check(profile(), exo({ exp: 1_000_000 }));
    expect(byId(expired, 'claims')).toMatchObject({ status: 'fail', code: 'token_expired', exitCode: 4 });
    const other = await check(
      profile({ capabilities: ['send'] }),
      exo({ appid: '99999999-9999-4999-8999-999999999999', upn: 'bob@contoso.com' }),
    );
    expect(byId(other, 'claims').warnings.join('\n')).toMatch(
      /issued to app 99999999-.*\n.*token is for bob@contoso\.com but the profile's mailbox is alice@contoso\.com/,
    );
  });

  it('an unknown audience and an app-only token with one role of two', async () => {
    const aud = await check(profile(), exo({ aud: 'https://example.com' }));
    expect(byId(aud, 'claims')).toMatchObject({ status: 'fail', code: 'wrong_audience' });
    const app = await check(
      profile({
        flow: 'client-credentials',
        clientType: 'secret',
        scopes: ['https://outlook.office365.com/.default'],
      }),
      exo({ scp: undefined, upn: undefined, roles: ['SMTP.SendAsApp'] }),
    );
    expect(byId(app, 'claims').summary).toBe(
      'the app-only token lacks the application permission IMAP.AccessAsApp (roles: SMTP.SendAsApp)',
    );
  });

  it('an opaque token of a custom provider: a warning, the servers decide', async () => {
    const rep = await check(
      profile({ provider: 'custom', tokenEndpoint: 'https://id.example.com/token' }),
      'opaque-token-value',
    );
    expect(byId(rep, 'claims')).toMatchObject({ status: 'pass' });
    expect(byId(rep, 'claims').warnings[0]).toMatch(/opaque/);
  });

  it('Google: token-info in a POST body (never the URL); invalid → 4; without mail.google.com → 4', async () => {
    const g = profile({
      provider: 'google',
      clientId: 'x.apps.googleusercontent.com',
      scopes: ['https://mail.google.com/'],
      tokenEndpoint: 'https://idp.test/token',
    });
    const calls: Array<{ url: string; body: string }> = [];
    const fake = (status: number, body: object) =>
      ((url: string, init: RequestInit) => {
        const sent = init.body instanceof URLSearchParams ? init.body.toString() : init.body;
        calls.push({ url, body: typeof sent === 'string' ? sent : '' });
        return Promise.resolve(new Response(JSON.stringify(body), { status }));
      }) as unknown as typeof fetch;
    const bad = await check(g, 'ya29.opaque-google-token', {
      fetch: fake(400, { error: 'invalid_token', error_description: 'Invalid Value' }),
    });
    expect(calls[0]!.url).toBe('https://idp.test/tokeninfo');
    expect(calls[0]!.body).toContain('access_token=');
    expect(byId(bad, 'claims')).toMatchObject({ status: 'fail', code: 'token_invalid', exitCode: 4 });
    const narrow = await check(g, 'ya29.opaque-google-token', {
      fetch: fake(200, { scope: 'https://www.googleapis.com/auth/gmail.send', email: 'alice@contoso.com' }),
    });
    expect(byId(narrow, 'claims')).toMatchObject({ status: 'fail', code: 'missing_scope' });
    const ok = await check(g, 'ya29.opaque-google-token', {
      fetch: fake(200, { scope: 'https://mail.google.com/', email: 'alice@contoso.com', expires_in: '3000' }),
    });
    expect(byId(ok, 'claims')).toMatchObject({ status: 'pass' });
  });
});

describe('report', () => {
  it('text: one line per check, fix and kind under a failure, a summary line; schema rejects a wrong report', async () => {
    const rep = await check(profile(), exo({ scp: 'IMAP.AccessAsUser.All' }));
    const text = renderReport(rep);
    expect(text).toMatch(/^PASS {2}profile {2}/m);
    expect(text).toMatch(
      /^FAIL {2}claims {3}the token lacks SMTP\.Send \(scp: IMAP\.AccessAsUser\.All\)\n {6}fix: .*\n {6}\(auth failure, exit 4, missing_scope\)$/m,
    );
    expect(text).toMatch(/^SKIP {2}smtp {5}skipped: the claims check failed$/m);
    expect(text.trim().split('\n').pop()).toBe('1 check failed for profile work (exit 4)');
    expect(validate(schema, { ...rep, exitCode: 7 })).toEqual(['$.exitCode: 7 not in [0,1,2,3,4,5,6]']);
    expect(validate(schema, { ...rep, token: 'x' })).toEqual(['$: unexpected property token']);
  });
});

describe('catalogue entries used by oauthmail test', () => {
  it.each([
    [
      '535 5.7.8 Error: authentication failed: (reason unavailable)',
      /refused the sign-in for me@x\.test \(535 5\.7\.8\)/,
      /profile's user \(me@x\.test\)/,
    ],
    ['535 Authentication failed', /refused the sign-in for me@x\.test \(535\)/, /oauthmail test work\b/],
    ['530 5.7.0 Must issue a STARTTLS command first', /refused the sign-in .*\(530 5\.7\.0\)/, /login/],
    ['550 5.1.1 <x@y>: Recipient address rejected', /does not know the recipient/, /check the address/],
    [undefined, /the mail server refused/, /--verbose/],
  ])('SMTP %s', (reply, msg, hint) => {
    const a = adviseSmtpReply(reply, { user: 'me@x.test', profile: 'work' });
    expect(a.message).toMatch(msg);
    expect(a.hint).toMatch(hint);
  });

  it('IMAP: AUTHENTICATE refused with insufficient_scope → 5 with the IMAP scope; invalid_token → 5 with the user check', () => {
    const scope = imapErrorFrom(
      {
        authenticationFailed: true,
        response: '[AUTHENTICATIONFAILED] Authentication failed.',
        oauthError: { status: 'insufficient_scope', scope: 'IMAP.AccessAsUser.All' },
      },
      { user: 'me@x.test', host: 'imap.x.test' },
    );
    expect(scope.exitCode).toBe(5);
    expect(scope.message).toMatch(/AUTHENTICATE failed for me@x\.test on imap\.x\.test: .*lacks the scope/);
    expect(scope.hint).toMatch(/IMAP\.AccessAsUser\.All/);
    const inv = imapErrorFrom(
      { authenticationFailed: true, oauthError: { status: 'invalid_token' } },
      { user: 'me@x.test' },
    );
    expect(inv.message).toMatch(/invalid or expired/);
    expect(inv.hint).toMatch(/profile's user is the mailbox/);
  });

  it('IMAP: certificate → 3, connection refused → 6, IMAP disabled → 5, INBOX missing → 5', () => {
    expect(
      imapErrorFrom({
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
        message: 'self-signed certificate in certificate chain',
      }).exitCode,
    ).toBe(3);
    expect(imapErrorFrom({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }).exitCode).toBe(6);
    const off = imapErrorFrom(
      { response: '[ALERT] Your account is not enabled for IMAP use.' },
      { user: 'me@x.test' },
    );
    expect(off.code).toBe('imap_disabled');
    expect(off.exitCode).toBe(5);
    expect(
      imapErrorFrom({ response: '[NONEXISTENT] Mailbox does not exist' }, { mailbox: 'INBOX' }).code,
    ).toBe('imap_mailbox_not_found');
  });
});

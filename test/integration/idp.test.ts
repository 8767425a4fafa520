// Integration tests for the fake identity provider (test/support/idp), against the running server.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import https from 'node:https';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  randomBytes,
} from 'node:crypto';
import { startIdp, type IdpHandle } from '../support/idp/index.mjs';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const fixtures = JSON.parse(readFileSync(join(ROOT, 'test/support/fixtures.json'), 'utf8'));
const MS = fixtures.microsoft;
const TID: string = MS.tenantId;
const PUBLIC = MS.clients[0].clientId as string;
const CONF = MS.clients[1];
const DAEMON = MS.clients[2];
const GOOGLE_CLIENT = fixtures.google.clients[0];
const GOOGLE_USER = fixtures.google.users[0];
const OUTLOOK = ['https://outlook.office.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/SMTP.Send'];

let pki: string;
let ca: string;
let idp: IdpHandle;

interface Resp {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- IdP JSON answers, checked by the assertions
  json: any;
}

function request(
  method: string,
  path: string,
  opts: {
    form?: Record<string, string>;
    json?: unknown;
    headers?: Record<string, string>;
    cookie?: string;
  } = {},
): Promise<Resp> {
  const url = new URL(path, idp.url);
  let body: string | undefined;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.form) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  }
  if (opts.cookie) headers.cookie = opts.cookie;
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const admin = (path: string, json?: unknown) =>
  request(json === undefined ? 'GET' : 'POST', `/_admin/${path}`, { json });
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
const header = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8'));
const b64url = (b: Buffer) => b.toString('base64url');
const txnOf = (html: string) => /name="txn" value="([^"]+)"/.exec(html)?.[1] ?? '';
const cookieOf = (r: Resp) => {
  const sc = r.headers['set-cookie'];
  return (Array.isArray(sc) ? sc : sc ? [sc] : []).map((c) => c.split(';')[0]).join('; ');
};
const pkce = () => {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
};

function expectEntraError(r: Resp, status: number, error: string, code: number) {
  expect(r.status).toBe(status);
  expect(r.json.error).toBe(error);
  expect(r.json.error_codes).toEqual([code]);
  expect(r.json.error_description).toMatch(
    new RegExp(
      `^AADSTS${code}: .+\\r\\nTrace ID: [0-9a-f-]{36}\\r\\nCorrelation ID: [0-9a-f-]{36}\\r\\nTimestamp: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`,
    ),
  );
  expect(r.json.trace_id).toMatch(/^[0-9a-f-]{36}$/);
  expect(r.json.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
  expect(r.json.timestamp).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  expect(r.json.error_uri).toBe(`https://login.microsoftonline.com/error?code=${code}`);
}

const authorizeUrl = (p: Record<string, string>) =>
  `/${TID}/oauth2/v2.0/authorize?${new URLSearchParams({ response_type: 'code', client_id: PUBLIC, ...p }).toString()}`;

/** Browser-less sign-in: authorize -> sign-in form -> consent -> redirect. Returns the final redirect URL. */
async function signInForCode(opts: {
  scope: string;
  redirectUri?: string;
  challenge?: string;
  user?: string;
  password?: string;
  extra?: Record<string, string>;
}) {
  const redirectUri = opts.redirectUri ?? 'http://localhost:43123';
  const r1 = await request(
    'GET',
    authorizeUrl({
      redirect_uri: redirectUri,
      scope: opts.scope,
      state: 'st-123',
      nonce: 'n-456',
      client_info: '1',
      code_challenge: opts.challenge ?? pkce().challenge,
      code_challenge_method: 'S256',
      ...opts.extra,
    }),
  );
  expect(r1.status).toBe(200);
  expect(r1.text).toContain('id="username"');
  expect(r1.text).toContain('id="password"');
  expect(r1.text).toContain('id="signin"');
  const r2 = await request('POST', '/_flow/login', {
    form: {
      txn: txnOf(r1.text),
      username: opts.user ?? 'alice@contoso.test',
      password: opts.password ?? 'alice-pw',
    },
  });
  const cookie = cookieOf(r2);
  expect(r2.status).toBe(200);
  expect(r2.text).toContain('id="accept"');
  expect(r2.text).toContain('id="cancel"');
  const r3 = await request('POST', '/_flow/consent', {
    form: { txn: txnOf(r2.text), action: 'accept' },
    cookie,
  });
  expect(r3.status).toBe(302);
  return { location: new URL(r3.headers.location as string), cookie, consentHtml: r2.text };
}

function redeem(code: string, verifier: string, extra: Record<string, string> = {}) {
  return request('POST', `/${TID}/oauth2/v2.0/token`, {
    form: {
      grant_type: 'authorization_code',
      client_id: PUBLIC,
      code,
      redirect_uri: 'http://localhost:43123',
      code_verifier: verifier,
      client_info: '1',
      ...extra,
    },
  });
}

beforeAll(async () => {
  pki = mkdtempSync(join(tmpdir(), 'idp-pki-'));
  await run('bash', [join(ROOT, 'test/support/pki.sh'), pki]);
  ca = readFileSync(join(pki, 'ca.pem'), 'utf8');
  idp = await startIdp({ pkiDir: pki });
}, 60_000);

afterAll(async () => {
  await idp?.close();
  if (pki) rmSync(pki, { recursive: true, force: true });
});

beforeEach(async () => {
  expect((await admin('reset', {})).status).toBe(200);
});

describe('discovery', () => {
  it('serves Entra v2.0 OpenID configuration for tenant id, domain and common', async () => {
    const byId = await request('GET', `/${TID}/v2.0/.well-known/openid-configuration`);
    expect(byId.status).toBe(200);
    expect(byId.json.issuer).toBe(`${idp.url}/${TID}/v2.0`);
    expect(byId.json.authorization_endpoint).toBe(`${idp.url}/${TID}/oauth2/v2.0/authorize`);
    expect(byId.json.token_endpoint).toBe(`${idp.url}/${TID}/oauth2/v2.0/token`);
    expect(byId.json.device_authorization_endpoint).toBe(`${idp.url}/${TID}/oauth2/v2.0/devicecode`);
    expect(byId.json.jwks_uri).toBe(`${idp.url}/${TID}/discovery/v2.0/keys`);
    expect(byId.json.end_session_endpoint).toBe(`${idp.url}/${TID}/oauth2/v2.0/logout`);
    const byDomain = await request('GET', `/contoso.test/v2.0/.well-known/openid-configuration`);
    expect(byDomain.json.token_endpoint).toBe(byId.json.token_endpoint);
    const common = await request('GET', `/common/v2.0/.well-known/openid-configuration`);
    expect(common.json.issuer).toBe(`${idp.url}/{tenantid}/v2.0`);
    expect(common.json.token_endpoint).toBe(`${idp.url}/common/oauth2/v2.0/token`);
    const unknown = await request('GET', `/nowhere.test/v2.0/.well-known/openid-configuration`);
    expectEntraError(unknown, 400, 'invalid_tenant', 90002);
  });

  it('serves instance discovery and a JWKS holding the signing key', async () => {
    const inst = await request('GET', `/common/discovery/instance?api-version=1.1&authorization_endpoint=x`);
    expect(inst.json.tenant_discovery_endpoint).toContain('/{tenant}/v2.0/.well-known/openid-configuration');
    expect(inst.json.metadata[0].aliases).toEqual([`localhost:${idp.port}`]);
    const keys = await request('GET', `/${TID}/discovery/v2.0/keys`);
    const kid = readFileSync(join(pki, 'jwt-kid'), 'utf8').trim();
    expect(keys.json.keys).toHaveLength(1);
    expect(keys.json.keys[0].kid).toBe(kid);
    const pub = createPublicKey(readFileSync(join(pki, 'jwt-pub.pem'))).export({ format: 'jwk' });
    expect(keys.json.keys[0].n).toBe(pub.n);
    const stats = await admin('stats');
    expect(stats.json.keys).toBe(1);
    expect(stats.json.instance_discovery).toBe(1);
  });
});

describe('Entra authorization code + PKCE', () => {
  it('signs in, consents, redirects with code/state/session_state/client_info and redeems the code once', async () => {
    const { verifier, challenge } = pkce();
    const scope = [...OUTLOOK, 'offline_access', 'openid', 'profile'].join(' ');
    const { location, consentHtml } = await signInForCode({ scope, challenge });
    expect(consentHtml).toContain('data-scope="https://outlook.office.com/SMTP.Send"');
    expect(location.origin + location.pathname).toBe('http://localhost:43123/');
    expect(location.searchParams.get('state')).toBe('st-123');
    expect(location.searchParams.get('session_state')).toMatch(/^[0-9a-f-]{36}$/);
    const info = JSON.parse(Buffer.from(location.searchParams.get('client_info')!, 'base64url').toString());
    expect(info).toEqual({ uid: MS.users[0].oid, utid: TID });
    const code = location.searchParams.get('code')!;

    const tok = await redeem(code, verifier, { scope });
    expect(tok.status).toBe(200);
    expect(tok.json.token_type).toBe('Bearer');
    expect(tok.json.expires_in).toBe(3600);
    expect(tok.json.ext_expires_in).toBe(3600);
    expect(tok.json.scope.split(' ')).toEqual(expect.arrayContaining(OUTLOOK));
    expect(tok.json.refresh_token).toMatch(/^1\.A/);
    expect(JSON.parse(Buffer.from(tok.json.client_info, 'base64url').toString())).toEqual(info);
    const id = claims(tok.json.id_token);
    expect(id).toMatchObject({
      aud: PUBLIC,
      iss: `${idp.url}/${TID}/v2.0`,
      preferred_username: 'alice@contoso.test',
      name: 'Alice Example',
      oid: MS.users[0].oid,
      tid: TID,
      nonce: 'n-456',
      ver: '2.0',
    });
    expect(typeof id.sub).toBe('string');

    const again = await redeem(code, verifier, { scope });
    expectEntraError(again, 400, 'invalid_grant', 54005);
  });

  it('skips sign-in and consent for a signed-in, consented user and rejects a wrong PKCE verifier', async () => {
    const scope = [...OUTLOOK, 'offline_access'].join(' ');
    const { cookie } = await signInForCode({ scope });
    const { challenge } = pkce();
    const r = await request(
      'GET',
      authorizeUrl({
        redirect_uri: 'http://127.0.0.1:50001',
        scope,
        state: 's2',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
      { cookie },
    );
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.location as string);
    expect(loc.host).toBe('127.0.0.1:50001');
    const bad = await redeem(loc.searchParams.get('code')!, 'wrong-verifier-wrong-verifier-wrong-verifier', {
      redirect_uri: 'http://127.0.0.1:50001',
    });
    expectEntraError(bad, 400, 'invalid_grant', 501481);
    // prompt=consent shows the consent page again even though consent exists
    const r2 = await request(
      'GET',
      authorizeUrl({
        redirect_uri: 'http://localhost:1',
        scope,
        prompt: 'consent',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
      { cookie },
    );
    expect(r2.status).toBe(200);
    expect(r2.text).toContain('id="accept"');
  });

  it('shows Entra errors: wrong password, unknown client, redirect mismatch, cancel, prompt=none, missing PKCE', async () => {
    const { challenge } = pkce();
    const base = {
      scope: OUTLOOK.join(' '),
      state: 'abc',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    };
    const r1 = await request(
      'GET',
      authorizeUrl({ ...base, redirect_uri: 'http://localhost:9', login_hint: 'bob@contoso.test' }),
    );
    expect(r1.text).toContain('value="bob@contoso.test"');
    const wrong = await request('POST', '/_flow/login', {
      form: { txn: txnOf(r1.text), username: 'bob@contoso.test', password: 'nope' },
    });
    expect(wrong.status).toBe(200);
    expect(wrong.text).toContain('AADSTS50126');
    expect(wrong.text).toContain('id="signin"');

    const unknown = await request(
      'GET',
      authorizeUrl({
        ...base,
        client_id: '99999999-9999-4999-8999-999999999999',
        redirect_uri: 'http://localhost:9',
      }),
    );
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('AADSTS700016');

    const mismatch = await request(
      'GET',
      authorizeUrl({ ...base, client_id: CONF.clientId, redirect_uri: 'http://localhost:9999/evil' }),
    );
    expect(mismatch.status).toBe(400);
    expect(mismatch.headers.location).toBeUndefined();
    expect(mismatch.text).toContain('AADSTS50011');
    expect(mismatch.text).toContain('http://localhost:9999/evil');

    const login = await request('POST', '/_flow/login', {
      form: { txn: txnOf(r1.text), username: 'bob@contoso.test', password: 'bob-pw' },
    });
    const cancel = await request('POST', '/_flow/consent', {
      form: { txn: txnOf(login.text), action: 'cancel' },
    });
    expect(cancel.status).toBe(302);
    const loc = new URL(cancel.headers.location as string);
    expect(loc.searchParams.get('error')).toBe('access_denied');
    expect(loc.searchParams.get('error_description')).toMatch(
      /^AADSTS65004: User declined to consent to access the app\.\r\nTrace ID/,
    );
    expect(loc.searchParams.get('state')).toBe('abc');

    const none = await request(
      'GET',
      authorizeUrl({ ...base, redirect_uri: 'http://localhost:9', prompt: 'none' }),
    );
    expect(none.status).toBe(302);
    expect(new URL(none.headers.location as string).searchParams.get('error')).toBe('login_required');

    const noPkce = await request(
      'GET',
      authorizeUrl({ scope: base.scope, state: 'x', redirect_uri: 'http://localhost:9' }),
    );
    expect(noPkce.status).toBe(302);
    expect(new URL(noPkce.headers.location as string).searchParams.get('error')).toBe('invalid_request');
  });
});

describe('Entra refresh tokens', () => {
  async function firstTokens() {
    const { verifier, challenge } = pkce();
    const scope = [...OUTLOOK, 'offline_access', 'openid', 'profile'].join(' ');
    const { location } = await signInForCode({ scope, challenge });
    const tok = await redeem(location.searchParams.get('code')!, verifier);
    expect(tok.status).toBe(200);
    return tok.json;
  }
  const refresh = (rt: string, scope?: string) =>
    request('POST', `/${TID}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'refresh_token',
        client_id: PUBLIC,
        refresh_token: rt,
        ...(scope ? { scope } : {}),
      },
    });

  it('rotates: each refresh returns a new refresh token and the old one is refused', async () => {
    const t0 = await firstTokens();
    const r1 = await refresh(t0.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.json.refresh_token).toBeTruthy();
    expect(r1.json.refresh_token).not.toBe(t0.refresh_token);
    const reuse = await refresh(t0.refresh_token);
    expectEntraError(reuse, 400, 'invalid_grant', 70008);
    const r2 = await refresh(r1.json.refresh_token);
    expect(r2.status).toBe(200);

    await admin('config', { reuseErrorCode: 700082 });
    const reuse2 = await refresh(r1.json.refresh_token);
    expectEntraError(reuse2, 400, 'invalid_grant', 700082);

    const stats = await admin('stats');
    expect(stats.json.token).toEqual({ authorization_code: 1, refresh_token: 4 });
  });

  it('downscopes, and refuses scopes without consent with AADSTS65001 consent_required', async () => {
    const t0 = await firstTokens();
    const down = await refresh(t0.refresh_token, 'https://outlook.office.com/SMTP.Send offline_access');
    expect(down.status).toBe(200);
    expect(claims(down.json.access_token).scp).toBe('SMTP.Send');
    await admin('consent', {
      user: 'alice@contoso.test',
      clientId: PUBLIC,
      scopes: ['https://outlook.office.com/SMTP.Send'],
      action: 'revoke',
    });
    const denied = await refresh(
      down.json.refresh_token,
      'https://outlook.office.com/SMTP.Send offline_access',
    );
    expectEntraError(denied, 400, 'invalid_grant', 65001);
    expect(denied.json.suberror).toBe('consent_required');
  });

  it('refuses refresh tokens revoked through the admin API (AADSTS50173)', async () => {
    const t0 = await firstTokens();
    const rv = await admin('revoke-refresh-tokens', { user: 'alice@contoso.test' });
    expect(rv.json.revoked).toBe(1);
    expectEntraError(await refresh(t0.refresh_token), 400, 'invalid_grant', 50173);
  });

  it('the admin clock ends idle refresh tokens without waiting; token times stay on the real clock', async () => {
    const t0 = await firstTokens();
    await admin('config', { refreshTokenIdleTimeout: 60 });
    const moved = await admin('clock', { advanceSeconds: 59 });
    expect(moved.status).toBe(200);
    expect(moved.json.offsetSeconds).toBe(59);
    expect(Date.parse(moved.json.now) - Date.now()).toBeGreaterThan(58_000);
    const realBefore = Math.floor(Date.now() / 1000);
    const r1 = await refresh(t0.refresh_token); // unused for 59 s of the IdP's time: still good
    expect(r1.status).toBe(200);
    // iat/nbf/exp are real time: Dovecot checks them with its own clock, and a token issued in its
    // future would be refused
    const c = claims(r1.json.access_token);
    expect(c.iat).toBeGreaterThanOrEqual(realBefore);
    expect(c.iat).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(c.nbf).toBe(c.iat);
    expect(c.exp - c.iat).toBe(3600);
    await admin('clock', { advanceSeconds: 61 });
    expect((await admin('clock')).json.offsetSeconds).toBe(120);
    expectEntraError(await refresh(r1.json.refresh_token), 400, 'invalid_grant', 700082);
    // the clock only moves forward, or is set back to the real one
    expect((await admin('clock', { advanceSeconds: -1 })).status).toBe(400);
    expect((await admin('clock', { offsetSeconds: 0 })).json.offsetSeconds).toBe(0);
    await admin('clock', { advanceSeconds: 5 });
    expect((await admin('reset', {})).status).toBe(200);
    expect((await admin('clock')).json.offsetSeconds).toBe(0);
  });
});

describe('Entra device code', () => {
  const poll = (deviceCode: string) =>
    request('POST', `/${TID}/oauth2/v2.0/token`, {
      form: {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        client_id: PUBLIC,
        device_code: deviceCode,
      },
    });
  const start = async () => {
    const r = await request('POST', `/organizations/oauth2/v2.0/devicecode`, {
      form: { client_id: PUBLIC, scope: [...OUTLOOK, 'offline_access', 'openid', 'profile'].join(' ') },
    });
    expect(r.status).toBe(200);
    return r.json;
  };

  it('pending, slow_down, approve, token; then code is used up', async () => {
    await admin('config', { deviceCodeInterval: 2 });
    const d = await start();
    expect(d.verification_uri).toBe(`${idp.url}/devicelogin`);
    expect(d.interval).toBe(2);
    expect(d.expires_in).toBe(900);
    expect(d.user_code).toMatch(/^[A-Z0-9]{9}$/);
    expect(d.message).toContain(d.user_code);
    expectEntraError(await poll(d.device_code), 400, 'authorization_pending', 70016);
    const fast = await poll(d.device_code);
    expect(fast.status).toBe(400);
    expect(fast.json.error).toBe('slow_down');
    const pending = await admin('device/pending');
    expect(pending.json.codes.map((c: { user_code: string }) => c.user_code)).toContain(d.user_code);
    expect(
      (await admin('device', { user_code: d.user_code, action: 'approve', user: 'bob@contoso.test' })).status,
    ).toBe(200);
    const tok = await poll(d.device_code);
    expect(tok.status).toBe(200);
    expect(claims(tok.json.access_token).upn).toBe('bob@contoso.test');
    expect(tok.json.refresh_token).toBeTruthy();
    expect((await poll(d.device_code)).json.error).toBe('invalid_grant');
    const stats = await admin('stats');
    expect(stats.json.devicecode).toBe(1);
    expect(stats.json.token['urn:ietf:params:oauth:grant-type:device_code']).toBe(4);
  });

  it('deny and expire', async () => {
    const a = await start();
    await admin('device', { user_code: a.user_code, action: 'deny' });
    const denied = await poll(a.device_code);
    expect(denied.json.error).toBe('authorization_declined');
    const b = await start();
    await admin('device', { user_code: b.user_code, action: 'expire' });
    expectEntraError(await poll(b.device_code), 400, 'expired_token', 70019);
  });

  it('a device code expires on the admin clock, without waiting', async () => {
    await admin('config', { deviceCodeLifetime: 120 });
    const d = await start();
    expect(d.expires_in).toBe(120);
    await admin('clock', { advanceSeconds: 119 });
    expectEntraError(await poll(d.device_code), 400, 'authorization_pending', 70016);
    expect((await admin('device/pending')).json.codes.map((c: { user_code: string }) => c.user_code)).toEqual(
      [d.user_code],
    );
    await admin('clock', { advanceSeconds: 2 });
    expectEntraError(await poll(d.device_code), 400, 'expired_token', 70019);
    expect((await admin('device/pending')).json.codes).toEqual([]);
  });

  it('the /devicelogin page takes the code, signs in and consents', async () => {
    const d = await start();
    const page = await request('GET', '/devicelogin');
    expect(page.text).toContain('id="otc"');
    const r1 = await request('POST', '/devicelogin', { form: { otc: d.user_code.toLowerCase() } });
    expect(r1.text).toContain('id="username"');
    const r2 = await request('POST', '/_flow/login', {
      form: { txn: txnOf(r1.text), username: 'alice@contoso.test', password: 'alice-pw' },
    });
    const r3 = await request('POST', '/_flow/consent', { form: { txn: txnOf(r2.text), action: 'accept' } });
    expect(r3.text).toContain('data-result="approved"');
    expect((await poll(d.device_code)).status).toBe(200);
  });
});

describe('Entra client credentials and access token shape', () => {
  const cc = (form: Record<string, string>, headers?: Record<string, string>) =>
    request('POST', `/${TID}/oauth2/v2.0/token`, {
      form: { grant_type: 'client_credentials', ...form },
      headers,
    });
  const scope = 'https://outlook.office365.com/.default';

  it('accepts client_secret_post and client_secret_basic; refuses bad credentials Entra-style', async () => {
    const post = await cc({ client_id: DAEMON.clientId, client_secret: DAEMON.secret, scope });
    expect(post.status).toBe(200);
    expect(post.json.refresh_token).toBeUndefined();
    const basic = await cc(
      { scope },
      { authorization: 'Basic ' + Buffer.from(`${DAEMON.clientId}:${DAEMON.secret}`).toString('base64') },
    );
    expect(basic.status).toBe(200);
    expectEntraError(
      await cc({ client_id: DAEMON.clientId, client_secret: 'wrong', scope }),
      401,
      'invalid_client',
      7000215,
    );
    expectEntraError(await cc({ client_id: DAEMON.clientId, scope }), 401, 'invalid_client', 7000218);
    expectEntraError(
      await cc({ client_id: PUBLIC, client_secret: 'x', scope }),
      401,
      'invalid_client',
      700025,
    );
    expectEntraError(
      await cc({ client_id: '99999999-9999-4999-8999-999999999999', client_secret: 'x', scope }),
      400,
      'unauthorized_client',
      700016,
    );
    expectEntraError(
      await cc({
        client_id: DAEMON.clientId,
        client_secret: DAEMON.secret,
        scope: 'https://outlook.office365.com/SMTP.SendAsApp',
      }),
      400,
      'invalid_scope',
      1002012,
    );

    const c = claims(post.json.access_token);
    expect(c.roles).toEqual(DAEMON.appRoles);
    expect(c.scp).toBeUndefined();
    expect(c.email).toBe(DAEMON.mailboxPermission);
    expect(c.sub).toBe(c.oid);
    expect(c.aud).toBe('https://outlook.office365.com');
    expect(c.idtyp).toBe('app');
  });

  it('app-only roles are per resource: Exchange roles for Outlook, Graph application permissions for Graph', async () => {
    const graph = await cc({
      client_id: DAEMON.clientId,
      client_secret: DAEMON.secret,
      scope: 'https://graph.microsoft.com/.default',
    });
    expect(graph.status).toBe(200);
    const g = claims(graph.json.access_token);
    expect(g.aud).toBe('https://graph.microsoft.com');
    expect(g.roles).toEqual(DAEMON.graphAppRoles);
    expect(g.roles).toEqual(expect.arrayContaining(['Mail.Send', 'Mail.ReadWrite']));
    expect(g.scp).toBeUndefined();
    expect(g.idtyp).toBe('app');
    const outlook = claims(
      (await cc({ client_id: DAEMON.clientId, client_secret: DAEMON.secret, scope })).json.access_token,
    );
    expect(outlook.roles).toEqual(DAEMON.appRoles);
    expect(outlook.roles).not.toContain('Mail.Send');
    // the same through the admin API
    const minted = await admin('mint', {
      clientId: DAEMON.clientId,
      app: true,
      scopes: ['https://graph.microsoft.com/.default'],
    });
    expect(claims(minted.json.access_token).roles).toEqual(DAEMON.graphAppRoles);
  });

  it('delegated Graph scopes give a Graph-audience token with scp (what the local Graph endpoint reads)', async () => {
    const graph = await admin('mint', {
      user: 'alice@contoso.test',
      clientId: PUBLIC,
      scopes: ['https://graph.microsoft.com/Mail.Send', 'https://graph.microsoft.com/Mail.ReadWrite'],
    });
    const c = claims(graph.json.access_token);
    expect(c.aud).toBe('https://graph.microsoft.com');
    expect(c.scp).toBe('Mail.Send Mail.ReadWrite');
    expect(c.roles).toBeUndefined();
  });

  it('accepts a client assertion signed with a registered certificate key (RS256, x5t)', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const thumb = createHash('sha1').update(randomBytes(20)).digest();
    const reg = await admin(`clients/${DAEMON.clientId}/certificate`, {
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
      x5t: b64url(thumb),
      replace: true,
    });
    expect(reg.status).toBe(200);
    const now = Math.floor(Date.now() / 1000);
    const mk = (key = privateKey) => {
      const h = b64url(Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5t: b64url(thumb) })));
      const p = b64url(
        Buffer.from(
          JSON.stringify({
            aud: `${idp.url}/${TID}/oauth2/v2.0/token`,
            iss: DAEMON.clientId,
            sub: DAEMON.clientId,
            exp: now + 600,
            nbf: now,
            jti: 'j1',
          }),
        ),
      );
      return `${h}.${p}.${b64url(cryptoSign('sha256', Buffer.from(`${h}.${p}`), key))}`;
    };
    const form = {
      client_id: DAEMON.clientId,
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    };
    const ok = await cc({ ...form, client_assertion: mk() });
    expect(ok.status).toBe(200);
    expect(claims(ok.json.access_token).appidacr).toBe('2');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expectEntraError(await cc({ ...form, client_assertion: mk(other) }), 401, 'invalid_client', 700027);
  });

  it('issues RS256 JWTs with typ JWT and Exchange-like v1 claims, verifiable with jwt-pub.pem', async () => {
    const m = await admin('mint', {
      provider: 'microsoft',
      user: 'alice@contoso.test',
      clientId: PUBLIC,
      scopes: OUTLOOK,
    });
    const at: string = m.json.access_token;
    const kid = readFileSync(join(pki, 'jwt-kid'), 'utf8').trim();
    expect(header(at)).toEqual({ typ: 'JWT', alg: 'RS256', kid });
    const [h, p, s] = at.split('.');
    const pub = createPublicKey(readFileSync(join(pki, 'jwt-pub.pem')));
    expect(cryptoVerify('sha256', Buffer.from(`${h}.${p}`), pub, Buffer.from(s!, 'base64url'))).toBe(true);
    expect(cryptoVerify('sha256', Buffer.from(`${h}.${p}x`), pub, Buffer.from(s!, 'base64url'))).toBe(false);
    const c = claims(at);
    expect(c).toMatchObject({
      aud: 'https://outlook.office.com',
      iss: `https://sts.windows.net/${TID}/`,
      appid: PUBLIC,
      app_displayname: MS.clients[0].name,
      oid: MS.users[0].oid,
      tid: TID,
      upn: 'alice@contoso.test',
      unique_name: 'alice@contoso.test',
      name: 'Alice Example',
      scp: 'IMAP.AccessAsUser.All SMTP.Send',
      scope: 'IMAP.AccessAsUser.All SMTP.Send',
      email: 'alice@contoso.test',
      ver: '1.0',
    });
    expect(c.exp - c.iat).toBe(3600);
    expect(c.nbf).toBe(c.iat);
    expect(typeof c.sub).toBe('string');

    const graph = await admin('mint', {
      user: 'alice@contoso.test',
      clientId: PUBLIC,
      scopes: ['SMTP.Send'],
      lifetime: 2,
    });
    expect(claims(graph.json.access_token).aud).toBe('https://graph.microsoft.com');
    expect(graph.json.expires_in).toBe(2);

    await admin('config', { accessTokenLifetime: 5 });
    const short = await cc({ client_id: DAEMON.clientId, client_secret: DAEMON.secret, scope });
    expect(short.json.expires_in).toBe(5);
  });
});

describe('fault injection', () => {
  it('answers 429 with Retry-After for the next matching call, then succeeds', async () => {
    const f = await admin('faults', {
      endpoint: 'token',
      grantType: 'client_credentials',
      status: 429,
      retryAfter: 2,
      times: 1,
    });
    expect(f.status).toBe(200);
    const form = {
      grant_type: 'client_credentials',
      client_id: DAEMON.clientId,
      client_secret: DAEMON.secret,
      scope: 'https://outlook.office365.com/.default',
    };
    const r1 = await request('POST', `/${TID}/oauth2/v2.0/token`, { form });
    expect(r1.status).toBe(429);
    expect(r1.headers['retry-after']).toBe('2');
    expect(r1.json.error).toBe('temporarily_unavailable');
    expect(r1.json.error_codes).toHaveLength(1);
    const r2 = await request('POST', `/${TID}/oauth2/v2.0/token`, { form });
    expect(r2.status).toBe(200);
    const stats = await admin('stats');
    expect(stats.json.token.client_credentials).toBe(2);
    expect(stats.json.faults.token).toBe(1);
  });

  it('injects Entra error codes and delays, and counts concurrency', async () => {
    await admin('faults', { endpoint: 'token', status: 400, errorCode: 65001 });
    const form = {
      grant_type: 'client_credentials',
      client_id: DAEMON.clientId,
      client_secret: DAEMON.secret,
      scope: 'https://outlook.office365.com/.default',
    };
    const r = await request('POST', `/${TID}/oauth2/v2.0/token`, { form });
    expectEntraError(r, 400, 'invalid_grant', 65001);
    expect(r.json.suberror).toBe('consent_required');
    await admin('faults', { endpoint: 'token', delayMs: 300, times: 3 });
    const t0 = Date.now();
    const all = await Promise.all(
      [1, 2, 3].map(() => request('POST', `/${TID}/oauth2/v2.0/token`, { form })),
    );
    expect(all.map((x) => x.status)).toEqual([200, 200, 200]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const stats = await admin('stats');
    expect(stats.json.inFlight.token.max).toBe(3);
    expect(stats.json.inFlight.token.current).toBe(0);
    await admin('faults', { endpoint: 'token', status: 503, times: -1 });
    expect((await request('POST', `/${TID}/oauth2/v2.0/token`, { form })).status).toBe(503);
    expect((await request('DELETE', '/_admin/faults')).status).toBe(200);
    expect((await request('POST', `/${TID}/oauth2/v2.0/token`, { form })).status).toBe(200);
    expect((await admin('faults', { endpoint: 'nope', status: 500 })).status).toBe(400);
  });
});

describe('Google', () => {
  const G = `/o/oauth2/v2/auth`;
  async function googleCode(extra: Record<string, string>, cookie?: string) {
    const { verifier, challenge } = pkce();
    const q = new URLSearchParams({
      client_id: GOOGLE_CLIENT.clientId,
      redirect_uri: 'http://127.0.0.1:47000',
      response_type: 'code',
      scope: 'https://mail.google.com/ openid email',
      state: 'gs',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    let r = await request('GET', `${G}?${q.toString()}`, { cookie });
    if (r.text.includes('id="signin"')) {
      r = await request('POST', '/_flow/login', {
        form: { txn: txnOf(r.text), username: GOOGLE_USER.email, password: GOOGLE_USER.password },
      });
      cookie = cookieOf(r);
    }
    if (r.text.includes('id="accept"')) {
      r = await request('POST', '/_flow/consent', { form: { txn: txnOf(r.text), action: 'accept' }, cookie });
    }
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.location as string);
    expect(loc.searchParams.get('state')).toBe('gs');
    return { code: loc.searchParams.get('code')!, verifier, cookie };
  }
  const gtoken = (form: Record<string, string>) =>
    request('POST', '/token', {
      form: { client_id: GOOGLE_CLIENT.clientId, client_secret: GOOGLE_CLIENT.secret, ...form },
    });

  it('exchanges a code (offline + consent => refresh token), refreshes without rotation, and shapes errors like Google', async () => {
    const { code, verifier, cookie } = await googleCode({ access_type: 'offline', prompt: 'consent' });
    const t = await gtoken({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: 'http://127.0.0.1:47000',
    });
    expect(t.status).toBe(200);
    expect(t.json.token_type).toBe('Bearer');
    expect(t.json.refresh_token).toBeTruthy();
    expect(t.json.scope).toContain('https://mail.google.com/');
    const c = claims(t.json.access_token);
    expect(header(t.json.access_token).typ).toBe('JWT');
    expect(c).toMatchObject({
      iss: 'https://accounts.google.com',
      email: GOOGLE_USER.email,
      sub: GOOGLE_USER.sub,
    });
    expect(claims(t.json.id_token).aud).toBe(GOOGLE_CLIENT.clientId);

    const r = await gtoken({ grant_type: 'refresh_token', refresh_token: t.json.refresh_token });
    expect(r.status).toBe(200);
    expect(r.json.refresh_token).toBeUndefined();
    expect((await gtoken({ grant_type: 'refresh_token', refresh_token: t.json.refresh_token })).status).toBe(
      200,
    );

    const info = await request('GET', `/tokeninfo?access_token=${encodeURIComponent(r.json.access_token)}`);
    expect(info.json).toMatchObject({
      aud: GOOGLE_CLIENT.clientId,
      azp: GOOGLE_CLIENT.clientId,
      email: GOOGLE_USER.email,
      email_verified: 'true',
      access_type: 'offline',
    });
    expect(Number(info.json.expires_in)).toBeGreaterThan(3500);

    const bad = await gtoken({ grant_type: 'refresh_token', refresh_token: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      error: 'invalid_grant',
      error_description: 'Token has been expired or revoked.',
    });
    const wrongSecret = await request('POST', '/token', {
      form: {
        client_id: GOOGLE_CLIENT.clientId,
        client_secret: 'x',
        grant_type: 'refresh_token',
        refresh_token: t.json.refresh_token,
      },
    });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.json).toEqual({ error: 'invalid_client', error_description: 'Unauthorized' });
    const reused = await gtoken({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: 'http://127.0.0.1:47000',
    });
    expect(reused.json.error).toBe('invalid_grant');

    // A repeat authorization without prompt=consent gets no new refresh token
    const again = await googleCode({ access_type: 'offline' }, cookie);
    const t2 = await gtoken({
      grant_type: 'authorization_code',
      code: again.code,
      code_verifier: again.verifier,
      redirect_uri: 'http://127.0.0.1:47000',
    });
    expect(t2.status).toBe(200);
    expect(t2.json.refresh_token).toBeUndefined();

    const rv = await request('POST', '/revoke', { form: { token: t.json.refresh_token } });
    expect(rv.status).toBe(200);
    expect(
      (await gtoken({ grant_type: 'refresh_token', refresh_token: t.json.refresh_token })).json.error,
    ).toBe('invalid_grant');

    await admin('config', { rotateGoogleRefreshTokens: true });
    const { code: c3, verifier: v3 } = await googleCode(
      { access_type: 'offline', prompt: 'consent' },
      cookie,
    );
    const t3 = await gtoken({
      grant_type: 'authorization_code',
      code: c3,
      code_verifier: v3,
      redirect_uri: 'http://127.0.0.1:47000',
    });
    const rot = await gtoken({ grant_type: 'refresh_token', refresh_token: t3.json.refresh_token });
    expect(rot.json.refresh_token).toBeTruthy();
    expect(rot.json.refresh_token).not.toBe(t3.json.refresh_token);
    expect(
      (await gtoken({ grant_type: 'refresh_token', refresh_token: t3.json.refresh_token })).json.error,
    ).toBe('invalid_grant');
  });

  it('shows redirect_uri_mismatch and redirects access_denied', async () => {
    const q = new URLSearchParams({
      client_id: GOOGLE_CLIENT.clientId,
      redirect_uri: 'https://evil.test/cb',
      response_type: 'code',
      scope: 'email',
    });
    const mm = await request('GET', `${G}?${q.toString()}`);
    expect(mm.status).toBe(400);
    expect(mm.text).toContain('redirect_uri_mismatch');
    q.set('redirect_uri', 'http://localhost:5555');
    q.set('state', 'z');
    const r1 = await request('GET', `${G}?${q.toString()}`);
    const r2 = await request('POST', '/_flow/login', {
      form: { txn: txnOf(r1.text), username: GOOGLE_USER.email, password: GOOGLE_USER.password },
    });
    const r3 = await request('POST', '/_flow/consent', { form: { txn: txnOf(r2.text), action: 'cancel' } });
    const loc = new URL(r3.headers.location as string);
    expect(loc.searchParams.get('error')).toBe('access_denied');
    expect(loc.searchParams.get('state')).toBe('z');
  });

  it('service accounts: JWT bearer with and without domain-wide delegation', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'robot@proj.iam.gserviceaccount.test';
    const reg = await admin('google/service-accounts', {
      client_email: email,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
      domainWideDelegation: false,
    });
    expect(reg.status).toBe(200);
    const now = Math.floor(Date.now() / 1000);
    const assertion = (sub?: string) => {
      const h = b64url(Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })));
      const p = b64url(
        Buffer.from(
          JSON.stringify({
            iss: email,
            sub,
            scope: 'https://mail.google.com/',
            aud: 'https://oauth2.googleapis.com/token',
            iat: now,
            exp: now + 3600,
          }),
        ),
      );
      return `${h}.${p}.${b64url(cryptoSign('sha256', Buffer.from(`${h}.${p}`), privateKey))}`;
    };
    const grant = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
    const self = await request('POST', '/token', { form: { grant_type: grant, assertion: assertion() } });
    expect(self.status).toBe(200);
    expect(claims(self.json.access_token).email).toBe(email);
    const noDwd = await request('POST', '/token', {
      form: { grant_type: grant, assertion: assertion(GOOGLE_USER.email) },
    });
    expect(noDwd.status).toBe(401);
    expect(noDwd.json.error).toBe('unauthorized_client');
    await admin('google/service-accounts', {
      client_email: email,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
      domainWideDelegation: true,
    });
    const dwd = await request('POST', '/token', {
      form: { grant_type: grant, assertion: assertion(GOOGLE_USER.email) },
    });
    expect(dwd.status).toBe(200);
    expect(claims(dwd.json.access_token).email).toBe(GOOGLE_USER.email);
  });
});

describe('real clients and the CLI', () => {
  it('@azure/msal-node 7: device code, forced refresh, cache hit, client credentials (secret, certificate, metadata mode)', async () => {
    await admin('config', { deviceCodeInterval: 1 });
    const { stdout } = await run(process.execPath, [join(ROOT, 'test/support/idp/msal-smoke.mjs'), idp.url], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(pki, 'ca.pem') },
      timeout: 60_000,
    });
    const out = JSON.parse(stdout);
    expect(out.deviceCode).toMatchObject({
      username: 'alice@contoso.test',
      tenantId: TID,
      hasIdToken: true,
      aud: 'https://outlook.office.com',
      scp: 'IMAP.AccessAsUser.All SMTP.Send',
      userCodeSeen: true,
    });
    expect(out.deviceCode.homeAccountId).toBe(`${MS.users[0].oid}.${TID}`);
    expect(out.accounts).toEqual(['alice@contoso.test']);
    expect(out.refresh.fromCache).toBe(false);
    expect(out.refresh.uti).not.toBe(out.deviceCode.uti);
    expect(out.silentCached.fromCache).toBe(true);
    expect(out.clientCredential).toMatchObject({
      aud: 'https://outlook.office365.com',
      roles: DAEMON.appRoles,
      email: DAEMON.mailboxPermission,
      appidacr: '1',
    });
    expect(out.certificate).toMatchObject({ appidacr: '2', roles: DAEMON.appRoles });
    expect(out.metadataMode).toMatchObject({ aud: 'https://outlook.office.com', roles: DAEMON.appRoles });
    const stats = await admin('stats');
    expect(stats.json.devicecode).toBe(1);
    expect(stats.json.token.refresh_token).toBe(1);
    expect(stats.json.token.client_credentials).toBe(3);
  }, 60_000);

  it('google-auth-library 10: code exchange, refresh, tokeninfo, revoke', async () => {
    const { stdout } = await run(
      process.execPath,
      [join(ROOT, 'test/support/idp/google-smoke.mjs'), idp.url],
      {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: join(pki, 'ca.pem') },
        timeout: 30_000,
      },
    );
    const out = JSON.parse(stdout);
    expect(out.exchange.keys).toEqual([
      'access_token',
      'expiry_date',
      'refresh_token',
      'scope',
      'token_type',
    ]);
    expect(out.refreshed).toBe(true);
    expect(out.tokenInfo).toEqual({
      email: GOOGLE_USER.email,
      scopes: ['https://mail.google.com/'],
      aud: GOOGLE_CLIENT.clientId,
    });
    expect(out.afterRevoke).toEqual({
      error: 'invalid_grant',
      error_description: 'Token has been expired or revoked.',
    });
    const stats = await admin('stats');
    expect(stats.json['google.token']).toEqual({ authorization_code: 1, refresh_token: 2 });
  }, 30_000);

  it('server.mjs writes the ready file, serves, and exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idp-cli-'));
    const ready = join(dir, 'ready.json');
    const child = spawn(
      process.execPath,
      [join(ROOT, 'test/support/idp/server.mjs'), '--pki', pki, '--port', '0', '--ready-file', ready],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      for (let i = 0; i < 100 && !existsSync(ready); i++) await new Promise((r) => setTimeout(r, 50));
      const info = JSON.parse(readFileSync(ready, 'utf8'));
      expect(info.pid).toBe(child.pid);
      expect(info.url).toBe(`https://localhost:${info.port}`);
      const r = await new Promise<number>((resolve, reject) => {
        https
          .get(`${info.url}/common/v2.0/.well-known/openid-configuration`, { ca }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
      expect(r).toBe(200);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toContain('GET /common/v2.0/.well-known/openid-configuration -> 200');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);
});

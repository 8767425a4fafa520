/**
 * Checks 2 and 3: an access token can be had silently (a forced refresh proves the stored sign-in
 * still works), and what it allows: audience, scp or roles, user, tenant, app, expiry (JWT), or
 * Google's token-info endpoint for its opaque tokens.
 */
import { MICROSOFT_SCOPES, GOOGLE_MAIL_SCOPE, GOOGLE_TOKEN_ENDPOINT } from '../../config/presets.js';
import { registerSecret } from '../../util/redact.js';
import { decodeJwt, summarizeJwt } from '../../auth/jwt.js';
import { MICROSOFT_APP_ROLES, MICROSOFT_SCP } from '../scopes.js';
import { Fail, type CheckResult, type Ctx } from './types.js';
import { GRAPH } from './profile.js';

export async function checkToken(c: Ctx, r: CheckResult): Promise<string> {
  if (c.deps.token) {
    c.token = c.deps.token;
    registerSecret(c.token);
    r.details = { source: 'stdin' };
    return 'using the access token given on stdin (the stored sign-in is not checked)';
  }
  const provider = await c.deps.provider();
  // a forced refresh: a cached access token proves nothing about the refresh token, which is
  // what breaks (expiry, revocation, consent withdrawn) while a cron job is not looking
  const t = await provider.getToken({ forceRefresh: true });
  c.token = t.accessToken;
  registerSecret(c.token);
  r.details = {
    source: 'identity provider',
    account: t.account,
    expiresOn: t.expiresOn ? t.expiresOn.toISOString() : null,
    scopes: t.scopes,
  };
  return `got a new access token${t.account ? ` for ${t.account}` : ' (app-only)'} from the identity provider${t.expiresOn ? `, valid until ${t.expiresOn.toISOString()}` : ''}`;
}

// ---- 3. claims -------------------------------------------------------------------------------

const EXCHANGE_AUDIENCES = new Set([
  'https://outlook.office.com',
  'https://outlook.office365.com',
  '00000002-0000-0ff1-ce00-000000000000',
]);
const GRAPH_AUDIENCES = new Set([GRAPH, '00000003-0000-0000-c000-000000000000']);

export async function checkClaims(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p, name } = c.deps;
  const token = c.token!;
  if (p.provider === 'google') return googleTokenInfo(c, r);
  const s = summarizeJwt(token);
  if (!s) {
    r.details = { format: 'opaque' };
    r.warnings.push('the token is opaque (not a JWT): its permissions are checked by the mail servers below');
    return 'opaque token: nothing to read; the mail servers decide';
  }
  c.summary = s;
  c.tokenUser = s.user;
  const now = c.deps.now?.() ?? new Date();
  r.details = {
    audience: s.audience ?? null,
    scopes: s.scopes,
    roles: s.roles,
    user: s.user ?? null,
    tenant: s.tenantId ?? null,
    appId: s.appId ?? null,
    expiresAt: s.expiresAt ? s.expiresAt.toISOString() : null,
  };
  if (p.provider !== 'microsoft') {
    if (s.expiresAt && s.expiresAt <= now)
      throw new Fail(
        `the token expired at ${s.expiresAt.toISOString()}`,
        'auth',
        `run: oauthmail login ${name}`,
        'token_expired',
      );
    return `JWT for ${s.user ?? s.subject ?? 'an unknown subject'}${s.scopes.length ? `, scopes ${s.scopes.join(' ')}` : ''}`;
  }
  const aud = (s.audience ?? '').replace(/\/$/, '');
  if (GRAPH_AUDIENCES.has(aud)) {
    throw new Fail(
      `the token is for Microsoft Graph (aud ${s.audience}), which the SMTP and IMAP servers refuse`,
      'auth',
      `ask for Exchange Online scopes (${p.capabilities.map((x) => MICROSOFT_SCOPES[x]).join(' ')}), not Graph's: check the profile's scopes, then: oauthmail login ${name}`,
      'graph_audience',
    );
  }
  if (!EXCHANGE_AUDIENCES.has(aud)) {
    throw new Fail(
      `the token is for ${s.audience ?? 'no audience'}, not Exchange Online (https://outlook.office.com)`,
      'auth',
      `ask for https://outlook.office.com/... scopes, then: oauthmail login ${name}`,
      'wrong_audience',
    );
  }
  if (s.expiresAt && s.expiresAt <= now) {
    throw new Fail(
      `the token expired at ${s.expiresAt.toISOString()}`,
      'auth',
      `run: oauthmail login ${name}`,
      'token_expired',
    );
  }
  if (p.clientId && s.appId && s.appId !== p.clientId) {
    r.warnings.push(`the token was issued to app ${s.appId}, not the profile's clientId ${p.clientId}`);
  }
  // Entra: delegated tokens carry `scp`, app-only tokens carry `roles` and no `scp`
  const hasScp = typeof decodeJwt(token)?.claims.scp === 'string';
  const appOnly = !hasScp && (s.roles.length > 0 || !s.user);
  if (appOnly) {
    const missing = p.capabilities.filter((cap) => !s.roles.includes(MICROSOFT_APP_ROLES[cap]));
    if (missing.length) {
      const roles = missing.map((m) => MICROSOFT_APP_ROLES[m]);
      throw new Fail(
        `the app-only token lacks the application permission${roles.length > 1 ? 's' : ''} ${roles.join(' and ')} (roles: ${s.roles.join(' ') || 'none'})`,
        'auth',
        `in the app registration add Office 365 Exchange Online → Application permissions → ${roles.join(', ')}, and have an administrator grant admin consent (oauthmail consent-url ${name} --admin); see: oauthmail guide ${name}`,
        'missing_role',
      );
    }
    if (s.user && p.user && s.user.toLowerCase() !== p.user.toLowerCase()) {
      r.warnings.push(
        `the app has mailbox access recorded for ${s.user}, the profile's mailbox is ${p.user}`,
      );
    }
    return `app-only token for Exchange Online, roles ${s.roles.join(' ')}${s.tenantId ? `, tenant ${s.tenantId}` : ''}`;
  }
  const missing = p.capabilities.filter((cap) => !s.scopes.includes(MICROSOFT_SCP[cap]));
  if (missing.length) {
    const names = missing.map((m) => MICROSOFT_SCP[m]);
    throw new Fail(
      `the token lacks ${names.join(' and ')} (scp: ${s.scopes.join(' ') || 'none'})`,
      'auth',
      `the app registration must list ${names.join(', ')} (oauthmail guide ${name}) and the user must consent: oauthmail login ${name} --prompt consent (or an administrator: oauthmail consent-url ${name} --admin)`,
      'missing_scope',
    );
  }
  if (s.user && p.user && s.user.toLowerCase() !== p.user.toLowerCase()) {
    r.warnings.push(
      `the token is for ${s.user} but the profile's mailbox is ${p.user}: this works only if ${s.user} has FullAccess (IMAP) and Send As (SMTP) on it`,
    );
  }
  return `token for ${s.user ?? 'an unknown user'} with ${s.scopes.join(' ')}${s.tenantId ? `, tenant ${s.tenantId}` : ''}`;
}

/** Google access tokens are opaque: ask the token-info endpoint what the token allows. */
async function googleTokenInfo(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p, name } = c.deps;
  const base = p.tokenEndpoint ?? GOOGLE_TOKEN_ENDPOINT;
  const url = base.replace(/\/token$/, '/tokeninfo');
  const f = c.deps.fetch ?? fetch;
  let res: Response;
  try {
    // the token goes in the body, never in a URL that could end up in a log
    res = await f(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: c.token! }).toString(),
      signal: AbortSignal.timeout(c.deps.timeoutMs ?? 15_000),
    });
  } catch (e) {
    throw new Fail(
      `could not reach Google's token-info endpoint ${url}: ${(e as Error).message}`,
      'transient',
      'check the network; this is safe to retry',
      'tokeninfo_network',
    );
  }
  // Google's token-info answer (or its error) is a flat object of strings
  const body = (await res.json().catch(() => ({}))) as {
    error?: string;
    error_description?: string;
    scope?: string;
    email?: unknown;
    aud?: string;
    expires_in?: unknown;
  };
  if (!res.ok) {
    throw new Fail(
      `Google says the token is not valid (${body.error_description ?? body.error ?? `HTTP ${res.status}`})`,
      'auth',
      `run: oauthmail login ${name}`,
      'token_invalid',
    );
  }
  const scopes = (body.scope ?? '').split(' ').filter(Boolean);
  const email = typeof body.email === 'string' ? body.email : undefined;
  c.tokenUser = email;
  r.details = {
    format: 'opaque (token-info)',
    scopes,
    user: email ?? null,
    audience: body.aud ?? null,
    expiresIn: Number(body.expires_in ?? 0) || null,
  };
  if (!scopes.includes(GOOGLE_MAIL_SCOPE)) {
    throw new Fail(
      `the token lacks ${GOOGLE_MAIL_SCOPE} (scopes: ${scopes.join(' ') || 'none'})`,
      'auth',
      `add ${GOOGLE_MAIL_SCOPE} to the consent screen's scopes (oauthmail guide ${name}), then: oauthmail login ${name}`,
      'missing_scope',
    );
  }
  if (email && p.user && email.toLowerCase() !== p.user.toLowerCase()) {
    r.warnings.push(
      `the token is for ${email} but the profile's mailbox is ${p.user}; Gmail will refuse that`,
    );
  }
  return `token for ${email ?? 'an unknown account'} with ${scopes.join(' ')} (from Google's token-info)`;
}

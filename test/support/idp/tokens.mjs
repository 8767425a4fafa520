// Token minting and error shapes for both providers.
import { b64urlJson, randomToken, randomUUID, sha256, b64url } from './jwt.mjs';
import { idpNow } from './state.mjs';

export const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
export const GRAPH = 'https://graph.microsoft.com';
const OUTLOOK_DEFAULT_SCOPES = ['IMAP.AccessAsUser.All', 'POP.AccessAsUser.All', 'SMTP.Send'];

const nowSec = () => Math.floor(Date.now() / 1000);

/** Entra's timestamp format in error bodies: "2024-05-01 12:34:56Z". */
function entraTimestamp(d = new Date()) {
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/**
 * An Entra ID (v2.0 endpoint) error body, as the token endpoint returns it.
 * @param {{error: string, code?: number|null, message: string, suberror?: string, claims?: string, correlationId?: string}} e
 */
export function entraErrorBody({ error, code, message, suberror, claims, correlationId }) {
  const traceId = randomUUID();
  const corr = correlationId || randomUUID();
  const ts = entraTimestamp();
  const prefix = code ? `AADSTS${code}: ` : '';
  const body = {
    error,
    error_description: `${prefix}${message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${corr}\r\nTimestamp: ${ts}`,
    error_codes: code ? [code] : [],
    timestamp: ts,
    trace_id: traceId,
    correlation_id: corr,
  };
  if (code) body.error_uri = `https://login.microsoftonline.com/error?code=${code}`;
  if (suberror) body.suberror = suberror;
  if (claims) body.claims = claims;
  return body;
}

/** Error thrown inside route handlers and turned into a response by the router. */
export class OAuthError extends Error {
  /**
   * @param {number} status
   * @param {any} body JSON body (already provider-shaped)
   * @param {Record<string,string>} [headers]
   */
  constructor(status, body, headers = {}) {
    super(body?.error || 'error');
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

export function entraError(status, error, code, message, extra = {}) {
  return new OAuthError(status, entraErrorBody({ error, code, message, ...extra }));
}

export function googleError(status, error, description) {
  const body = { error };
  if (description !== undefined) body.error_description = description;
  return new OAuthError(status, body);
}

/** Canonical resource for consent bookkeeping: Exchange answers to both outlook hosts. */
function canonicalResource(resource) {
  return resource === 'https://outlook.office365.com' ? 'https://outlook.office.com' : resource.toLowerCase();
}

/**
 * Parse an Entra v2 `scope` parameter into OIDC scopes and resource scopes.
 * "https://outlook.office.com/SMTP.Send" -> resource https://outlook.office.com, short SMTP.Send;
 * a bare name like "SMTP.Send" or "User.Read" is a Microsoft Graph scope (as Entra treats it).
 */
export function parseEntraScopes(scopeStr) {
  const raw = String(scopeStr || '')
    .split(/\s+/)
    .filter(Boolean);
  const oidc = [];
  const res = [];
  for (const s of raw) {
    if (OIDC_SCOPES.has(s.toLowerCase())) {
      oidc.push(s.toLowerCase());
      continue;
    }
    const m =
      /^((?:https?|api):\/\/[^/]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/(.+)$/i.exec(
        s,
      );
    if (m) res.push({ full: s, resource: m[1], short: m[2] });
    else res.push({ full: s, resource: GRAPH, short: s });
  }
  const resources = [...new Set(res.map((r) => canonicalResource(r.resource)))];
  return {
    raw,
    oidc,
    resourceScopes: res,
    resources,
    /** the resource (audience) as the client spelled it */
    resource: res[0]?.resource ?? null,
    consentKeys: res
      .filter((r) => r.short !== '.default')
      .map((r) => `${canonicalResource(r.resource)}/${r.short}`),
  };
}

/** Short scope names for a delegated token (expands `.default` from consent, or a sensible default). */
export function delegatedShortScopes(state, parsed, consentSet) {
  if (parsed.resourceScopes.length === 0) return ['User.Read'];
  const shorts = [];
  for (const r of parsed.resourceScopes) {
    if (r.short === '.default') {
      const prefix = `${canonicalResource(r.resource)}/`;
      const fromConsent = [...(consentSet || [])]
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length));
      if (fromConsent.length) shorts.push(...fromConsent);
      else if (canonicalResource(r.resource) === 'https://outlook.office.com')
        shorts.push(...OUTLOOK_DEFAULT_SCOPES);
      else shorts.push('User.Read');
    } else shorts.push(r.short);
  }
  return [...new Set(shorts)];
}

/**
 * Mint the Entra token response for a user (authorization_code, refresh_token, device_code).
 * @param {any} ctx {state, signer, baseUrl}
 * @param {{user: any, client: any, parsed: ReturnType<typeof parseEntraScopes>, nonce?: string, clientInfo?: boolean, appidacr?: string, authTime?: number, sid?: string}} p
 */
export function mintEntraUserTokens(ctx, p) {
  const { state, signer, baseUrl } = ctx;
  const { user, client, parsed } = p;
  const tid = state.registry.tenantId;
  const now = nowSec();
  const life = Number(p.lifetime ?? state.config.accessTokenLifetime);
  const consentSet = state.consents.get(`microsoft|${user.upn.toLowerCase()}|${client.clientId}`);
  const shorts = delegatedShortScopes(state, parsed, consentSet);
  const aud = parsed.resource ?? GRAPH;
  const sid = p.sid || randomUUID();
  const [given, ...rest] = String(user.name || '').split(' ');
  const claims = {
    aud,
    iss: `https://sts.windows.net/${tid}/`,
    iat: now,
    nbf: now,
    exp: now + life,
    acr: '1',
    aio: randomToken(24),
    amr: ['pwd'],
    app_displayname: client.name,
    appid: client.clientId,
    appidacr: p.appidacr ?? (client.type === 'public' ? '0' : '1'),
    family_name: rest.join(' ') || undefined,
    given_name: given || undefined,
    idtyp: 'user',
    ipaddr: '127.0.0.1',
    name: user.name,
    oid: user.oid,
    puid:
      user.puid ||
      b64url(sha256(`puid:${user.oid}`))
        .slice(0, 16)
        .toUpperCase(),
    rh: '0.' + randomToken(24),
    scp: shorts.join(' '),
    sid,
    // Exchange's v1 tokens carry a per-application pairwise subject
    sub: b64url(sha256(`${user.oid}|${client.clientId}`)),
    tid,
    unique_name: user.upn,
    upn: user.upn,
    uti: randomToken(16),
    ver: '1.0',
    wids: ['b79fbf4d-3ef9-4689-8143-76b194e85509'],
    // Not in Entra's tokens: Dovecot's local validation reads these (see DESIGN.md)
    email: user.upn,
    scope: shorts.join(' '),
  };
  const body = {
    token_type: 'Bearer',
    scope: responseScope(parsed, shorts),
    expires_in: life,
    ext_expires_in: life,
    access_token: signer.sign(claims),
  };
  count(state, 'issued', 'access_token');
  if (parsed.oidc.includes('offline_access')) {
    body.refresh_token = issueEntraRefreshToken(state, {
      user: user.upn,
      clientId: client.clientId,
      scope: parsed.raw.join(' '),
      sid,
    });
  }
  if (parsed.oidc.includes('openid')) {
    const idClaims = {
      aud: client.clientId,
      iss: `${baseUrl}/${tid}/v2.0`,
      iat: now,
      nbf: now,
      exp: now + Number(state.config.idTokenLifetime),
      name: user.name,
      nonce: p.nonce || undefined,
      oid: user.oid,
      preferred_username: user.upn,
      rh: '0.' + randomToken(24),
      sid,
      sub: b64url(sha256(`idsub|${user.oid}|${client.clientId}`)),
      tid,
      uti: randomToken(16),
      ver: '2.0',
      email: parsed.oidc.includes('email') ? user.upn : undefined,
      auth_time: p.authTime,
    };
    body.id_token = signer.sign(idClaims);
    count(state, 'issued', 'id_token');
  }
  if (p.clientInfo) body.client_info = b64urlJson({ uid: user.oid, utid: tid });
  return body;
}

/** The `scope` field of a success response: what was asked for, minus offline_access. */
function responseScope(parsed, shorts) {
  const parts = [];
  if (parsed.resourceScopes.length === 0) parts.push(`${GRAPH}/User.Read`);
  for (const r of parsed.resourceScopes) {
    if (r.short === '.default') parts.push(...shorts.map((s) => `${r.resource}/${s}`));
    else parts.push(r.full);
  }
  for (const o of parsed.oidc) if (o !== 'offline_access') parts.push(o);
  return [...new Set(parts)].join(' ');
}

export function issueEntraRefreshToken(state, { user, clientId, scope, sid }) {
  const token = `1.A${randomToken(48)}`;
  state.refreshTokens.set(token, {
    user,
    clientId,
    scope,
    sid,
    issuedAt: idpNow(state),
    usedAt: null,
    revoked: false,
  });
  count(state, 'issued', 'refresh_token');
  return token;
}

/**
 * App-only (client_credentials) token for Exchange: roles, no scp; `email` simulates
 * Add-MailboxPermission so Dovecot accepts it for that one mailbox.
 */
export function mintEntraAppToken(ctx, { client, resource, lifetime, appidacr }) {
  const { state, signer } = ctx;
  const tid = state.registry.tenantId;
  const now = nowSec();
  const life = Number(lifetime ?? state.config.accessTokenLifetime);
  // An app's application permissions are per resource: Exchange's (appRoles: SMTP.SendAsApp,
  // IMAP.AccessAsApp) for outlook.office.com, Microsoft Graph's (graphAppRoles: Mail.Send,
  // Mail.ReadWrite, ...) for graph.microsoft.com.
  const roles =
    canonicalResource(resource) === 'https://outlook.office.com'
      ? client.appRoles || []
      : canonicalResource(resource) === GRAPH
        ? client.graphAppRoles || []
        : [];
  const claims = {
    aud: resource,
    iss: `https://sts.windows.net/${tid}/`,
    iat: now,
    nbf: now,
    exp: now + life,
    aio: randomToken(24),
    app_displayname: client.name,
    appid: client.clientId,
    appidacr: appidacr ?? '1',
    idp: `https://sts.windows.net/${tid}/`,
    idtyp: 'app',
    oid: client.servicePrincipalId,
    rh: '0.' + randomToken(24),
    roles: roles.length ? roles : undefined,
    sub: client.servicePrincipalId,
    tid,
    uti: randomToken(16),
    ver: '1.0',
    // Not in Entra's tokens: for Dovecot's local validation (username_attribute = email, scope claim)
    email: client.mailboxPermission || undefined,
    scope: roles.length ? roles.join(' ') : undefined,
  };
  count(state, 'issued', 'access_token');
  return {
    token_type: 'Bearer',
    expires_in: life,
    ext_expires_in: life,
    access_token: signer.sign(claims),
  };
}

/** Google access token: a JWT here (Dovecot validates locally); clients must treat it as opaque. */
export function mintGoogleAccessToken(ctx, { sub, email, clientId, scope, lifetime, accessType }) {
  const { state, signer } = ctx;
  const now = nowSec();
  const life = Number(lifetime ?? state.config.accessTokenLifetime);
  const claims = {
    iss: 'https://accounts.google.com',
    aud: clientId,
    sub,
    email,
    email_verified: true,
    scope,
    iat: now,
    exp: now + life,
    jti: randomToken(16),
    access_type: accessType || 'online',
  };
  count(state, 'issued', 'access_token');
  return { access_token: signer.sign(claims), expires_in: life };
}

export function mintGoogleIdToken(ctx, { user, clientId, nonce }) {
  const { state, signer } = ctx;
  const now = nowSec();
  count(state, 'issued', 'id_token');
  return signer.sign({
    iss: 'https://accounts.google.com',
    azp: clientId,
    aud: clientId,
    sub: user.sub,
    email: user.email,
    email_verified: true,
    name: user.name,
    nonce: nonce || undefined,
    iat: now,
    exp: now + Number(state.config.idTokenLifetime),
  });
}

function count(state, endpoint, sub) {
  const obj = (state.stats[endpoint] ||= {});
  obj[sub] = (obj[sub] || 0) + 1;
}

// Google OAuth 2.0 endpoints: /o/oauth2/v2/auth, /token, /revoke, /tokeninfo, discovery, certs.
import { decodeJwt, verifyJwtSignature, pkceS256, randomToken } from './jwt.mjs';
import { readForm, sendJson, sendHtml, redirect, basicAuth, withParams } from './http.mjs';
import { errorPage, formPostPage } from './pages.mjs';
import { findGoogleClient, findGoogleUser, redirectUriAllowed, count, idpNow } from './state.mjs';
import { startTxn, sessionUser, needsConsent } from './flow.mjs';
import { googleError, mintGoogleAccessToken, mintGoogleIdToken } from './tokens.mjs';

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export async function handleGoogle(ctx, req, res, url) {
  const p = url.pathname.replace(/\/+$/, '') || '/';
  switch (p) {
    case '/o/oauth2/v2/auth':
    case '/o/oauth2/auth':
      await authorize(ctx, req, res, url);
      return true;
    case '/token':
    case '/o/oauth2/token':
      await token(ctx, req, res);
      return true;
    case '/revoke':
    case '/o/oauth2/revoke':
      await revoke(ctx, req, res, url);
      return true;
    case '/tokeninfo':
    case '/oauth2/v3/tokeninfo':
      await tokeninfo(ctx, req, res, url);
      return true;
    case '/.well-known/openid-configuration':
      if (await ctx.guard(res, 'google.discovery')) return true;
      sendJson(res, 200, discovery(ctx));
      return true;
    case '/oauth2/v3/certs':
      if (await ctx.guard(res, 'google.certs')) return true;
      sendJson(res, 200, { keys: [ctx.signer.jwk()] });
      return true;
  }
  return false;
}

function discovery(ctx) {
  const b = ctx.baseUrl;
  return {
    issuer: 'https://accounts.google.com',
    authorization_endpoint: `${b}/o/oauth2/v2/auth`,
    token_endpoint: `${b}/token`,
    revocation_endpoint: `${b}/revoke`,
    jwks_uri: `${b}/oauth2/v3/certs`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'profile'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    claims_supported: ['aud', 'email', 'email_verified', 'exp', 'iat', 'iss', 'name', 'sub'],
    code_challenge_methods_supported: ['plain', 'S256'],
    grant_types_supported: ['authorization_code', 'refresh_token', JWT_BEARER],
  };
}

function googleErrorPage(res, status, error, message) {
  sendHtml(
    res,
    status,
    errorPage({
      provider: 'google',
      title: 'Access blocked: authorization error',
      error,
      message: `Error ${status}: ${error}\n${message}`,
    }),
  );
}

function respondToClient(res, redirectUri, mode, params) {
  if (mode === 'form_post') sendHtml(res, 200, formPostPage(redirectUri, params));
  else redirect(res, withParams(redirectUri, params, mode === 'fragment' ? 'fragment' : 'query'));
}

async function authorize(ctx, req, res, url) {
  const { state } = ctx;
  if (await ctx.guard(res, 'google.authorize')) return;
  const q = Object.fromEntries(url.searchParams);
  const client = q.client_id ? findGoogleClient(state, q.client_id) : undefined;
  if (!client) return googleErrorPage(res, 401, 'invalid_client', 'The OAuth client was not found.');
  if (!redirectUriAllowed(client, q.redirect_uri)) {
    return googleErrorPage(
      res,
      400,
      'redirect_uri_mismatch',
      `You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.\nRequest details: redirect_uri=${q.redirect_uri ?? ''}`,
    );
  }
  const mode = q.response_mode || 'query';
  const fail = (error, extra = {}) =>
    respondToClient(res, q.redirect_uri, mode, { error, ...extra, state: q.state });
  if (q.response_type !== 'code')
    return googleErrorPage(
      res,
      400,
      'unsupported_response_type',
      `Invalid response_type: ${q.response_type ?? ''}`,
    );
  if (!q.scope) return googleErrorPage(res, 400, 'invalid_request', 'Missing required parameter: scope');
  if (q.code_challenge_method && !['S256', 'plain'].includes(q.code_challenge_method)) {
    return googleErrorPage(res, 400, 'invalid_request', 'Invalid code_challenge_method value.');
  }
  const scopes = q.scope.split(/\s+/).filter(Boolean);
  const prompt = String(q.prompt || '')
    .split(/\s+/)
    .filter(Boolean);
  const offline = q.access_type === 'offline';
  const txn = {
    provider: 'google',
    clientId: client.clientId,
    clientName: client.name || client.clientId,
    displayScopes: scopes,
    consentKeys: scopes,
    forceLogin: prompt.includes('select_account') || prompt.includes('login'),
    forceConsent: prompt.includes('consent'),
    loginHint: q.login_hint,
    user: undefined,
    complete: (resp, t) => {
      const code = `4/0A${randomToken(48)}`;
      const pairKey = `${t.user.email.toLowerCase()}|${client.clientId}`;
      // Google: a refresh token on the first offline grant, and again only with prompt=consent.
      const issueRefresh =
        offline && (prompt.includes('consent') || !state.googleOfflineGranted.has(pairKey));
      state.codes.set(code, {
        provider: 'google',
        clientId: client.clientId,
        redirectUri: q.redirect_uri,
        scope: scopes.join(' '),
        nonce: q.nonce,
        codeChallenge: q.code_challenge,
        codeChallengeMethod: q.code_challenge_method || (q.code_challenge ? 'plain' : undefined),
        user: t.user.email,
        issueRefresh,
        accessType: offline ? 'offline' : 'online',
        expiresAt: idpNow(state) + Number(state.config.authCodeLifetime) * 1000,
        redeemed: false,
      });
      count(state, 'issued', 'code');
      respondToClient(resp, q.redirect_uri, mode, {
        state: q.state,
        code,
        scope: scopes.join(' '),
        authuser: '0',
        prompt: prompt.includes('consent') ? 'consent' : 'none',
      });
    },
    deny: (resp) => respondToClient(resp, q.redirect_uri, mode, { error: 'access_denied', state: q.state }),
  };
  if (prompt.includes('none')) {
    const s = sessionUser(state, req, 'google');
    if (!s) return fail('login_required');
    txn.user = s.user;
    if (needsConsent(ctx, txn)) return fail('consent_required');
  }
  startTxn(ctx, req, res, txn);
}

function authenticateClient(ctx, req, form) {
  const basic = basicAuth(req);
  const clientId = form.client_id || basic?.clientId;
  if (!clientId) throw googleError(400, 'invalid_request', 'Could not determine client ID from request.');
  const client = findGoogleClient(ctx.state, clientId);
  if (!client) throw googleError(401, 'invalid_client', 'The OAuth client was not found.');
  const secret = form.client_secret ?? (basic?.clientId === clientId ? basic.secret : undefined);
  if (secret === undefined || secret === '')
    throw googleError(400, 'invalid_request', 'client_secret is missing.');
  if (secret !== client.secret) throw googleError(401, 'invalid_client', 'Unauthorized');
  return client;
}

async function token(ctx, req, res) {
  const { state } = ctx;
  const form = await readForm(req);
  const grant = form.grant_type;
  req.grantType = grant;
  count(state, 'google.token', grant || '(none)');
  const release = ctx.enter('google.token');
  try {
    if (await ctx.guard(res, 'google.token', grant, { counted: true })) return;
    sendJson(res, 200, tokenGrant(ctx, req, form, grant));
  } finally {
    release();
  }
}

function tokenGrant(ctx, req, form, grant) {
  const { state } = ctx;
  if (!grant) throw googleError(400, 'unsupported_grant_type', 'Invalid grant_type: ');
  if (grant === JWT_BEARER) return serviceAccountGrant(ctx, form);
  if (grant !== 'authorization_code' && grant !== 'refresh_token') {
    throw googleError(400, 'unsupported_grant_type', `Invalid grant_type: ${grant}`);
  }
  const client = authenticateClient(ctx, req, form);
  if (grant === 'authorization_code') {
    if (!form.code) throw googleError(400, 'invalid_request', 'Missing required parameter: code');
    const rec = state.codes.get(form.code);
    if (!rec || rec.provider !== 'google') throw googleError(400, 'invalid_grant', 'Malformed auth code.');
    if (rec.redeemed || idpNow(state) > rec.expiresAt) throw googleError(400, 'invalid_grant', 'Bad Request');
    if (rec.clientId !== client.clientId) throw googleError(400, 'invalid_grant', 'Bad Request');
    if (rec.redirectUri !== form.redirect_uri) throw googleError(400, 'redirect_uri_mismatch', 'Bad Request');
    if (rec.codeChallenge) {
      if (!form.code_verifier) throw googleError(400, 'invalid_grant', 'Missing code verifier.');
      const computed = rec.codeChallengeMethod === 'S256' ? pkceS256(form.code_verifier) : form.code_verifier;
      if (computed !== rec.codeChallenge) throw googleError(400, 'invalid_grant', 'Invalid code verifier.');
    }
    rec.redeemed = true;
    const user = findGoogleUser(state, rec.user);
    const at = mintGoogleAccessToken(ctx, {
      sub: user.sub,
      email: user.email,
      clientId: client.clientId,
      scope: rec.scope,
      accessType: rec.accessType,
    });
    const body = {
      access_token: at.access_token,
      expires_in: at.expires_in,
      scope: rec.scope,
      token_type: 'Bearer',
    };
    if (rec.issueRefresh) {
      body.refresh_token = issueGoogleRefreshToken(state, {
        user: user.email,
        clientId: client.clientId,
        scope: rec.scope,
      });
      state.googleOfflineGranted.add(`${user.email.toLowerCase()}|${client.clientId}`);
    }
    if (rec.scope.split(' ').includes('openid')) {
      body.id_token = mintGoogleIdToken(ctx, { user, clientId: client.clientId, nonce: rec.nonce });
    }
    return body;
  }
  // refresh_token
  if (!form.refresh_token)
    throw googleError(400, 'invalid_request', 'Missing required parameter: refresh_token');
  const rec = state.googleRefreshTokens.get(form.refresh_token);
  if (!rec || rec.revoked || rec.clientId !== client.clientId) {
    throw googleError(400, 'invalid_grant', 'Token has been expired or revoked.');
  }
  const idle = state.config.refreshTokenIdleTimeout;
  if (idle !== null && idle !== undefined && idpNow(state) - rec.lastUsedAt > Number(idle) * 1000) {
    throw googleError(400, 'invalid_grant', 'Token has been expired or revoked.');
  }
  let scope = rec.scope;
  if (form.scope) {
    const granted = new Set(rec.scope.split(' '));
    const asked = form.scope.split(/\s+/).filter(Boolean);
    if (!asked.every((s) => granted.has(s))) throw googleError(400, 'invalid_scope', 'Bad Request');
    scope = asked.join(' ');
  }
  rec.lastUsedAt = idpNow(state);
  const user = findGoogleUser(state, rec.user);
  const at = mintGoogleAccessToken(ctx, {
    sub: user.sub,
    email: user.email,
    clientId: client.clientId,
    scope,
    accessType: 'offline',
  });
  const body = { access_token: at.access_token, expires_in: at.expires_in, scope, token_type: 'Bearer' };
  if (state.config.rotateGoogleRefreshTokens) {
    rec.revoked = true;
    body.refresh_token = issueGoogleRefreshToken(state, {
      user: rec.user,
      clientId: rec.clientId,
      scope: rec.scope,
    });
  }
  if (scope.split(' ').includes('openid'))
    body.id_token = mintGoogleIdToken(ctx, { user, clientId: client.clientId });
  return body;
}

export function issueGoogleRefreshToken(state, { user, clientId, scope }) {
  const t = `1//0${randomToken(72)}`;
  state.googleRefreshTokens.set(t, {
    user,
    clientId,
    scope,
    issuedAt: idpNow(state),
    lastUsedAt: idpNow(state),
    revoked: false,
  });
  const obj = (state.stats.issued ||= {});
  obj.google_refresh_token = (obj.google_refresh_token || 0) + 1;
  return t;
}

/** RFC 7523 JWT bearer grant for service accounts (with optional domain-wide delegation via `sub`). */
function serviceAccountGrant(ctx, form) {
  const { state } = ctx;
  if (!form.assertion) throw googleError(400, 'invalid_request', 'Missing required parameter: assertion');
  const parsed = decodeJwt(form.assertion);
  if (!parsed) throw googleError(400, 'invalid_grant', 'Invalid JWT: Malformed.');
  const c = parsed.payload;
  const sa = state.registry.google.serviceAccounts.find((s) => s.clientEmail === c.iss);
  if (!sa) throw googleError(400, 'invalid_grant', 'Invalid grant: account not found');
  if (parsed.header.alg !== 'RS256' || !verifyJwtSignature(parsed, sa.publicKey)) {
    throw googleError(400, 'invalid_grant', 'Invalid JWT Signature.');
  }
  const now = Math.floor(Date.now() / 1000);
  if (
    typeof c.iat !== 'number' ||
    typeof c.exp !== 'number' ||
    c.exp < now ||
    c.iat > now + 300 ||
    c.exp - c.iat > 3600
  ) {
    throw googleError(
      400,
      'invalid_grant',
      'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
    );
  }
  const auds = [GOOGLE_TOKEN_URL, `${ctx.baseUrl}/token`, 'https://accounts.google.com/o/oauth2/token'];
  if (!auds.includes(c.aud)) throw googleError(400, 'invalid_grant', 'Invalid JWT: Failed audience check.');
  const scope = String(c.scope || '');
  if (!scope) throw googleError(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  let email = sa.clientEmail;
  let sub = sa.uniqueId;
  if (c.sub && c.sub !== sa.clientEmail) {
    if (!sa.domainWideDelegation) {
      throw googleError(
        401,
        'unauthorized_client',
        'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
      );
    }
    const user = findGoogleUser(state, c.sub);
    const allowed =
      !sa.allowedSubjects ||
      sa.allowedSubjects.map((s) => s.toLowerCase()).includes(String(c.sub).toLowerCase());
    if (!user || !allowed) throw googleError(400, 'invalid_grant', 'Invalid email or User ID');
    if (sa.allowedScopes && !scope.split(' ').every((s) => sa.allowedScopes.includes(s))) {
      throw googleError(
        401,
        'unauthorized_client',
        'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
      );
    }
    email = user.email;
    sub = user.sub;
  }
  const at = mintGoogleAccessToken(ctx, { sub, email, clientId: sa.uniqueId, scope });
  return { access_token: at.access_token, expires_in: at.expires_in, token_type: 'Bearer' };
}

async function revoke(ctx, req, res, url) {
  const { state } = ctx;
  const form = req.method === 'POST' ? await readForm(req) : {};
  if (await ctx.guard(res, 'google.revoke')) return;
  const tok = form.token || url.searchParams.get('token');
  if (!tok) throw googleError(400, 'invalid_request', 'Bad Request');
  const rt = state.googleRefreshTokens.get(tok);
  if (rt) {
    rt.revoked = true;
    return sendJson(res, 200, {});
  }
  const claims = ctx.signer.verifyOwn(tok);
  if (
    claims &&
    claims.iss === 'https://accounts.google.com' &&
    claims.exp > Date.now() / 1000 &&
    !state.revokedAccessTokens.has(claims.jti)
  ) {
    state.revokedAccessTokens.add(claims.jti);
    return sendJson(res, 200, {});
  }
  throw googleError(400, 'invalid_token', 'Token expired or revoked');
}

async function tokeninfo(ctx, req, res, url) {
  const { state } = ctx;
  const form = req.method === 'POST' ? await readForm(req) : {};
  if (await ctx.guard(res, 'google.tokeninfo')) return;
  // google-auth-library's getTokenInfo() POSTs with the token in an Authorization: Bearer header
  const bearer = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization || ''))?.[1];
  const tok = form.access_token || url.searchParams.get('access_token') || bearer;
  const claims = tok ? ctx.signer.verifyOwn(tok) : null;
  const now = Math.floor(Date.now() / 1000);
  if (
    !claims ||
    claims.iss !== 'https://accounts.google.com' ||
    claims.exp <= now ||
    state.revokedAccessTokens.has(claims.jti)
  ) {
    throw googleError(400, 'invalid_token', 'Invalid Value');
  }
  sendJson(res, 200, {
    azp: claims.aud,
    aud: claims.aud,
    sub: claims.sub,
    scope: claims.scope,
    exp: String(claims.exp),
    expires_in: String(claims.exp - now),
    email: claims.email,
    email_verified: 'true',
    access_type: claims.access_type || 'online',
  });
}

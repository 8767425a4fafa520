// A standards-based OAuth 2.0 authorization server ("custom provider" shape) under /custom:
//   GET  /.well-known/oauth-authorization-server/custom   RFC 8414 metadata (issuer BASE/custom)
//   GET  /custom/.well-known/openid-configuration          the same document
//   GET  /custom/authorize                                 auth code + PKCE S256 (required), query response
//   POST /custom/token                                     authorization_code, refresh_token (rotating), device_code
//   POST /custom/device_authorization                      RFC 8628 (approve with POST /_admin/device)
//   POST /custom/revoke                                    RFC 7009 (refresh tokens; client authentication)
// Users and clients are Google's fixtures (carol, the Google client and its secret); the client
// authenticates with client_secret_basic or client_secret_post. Stats: `custom.token` by grant,
// and `custom.auth` by method (basic|post).
// Departure: the access tokens' `iss` is the fixed CUSTOM_TOKEN_ISSUER, not BASE/custom, because
// Dovecot's issuer list is written before this server picks its port.
import { pkceS256, randomToken } from './jwt.mjs';
import { readForm, sendJson, redirect, withParams, basicAuth } from './http.mjs';
import {
  findGoogleClient,
  findGoogleUser,
  redirectUriAllowed,
  count,
  pendingRefresh,
  answered,
  idpNow,
} from './state.mjs';
import { startTxn } from './flow.mjs';
import { OAuthError } from './tokens.mjs';
import { normalizeUserCode } from './entra.mjs';

export const CUSTOM_TOKEN_ISSUER = 'https://custom-idp.oauthmail.test';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const err = (status, error, description) => new OAuthError(status, { error, error_description: description });

function metadata(ctx) {
  const b = `${ctx.baseUrl}/custom`;
  return {
    issuer: b,
    authorization_endpoint: `${b}/authorize`,
    token_endpoint: `${b}/token`,
    device_authorization_endpoint: `${b}/device_authorization`,
    revocation_endpoint: `${b}/revoke`,
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code', 'refresh_token', DEVICE_GRANT],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['mail', 'offline_access'],
  };
}

function custom(state) {
  return (state.custom ||= { refreshTokens: new Map() });
}

export async function handleCustom(ctx, req, res, url) {
  const p = url.pathname.replace(/\/+$/, '');
  if (
    p === '/.well-known/oauth-authorization-server/custom' ||
    p === '/custom/.well-known/openid-configuration'
  ) {
    if (await ctx.guard(res, 'custom.discovery')) return true;
    sendJson(res, 200, metadata(ctx));
    return true;
  }
  if (p === '/custom/authorize') {
    if (await ctx.guard(res, 'custom.authorize')) return true;
    authorize(ctx, req, res, url);
    return true;
  }
  if (p === '/custom/token' && req.method === 'POST') {
    const form = await readForm(req);
    req.grantType = form.grant_type;
    count(ctx.state, 'custom.token', form.grant_type || '(none)');
    const unpend = pendingRefresh(
      ctx.state,
      form.grant_type === 'refresh_token' ? form.refresh_token : undefined,
    );
    try {
      if (await ctx.guard(res, 'custom.token', form.grant_type, { counted: true })) return true;
      sendJson(res, 200, token(ctx, req, form));
      answered(custom(ctx.state).refreshTokens, form);
    } finally {
      unpend();
    }
    return true;
  }
  if (p === '/custom/revoke' && req.method === 'POST') {
    // RFC 7009: the client authenticates; an unknown token is not an error (200 either way)
    const form = await readForm(req);
    count(ctx.state, 'custom.revoke');
    if (await ctx.guard(res, 'custom.revoke', undefined, { counted: true })) return true;
    const client = authenticate(ctx, req, form);
    const rec = form.token && custom(ctx.state).refreshTokens.get(form.token);
    if (rec && rec.clientId === client.clientId) rec.used = true;
    sendJson(res, 200, {});
    return true;
  }
  if (p === '/custom/device_authorization' && req.method === 'POST') {
    const form = await readForm(req);
    if (await ctx.guard(res, 'custom.device')) return true;
    sendJson(res, 200, deviceAuthorization(ctx, req, form));
    return true;
  }
  return false;
}

function authorize(ctx, req, res, url) {
  const { state } = ctx;
  const q = Object.fromEntries(url.searchParams);
  const client = q.client_id ? findGoogleClient(state, q.client_id) : undefined;
  if (!client) return sendJson(res, 400, { error: 'invalid_client', error_description: 'unknown client' });
  if (!redirectUriAllowed(client, q.redirect_uri))
    return sendJson(res, 400, { error: 'invalid_request', error_description: 'redirect_uri not registered' });
  const fail = (error, description) =>
    redirect(res, withParams(q.redirect_uri, { error, error_description: description, state: q.state }));
  if (q.response_type !== 'code') return fail('unsupported_response_type', 'response_type must be code');
  if (!q.code_challenge || q.code_challenge_method !== 'S256')
    return fail('invalid_request', 'PKCE S256 is required');
  const scopes = String(q.scope || '')
    .split(/\s+/)
    .filter(Boolean);
  startTxn(ctx, req, res, {
    provider: 'google',
    clientId: client.clientId,
    clientName: client.name || client.clientId,
    displayScopes: scopes,
    consentKeys: scopes.map((s) => `custom:${s}`),
    forceLogin: String(q.prompt || '').includes('login'),
    forceConsent: String(q.prompt || '').includes('consent'),
    loginHint: q.login_hint,
    user: undefined,
    complete: (resp, t) => {
      const code = randomToken(32);
      state.codes.set(code, {
        provider: 'custom',
        clientId: client.clientId,
        redirectUri: q.redirect_uri,
        scope: scopes.join(' '),
        codeChallenge: q.code_challenge,
        user: t.user.email,
        extra: Object.fromEntries(
          Object.entries(q).filter(
            ([k]) =>
              ![
                'client_id',
                'redirect_uri',
                'state',
                'scope',
                'response_type',
                'code_challenge',
                'code_challenge_method',
              ].includes(k),
          ),
        ),
        expiresAt: idpNow(state) + Number(state.config.authCodeLifetime) * 1000,
        redeemed: false,
      });
      redirect(resp, withParams(q.redirect_uri, { code, state: q.state, iss: `${ctx.baseUrl}/custom` }));
    },
    deny: (resp) => redirect(resp, withParams(q.redirect_uri, { error: 'access_denied', state: q.state })),
  });
}

/** RFC 6749 §2.3.1: client_secret_basic or client_secret_post (not both). */
function authenticate(ctx, req, form) {
  const basic = basicAuth(req);
  if (basic && form.client_secret)
    throw err(400, 'invalid_request', 'more than one client authentication method');
  const clientId = basic?.clientId ?? form.client_id;
  const client = clientId ? findGoogleClient(ctx.state, clientId) : undefined;
  const secret = basic ? basic.secret : form.client_secret;
  if (!client || secret !== client.secret) throw err(401, 'invalid_client', 'client authentication failed');
  count(ctx.state, 'custom.auth', basic ? 'basic' : 'post');
  return client;
}

/** Tokens for the custom provider (also minted by POST /_admin/mint with provider custom). */
export function mintCustomTokens(ctx, { user, clientId, scope }) {
  const now = Math.floor(Date.now() / 1000);
  const life = Number(ctx.state.config.accessTokenLifetime);
  const u = findGoogleUser(ctx.state, user);
  const at = ctx.signer.sign({
    iss: CUSTOM_TOKEN_ISSUER,
    sub: u.sub,
    email: u.email,
    aud: clientId,
    client_id: clientId,
    scope,
    iat: now,
    exp: now + life,
    jti: randomToken(16),
  });
  count(ctx.state, 'issued', 'custom_access_token');
  const rt = `crt_${randomToken(40)}`;
  custom(ctx.state).refreshTokens.set(rt, { user, clientId, scope, used: false });
  return { access_token: at, token_type: 'Bearer', expires_in: life, scope, refresh_token: rt };
}

function token(ctx, req, form) {
  const { state } = ctx;
  const client = authenticate(ctx, req, form);
  switch (form.grant_type) {
    case 'authorization_code': {
      const rec = form.code && state.codes.get(form.code);
      if (
        !rec ||
        rec.provider !== 'custom' ||
        rec.redeemed ||
        idpNow(state) > rec.expiresAt ||
        rec.clientId !== client.clientId
      )
        throw err(400, 'invalid_grant', 'invalid authorization code');
      if (rec.redirectUri !== form.redirect_uri) throw err(400, 'invalid_grant', 'redirect_uri mismatch');
      if (!form.code_verifier || pkceS256(form.code_verifier) !== rec.codeChallenge)
        throw err(400, 'invalid_grant', 'PKCE verification failed');
      rec.redeemed = true;
      // OpenID Connect Core 1.0 §11: offline_access is ignored unless the request had
      // prompt=consent; without it, no refresh token (and the scope is not granted)
      const scopes = String(rec.scope || '')
        .split(' ')
        .filter(Boolean);
      if (scopes.includes('offline_access') && !/\bconsent\b/.test(String(rec.extra?.prompt ?? ''))) {
        const granted = scopes.filter((x) => x !== 'offline_access').join(' ');
        const { refresh_token: _dropped, ...rest } = mintCustomTokens(ctx, { ...rec, scope: granted });
        return rest;
      }
      return mintCustomTokens(ctx, rec);
    }
    case 'refresh_token': {
      const map = custom(state).refreshTokens;
      const rec = form.refresh_token && map.get(form.refresh_token);
      if (!rec || rec.used || rec.clientId !== client.clientId)
        throw err(400, 'invalid_grant', 'refresh token is invalid, expired or revoked');
      rec.used = true; // rotation: each refresh token is good once
      rec.usedAt = Date.now();
      return mintCustomTokens(ctx, rec);
    }
    case DEVICE_GRANT: {
      const rec = form.device_code && state.deviceCodes.get(form.device_code);
      if (!rec || rec.provider !== 'custom' || rec.clientId !== client.clientId)
        throw err(400, 'invalid_grant', 'unknown device_code');
      const now = idpNow(state);
      const last = rec.lastPollAt;
      rec.lastPollAt = now;
      if (rec.redeemed) throw err(400, 'invalid_grant', 'device code already used');
      if (rec.status === 'expired' || now > rec.expiresAt)
        throw err(400, 'expired_token', 'the device code expired');
      if (rec.status === 'denied') throw err(400, 'access_denied', 'the user declined');
      if (rec.status === 'pending') {
        if (state.config.enforceSlowDown && last && now - last < rec.interval * 1000 - 250) {
          rec.interval += 5;
          throw err(400, 'slow_down', 'polling too fast');
        }
        throw err(400, 'authorization_pending', 'waiting for the user');
      }
      rec.redeemed = true;
      return mintCustomTokens(ctx, { user: rec.user, clientId: client.clientId, scope: rec.scope });
    }
    default:
      throw err(400, 'unsupported_grant_type', `grant_type ${form.grant_type ?? ''} is not supported`);
  }
}

function deviceAuthorization(ctx, req, form) {
  const { state } = ctx;
  const client = authenticate(ctx, req, form);
  const part = () =>
    randomToken(4)
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, 'X')
      .slice(0, 4);
  const userCode = `${part()}-${part()}`;
  const deviceCode = randomToken(40);
  const interval = Number(state.config.deviceCodeInterval);
  const expiresIn = Number(state.config.deviceCodeLifetime);
  state.deviceCodes.set(deviceCode, {
    provider: 'custom',
    deviceCode,
    userCode,
    clientId: client.clientId,
    clientName: client.name,
    scope: form.scope || '',
    interval,
    createdAt: idpNow(state),
    expiresAt: idpNow(state) + expiresIn * 1000,
    status: 'pending',
    user: null,
    lastPollAt: null,
    redeemed: false,
  });
  state.userCodes.set(normalizeUserCode(userCode), deviceCode);
  return {
    device_code: deviceCode,
    user_code: userCode,
    verification_uri: `${ctx.baseUrl}/custom/device`,
    expires_in: expiresIn,
    interval,
  };
}

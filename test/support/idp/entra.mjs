// Microsoft Entra ID v2.0 endpoints: discovery, authorize, token, devicecode, keys, devicelogin.
import { randomBytes } from 'node:crypto';
import { decodeJwt, verifyJwtSignature, pkceS256, randomToken, randomUUID } from './jwt.mjs';
import { readForm, sendJson, sendHtml, redirect, basicAuth, withParams } from './http.mjs';
import { errorPage, formPostPage, deviceCodePage, deviceDonePage } from './pages.mjs';
import {
  findClient,
  findUser,
  redirectUriAllowed,
  hasConsent,
  grantConsent,
  count,
  pendingRefresh,
  answered,
  idpNow,
} from './state.mjs';
import { startTxn, sessionUser, needsConsent } from './flow.mjs';
import {
  entraError,
  entraErrorBody,
  parseEntraScopes,
  mintEntraUserTokens,
  mintEntraAppToken,
  OAuthError,
  GRAPH,
} from './tokens.mjs';
import { ENTRA_MESSAGES, ENTRA_SUBERROR_FOR_CODE } from './errors.mjs';

const RESERVED_TENANTS = new Set(['common', 'organizations', 'consumers']);
const APP_ONLY_RESOURCES = new Set(['https://outlook.office365.com', 'https://outlook.office.com', GRAPH]);
const DEVICE_GRANTS = new Set(['device_code', 'urn:ietf:params:oauth:grant-type:device_code']);

/** Resolve the {tenant} path segment. @returns {{seg: string, tid: string, reserved: boolean} | null} */
export function resolveTenant(state, seg) {
  if (!seg) return null;
  const l = seg.toLowerCase();
  const { tenantId, tenantDomain } = state.registry;
  if (RESERVED_TENANTS.has(l)) return { seg: l, tid: tenantId, reserved: true };
  if (l === tenantId.toLowerCase() || l === tenantDomain.toLowerCase())
    return { seg, tid: tenantId, reserved: false };
  return null;
}

function tenantNotFound(seg) {
  return entraError(
    400,
    'invalid_tenant',
    90002,
    `Tenant '${seg}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
  );
}

/** OpenID Provider metadata as Entra serves it (the fields MSAL's Authority reads, plus the usual rest). */
export function openIdConfiguration(ctx, tenant) {
  const base = ctx.baseUrl;
  const t = tenant.reserved ? tenant.seg : tenant.tid;
  const issuerTenant = tenant.reserved ? '{tenantid}' : tenant.tid;
  return {
    token_endpoint: `${base}/${t}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/${t}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${base}/${issuerTenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${base}/${t}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/${t}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/${t}/oauth2/v2.0/logout`,
    claims_supported: [
      'sub',
      'iss',
      'cloud_instance_name',
      'cloud_instance_host_name',
      'cloud_graph_host_name',
      'msgraph_host',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'acr',
      'nonce',
      'preferred_username',
      'name',
      'tid',
      'ver',
      'at_hash',
      'c_hash',
      'email',
    ],
    kerberos_endpoint: `${base}/${t}/kerberos`,
    tenant_region_scope: 'NA',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

/** Instance discovery (what login.microsoftonline.com/common/discovery/instance answers). */
export function instanceDiscovery(ctx) {
  const host = new URL(ctx.baseUrl).host;
  return {
    tenant_discovery_endpoint: `${ctx.baseUrl}/{tenant}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  };
}

/**
 * Route an Entra request. Returns false if the path is not an Entra path.
 * @param {any} ctx
 */
export async function handleEntra(ctx, req, res, url) {
  const p = url.pathname;
  if (p === '/common/discovery/instance' || p === '/common/discovery/instance/') {
    await ctx.guard(res, 'instance_discovery');
    sendJson(res, 200, instanceDiscovery(ctx));
    return true;
  }
  if (p === '/common/oauth2/nativeclient') {
    // Entra's landing page for native clients: an empty page; the outcome is in the address
    count(ctx.state, 'nativeclient');
    sendHtml(res, 200, '<!doctype html><html><head><title></title></head><body></body></html>');
    return true;
  }
  if (p === '/devicelogin') {
    if (req.method === 'POST') await deviceLoginPost(ctx, req, res);
    else {
      if (await ctx.guard(res, 'devicelogin')) return true;
      sendHtml(res, 200, deviceCodePage({}));
    }
    return true;
  }
  const m =
    /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|\.well-known\/openid-configuration|discovery\/v2\.0\/keys|discovery\/keys|oauth2\/v2\.0\/(authorize|token|devicecode|logout)|v2\.0\/(adminconsent))\/?$/.exec(
      p,
    );
  if (!m) return false;
  const tenant = resolveTenant(ctx.state, decodeURIComponent(m[1]));
  const what = m[3] || m[4] || (m[2].includes('keys') ? 'keys' : 'discovery');
  if (!tenant) {
    if (what === 'authorize' || what === 'adminconsent') {
      count(ctx.state, what);
      const e = tenantNotFound(m[1]);
      sendHtml(
        res,
        400,
        errorPage({
          provider: 'microsoft',
          error: 'invalid_tenant',
          errorCode: 90002,
          message: e.body.error_description.split('\r\n')[0],
        }),
      );
      return true;
    }
    throw tenantNotFound(m[1]);
  }
  switch (what) {
    case 'discovery':
      if (await ctx.guard(res, 'discovery')) return true;
      sendJson(res, 200, openIdConfiguration(ctx, tenant));
      return true;
    case 'keys':
      if (await ctx.guard(res, 'keys')) return true;
      sendJson(res, 200, { keys: [ctx.signer.jwk()] });
      return true;
    case 'authorize':
      await authorize(ctx, req, res, url);
      return true;
    case 'adminconsent':
      await adminConsent(ctx, req, res, url, tenant);
      return true;
    case 'token':
    case 'devicecode':
      if (req.method !== 'POST') {
        throw entraError(
          400,
          'invalid_request',
          900561,
          `The endpoint only accepts POST, OPTIONS requests. Received a ${req.method} request.`,
        );
      }
      if (what === 'devicecode') await deviceCode(ctx, req, res, tenant);
      else await token(ctx, req, res, tenant);
      return true;
    case 'logout': {
      count(ctx.state, 'logout');
      const s = sessionUser(ctx.state, req, 'microsoft');
      if (s) ctx.state.sessions.delete(s.sid);
      const post = url.searchParams.get('post_logout_redirect_uri');
      if (post) redirect(res, post);
      else
        sendHtml(
          res,
          200,
          '<!doctype html><title>Signed out</title><p id="signed-out">You signed out of your account.</p>',
        );
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// admin consent: GET /{tenant}/v2.0/adminconsent?client_id&scope&redirect_uri[&state]
// https://learn.microsoft.com/entra/identity-platform/v2-admin-consent: sign-in, the consent page
// "for your organization", then a redirect to redirect_uri with admin_consent=True, tenant, scope
// and state; declined: error=access_denied (AADSTS65004). The consent holds for every user of the
// tenant. Departure: any user of the tenant may grant it (no admin roles in the fixtures).

async function adminConsent(ctx, req, res, url, tenant) {
  const { state } = ctx;
  if (await ctx.guard(res, 'adminconsent')) return;
  const q = Object.fromEntries(url.searchParams);
  if (!q.client_id) {
    return authorizeErrorPage(
      res,
      900144,
      "The request body must contain the following parameter: 'client_id'.",
    );
  }
  const client = findClient(state, q.client_id);
  if (!client) {
    return authorizeErrorPage(
      res,
      700016,
      `Application with identifier '${q.client_id}' was not found in the directory '${state.registry.tenantDomain}'.`,
      { 'App id': q.client_id },
    );
  }
  const redirectUri = q.redirect_uri ?? client.redirectUris[0];
  if (!redirectUriAllowed(client, redirectUri, ctx.baseUrl)) {
    return authorizeErrorPage(
      res,
      50011,
      `The redirect URI '${redirectUri ?? ''}' specified in the request does not match the redirect URIs configured for the application '${client.clientId}'.`,
      { 'Redirect URI': redirectUri ?? '', 'App id': client.clientId },
    );
  }
  if (!q.scope) {
    return redirectError(
      res,
      redirectUri,
      'query',
      q.state,
      'invalid_request',
      900144,
      "The request body must contain the following parameter: 'scope'.",
    );
  }
  const parsed = parseEntraScopes(q.scope);
  // .default: the permissions configured for the app (here: Exchange's delegated mail scopes)
  const keys = parsed.resourceScopes.flatMap((r) =>
    r.short === '.default'
      ? ['IMAP.AccessAsUser.All', 'POP.AccessAsUser.All', 'SMTP.Send'].map(
          (x) => `https://outlook.office.com/${x}`,
        )
      : [`${r.resource}/${r.short}`],
  );
  startTxn(ctx, req, res, {
    provider: 'microsoft',
    clientId: client.clientId,
    clientName: `${client.name} (for your organization)`,
    displayScopes: parsed.raw,
    consentKeys: keys,
    forceLogin: false,
    forceConsent: true,
    loginHint: undefined,
    user: undefined,
    complete: (resp) => {
      for (const u of state.registry.users) grantConsent(state, 'microsoft', u.upn, client.clientId, keys);
      count(state, 'admin_consent_granted');
      respondToClient(resp, redirectUri, 'query', {
        admin_consent: 'True',
        tenant: tenant.tid,
        scope: q.scope,
        state: q.state,
      });
    },
    deny: (resp) =>
      redirectError(
        resp,
        redirectUri,
        'query',
        q.state,
        'access_denied',
        65004,
        'User declined to consent to access the app.',
        { error_subcode: 'cancel' },
      ),
  });
}

// ---------------------------------------------------------------------------------------------
// authorize

function authorizeErrorPage(res, code, message, details) {
  sendHtml(
    res,
    400,
    errorPage({
      provider: 'microsoft',
      title: 'Sign in',
      error: 'invalid_request',
      errorCode: code,
      message: `AADSTS${code}: ${message}`,
      details,
    }),
  );
}

function redirectError(res, redirectUri, mode, state, error, code, message, extra = {}) {
  const b = entraErrorBody({ error, code, message });
  const params = {
    error,
    error_description: b.error_description,
    error_uri: b.error_uri,
    ...extra,
    state: state ?? undefined,
  };
  respondToClient(res, redirectUri, mode, params);
}

function respondToClient(res, redirectUri, mode, params) {
  if (mode === 'form_post') {
    sendHtml(res, 200, formPostPage(redirectUri, params));
  } else {
    redirect(res, withParams(redirectUri, params, mode === 'fragment' ? 'fragment' : 'query'));
  }
}

async function authorize(ctx, req, res, url) {
  const { state } = ctx;
  if (await ctx.guard(res, 'authorize')) return;
  const q = Object.fromEntries(url.searchParams);
  const client = q.client_id ? findClient(state, q.client_id) : undefined;
  if (!q.client_id) {
    return authorizeErrorPage(
      res,
      900144,
      "The request body must contain the following parameter: 'client_id'.",
    );
  }
  if (!client) {
    return authorizeErrorPage(
      res,
      700016,
      `Application with identifier '${q.client_id}' was not found in the directory '${state.registry.tenantDomain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      { 'Request Id': randomUUID(), 'App id': q.client_id },
    );
  }
  let redirectUri = q.redirect_uri;
  if (!redirectUri && client.redirectUris.length === 1) redirectUri = client.redirectUris[0];
  if (!redirectUriAllowed(client, redirectUri, ctx.baseUrl)) {
    return authorizeErrorPage(
      res,
      50011,
      `The redirect URI '${redirectUri ?? ''}' specified in the request does not match the redirect URIs configured for the application '${client.clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.`,
      { 'Redirect URI': redirectUri ?? '', 'App id': client.clientId },
    );
  }
  const mode = q.response_mode || 'query';
  const st = q.state;
  const fail = (error, code, message, extra) =>
    redirectError(res, redirectUri, mode, st, error, code, message, extra);
  if (q.response_type !== 'code') {
    return fail(
      'unsupported_response_type',
      700054,
      `response_type '${q.response_type ?? ''}' is not enabled for the application.`,
    );
  }
  if (!q.scope) {
    return fail('invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
  }
  if (q.code_challenge_method && !['S256', 'plain'].includes(q.code_challenge_method)) {
    return fail('invalid_request', 50148, `Unsupported code_challenge_method '${q.code_challenge_method}'.`);
  }
  if (
    client.type === 'public' &&
    state.config.requirePkceForPublicClients &&
    (!q.code_challenge || (q.code_challenge_method || 'plain') !== 'S256')
  ) {
    return fail(
      'invalid_request',
      9002325,
      'Proof Key for Code Exchange (S256) is required for this public client: send code_challenge and code_challenge_method=S256.',
    );
  }
  const parsed = parseEntraScopes(q.scope);
  const prompt = String(q.prompt || '')
    .split(/\s+/)
    .filter(Boolean);
  const txn = {
    provider: 'microsoft',
    clientId: client.clientId,
    clientName: client.name,
    displayScopes: parsed.raw,
    consentKeys: parsed.consentKeys,
    forceLogin: prompt.includes('login') || prompt.includes('select_account'),
    forceConsent: prompt.includes('consent'),
    loginHint: q.login_hint,
    user: undefined,
    complete: (resp, t) => {
      const code = `1.A${randomToken(64)}`;
      state.codes.set(code, {
        clientId: client.clientId,
        redirectUri: q.redirect_uri ?? redirectUri,
        scope: q.scope,
        nonce: q.nonce,
        codeChallenge: q.code_challenge,
        codeChallengeMethod: q.code_challenge_method || (q.code_challenge ? 'plain' : undefined),
        user: t.user.upn,
        authTime: t.authTime,
        expiresAt: idpNow(state) + Number(state.config.authCodeLifetime) * 1000,
        redeemed: false,
      });
      count(state, 'issued', 'code');
      respondToClient(resp, redirectUri, mode, {
        code,
        client_info:
          q.client_info === '1'
            ? Buffer.from(JSON.stringify({ uid: t.user.oid, utid: state.registry.tenantId })).toString(
                'base64url',
              )
            : undefined,
        state: st,
        session_state: randomUUID(),
      });
    },
    deny: (resp) =>
      redirectError(
        resp,
        redirectUri,
        mode,
        st,
        'access_denied',
        65004,
        'User declined to consent to access the app.',
        {
          error_subcode: 'cancel',
        },
      ),
  };
  if (prompt.includes('none')) {
    const s = sessionUser(state, req, 'microsoft');
    if (!s) return fail('login_required', 50058, ENTRA_MESSAGES[50058]);
    if (q.login_hint && q.login_hint.toLowerCase() !== s.user.upn.toLowerCase()) {
      return fail('interaction_required', 16000, ENTRA_MESSAGES[16000]);
    }
    txn.user = s.user;
    txn.authTime = s.authTime;
    if (needsConsent(ctx, txn)) {
      return fail(
        'consent_required',
        65001,
        `The user or administrator has not consented to use the application with ID '${client.clientId}' named '${client.name}'. Send an interactive authorization request for this user and resource.`,
      );
    }
  }
  startTxn(ctx, req, res, txn);
}

// ---------------------------------------------------------------------------------------------
// token endpoint

function missing(name) {
  return entraError(
    400,
    'invalid_request',
    900144,
    `The request body must contain the following parameter: '${name}'.`,
  );
}

/** Authenticate the client (RFC 6749 §2.3; private_key_jwt per RFC 7523 §2.2). */
function authenticateClient(ctx, req, form) {
  const { state } = ctx;
  const basic = basicAuth(req);
  const clientId = form.client_id || basic?.clientId;
  if (!clientId) throw missing('client_id');
  const client = findClient(state, clientId);
  if (!client) {
    throw entraError(
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${state.registry.tenantDomain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    );
  }
  const secret = form.client_secret ?? (basic && basic.clientId === clientId ? basic.secret : undefined);
  const assertion = form.client_assertion;
  if (client.type === 'public') {
    if (secret !== undefined || assertion !== undefined) {
      throw entraError(401, 'invalid_client', 700025, ENTRA_MESSAGES[700025]);
    }
    return { client, method: 'none', appidacr: '0' };
  }
  if (assertion !== undefined) {
    verifyClientAssertion(ctx, client, form);
    return { client, method: 'private_key_jwt', appidacr: '2' };
  }
  if (secret === undefined || secret === '') {
    throw entraError(401, 'invalid_client', 7000218, ENTRA_MESSAGES[7000218]);
  }
  if (!client.secret || secret !== client.secret) {
    throw entraError(
      401,
      'invalid_client',
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${client.clientId}'.`,
    );
  }
  return {
    client,
    method: basic && form.client_secret === undefined ? 'client_secret_basic' : 'client_secret_post',
    appidacr: '1',
  };
}

function verifyClientAssertion(ctx, client, form) {
  if (form.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    throw entraError(
      400,
      'invalid_request',
      900144,
      "The request body must contain the following parameter: 'client_assertion_type'.",
    );
  }
  const parsed = decodeJwt(form.client_assertion);
  if (!parsed) throw entraError(401, 'invalid_client', 50027, 'JWT token is invalid or malformed.');
  const h = parsed.header;
  const x5t = h.x5t;
  const x5tS256 = h['x5t#S256'];
  const candidates = client.certificates.filter(
    (c) => (!c.x5t && !c.x5tS256) || (x5t && c.x5t === x5t) || (x5tS256 && c.x5tS256 === x5tS256),
  );
  if (candidates.length === 0) {
    throw entraError(
      401,
      'invalid_client',
      700027,
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${x5tS256 || x5t || ''}'.]`,
    );
  }
  if (!candidates.some((c) => verifyJwtSignature(parsed, c.publicKey))) {
    throw entraError(401, 'invalid_client', 700027, 'Client assertion failed signature validation.');
  }
  const c = parsed.payload;
  if (c.iss !== client.clientId || c.sub !== client.clientId) {
    throw entraError(
      401,
      'invalid_client',
      700021,
      "Client assertion application identifier doesn't match 'client_id' parameter.",
    );
  }
  const now = Math.floor(Date.now() / 1000);
  if (typeof c.exp !== 'number' || c.exp < now - 300 || (typeof c.nbf === 'number' && c.nbf > now + 300)) {
    throw entraError(
      401,
      'invalid_client',
      700024,
      `Client assertion is not within its valid time range. Current time: ${new Date().toISOString()}, expiry time of assertion ${typeof c.exp === 'number' ? new Date(c.exp * 1000).toISOString() : 'missing'}.`,
    );
  }
  // aud must be this authority's token endpoint (RFC 7523 §3); MSAL sends the token endpoint URL.
  const auds = Array.isArray(c.aud) ? c.aud : [c.aud];
  if (!auds.some((a) => typeof a === 'string' && a.startsWith(ctx.baseUrl + '/'))) {
    throw entraError(
      401,
      'invalid_client',
      700038,
      `The audience claim of the client assertion must be this token endpoint. Got '${auds.join(' ')}'.`,
    );
  }
}

function requireConsent(ctx, user, client, parsed) {
  if (!hasConsent(ctx.state, 'microsoft', user.upn, client.clientId, parsed.consentKeys)) {
    throw entraError(
      400,
      'invalid_grant',
      65001,
      `The user or administrator has not consented to use the application with ID '${client.clientId}' named '${client.name}'. Send an interactive authorization request for this user and resource.`,
      { suberror: 'consent_required' },
    );
  }
}

function checkSingleResource(parsed) {
  if (parsed.resources.length > 1) {
    throw entraError(
      400,
      'invalid_request',
      28000,
      `Provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${parsed.raw.join(' ')} is not valid.`,
    );
  }
}

async function token(ctx, req, res, tenant) {
  const { state } = ctx;
  const form = await readForm(req);
  const grant = form.grant_type;
  req.grantType = grant;
  count(state, 'token', grant || '(none)');
  const release = ctx.enter('token');
  const unpend = pendingRefresh(state, grant === 'refresh_token' ? form.refresh_token : undefined);
  try {
    if (await ctx.guard(res, 'token', grant, { counted: true })) return;
    const correlationId = req.headers['client-request-id'];
    try {
      const body = await tokenGrant(ctx, req, form, grant, tenant);
      sendJson(res, 200, body);
      answered(state.refreshTokens, form);
    } catch (e) {
      if (e instanceof OAuthError && correlationId && e.body?.correlation_id) {
        e.body.error_description = e.body.error_description.replace(e.body.correlation_id, correlationId);
        e.body.correlation_id = correlationId;
      }
      throw e;
    }
  } finally {
    unpend();
    release();
  }
}

async function tokenGrant(ctx, req, form, grant, _tenant) {
  const { state } = ctx;
  if (!grant) throw missing('grant_type');
  const known = ['authorization_code', 'refresh_token', 'client_credentials', ...DEVICE_GRANTS];
  if (!known.includes(grant)) {
    throw entraError(
      400,
      'unsupported_grant_type',
      70003,
      `The app requested an unsupported grant type '${grant}'.`,
    );
  }
  const { client, appidacr } = authenticateClient(ctx, req, form);
  const clientInfo = form.client_info === '1';

  if (grant === 'authorization_code') {
    if (!form.code) throw missing('code');
    if (!form.redirect_uri) throw missing('redirect_uri');
    const rec = state.codes.get(form.code);
    if (!rec)
      throw entraError(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
    if (rec.redeemed) throw entraError(400, 'invalid_grant', 54005, ENTRA_MESSAGES[54005]);
    if (idpNow(state) > rec.expiresAt) throw entraError(400, 'invalid_grant', 70008, ENTRA_MESSAGES[70008]);
    if (rec.clientId !== client.clientId) {
      throw entraError(
        400,
        'invalid_grant',
        70000,
        'Provided grant is invalid or malformed. The code was issued to another application.',
      );
    }
    if (rec.redirectUri !== form.redirect_uri) {
      throw entraError(
        400,
        'invalid_grant',
        70000,
        `The redirect URI '${form.redirect_uri}' does not match the redirect URI used in the authorization request.`,
      );
    }
    if (rec.codeChallenge) {
      // RFC 7636 §4.6
      if (!form.code_verifier) throw missing('code_verifier');
      const computed = rec.codeChallengeMethod === 'S256' ? pkceS256(form.code_verifier) : form.code_verifier;
      if (computed !== rec.codeChallenge)
        throw entraError(400, 'invalid_grant', 501481, ENTRA_MESSAGES[501481]);
    } else if (form.code_verifier) {
      throw entraError(400, 'invalid_grant', 50148, ENTRA_MESSAGES[50148]);
    }
    const user = findUser(state, rec.user);
    const parsed = parseEntraScopes(form.scope || rec.scope);
    checkSingleResource(parsed);
    requireConsent(ctx, user, client, parsed);
    rec.redeemed = true;
    return mintEntraUserTokens(ctx, {
      user,
      client,
      parsed,
      nonce: rec.nonce,
      clientInfo,
      appidacr,
      authTime: rec.authTime,
    });
  }

  if (grant === 'refresh_token') {
    if (!form.refresh_token) throw missing('refresh_token');
    const rec = state.refreshTokens.get(form.refresh_token);
    if (!rec)
      throw entraError(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
    const issued = new Date(rec.issuedAt).toISOString();
    const inactive = `${Math.round((idpNow(state) - rec.issuedAt) / 1000)} seconds`;
    if (rec.revoked) {
      throw entraError(
        400,
        'invalid_grant',
        50173,
        `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${new Date(rec.revokedAt).toISOString()}'.`,
        { suberror: 'bad_token' },
      );
    }
    if (rec.usedAt && state.config.rejectRotatedRefreshTokens) {
      const code = Number(state.config.reuseErrorCode) || 70008;
      const msg =
        code === 700082
          ? `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for ${inactive}.`
          : code === 70008
            ? `${ENTRA_MESSAGES[70008]} The refresh token was issued on ${issued} and was inactive for ${inactive}.`
            : ENTRA_MESSAGES[code] || 'The refresh token has already been redeemed.';
      throw entraError(400, 'invalid_grant', code, msg, { suberror: ENTRA_SUBERROR_FOR_CODE[code] });
    }
    const idle = state.config.refreshTokenIdleTimeout;
    if (idle !== null && idle !== undefined && idpNow(state) - rec.issuedAt > Number(idle) * 1000) {
      throw entraError(
        400,
        'invalid_grant',
        700082,
        `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for ${inactive}.`,
        { suberror: 'bad_token' },
      );
    }
    if (rec.clientId !== client.clientId) {
      throw entraError(
        400,
        'invalid_grant',
        70000,
        'Provided grant is invalid or malformed. The refresh token was issued to another application.',
        {
          suberror: 'client_mismatch',
        },
      );
    }
    const user = findUser(state, rec.user);
    const parsed = parseEntraScopes(form.scope || rec.scope);
    checkSingleResource(parsed);
    requireConsent(ctx, user, client, parsed);
    // Entra always answers a refresh_token grant with a new refresh token (rotation).
    if (!parsed.oidc.includes('offline_access')) {
      parsed.oidc.push('offline_access');
      parsed.raw.push('offline_access');
    }
    rec.usedAt = idpNow(state);
    return mintEntraUserTokens(ctx, { user, client, parsed, clientInfo, appidacr, sid: rec.sid });
  }

  if (DEVICE_GRANTS.has(grant)) {
    const dc = form.device_code || form.code;
    if (!dc) throw missing('device_code');
    const rec = state.deviceCodes.get(dc);
    if (!rec || rec.clientId !== client.clientId) {
      throw entraError(
        400,
        'invalid_grant',
        70000,
        "The provided value for the input parameter 'device_code' is not valid.",
      );
    }
    const now = idpNow(state);
    const last = rec.lastPollAt;
    rec.lastPollAt = now;
    if (rec.redeemed) {
      throw entraError(400, 'invalid_grant', 54005, 'The provided device code was already redeemed.');
    }
    if (rec.status === 'expired' || now > rec.expiresAt) {
      rec.status = 'expired';
      throw entraError(400, 'expired_token', 70019, ENTRA_MESSAGES[70019]);
    }
    if (rec.status === 'denied') {
      throw entraError(
        400,
        'authorization_declined',
        70000,
        'The end user denied the authorization request.',
      );
    }
    if (rec.status === 'pending') {
      if (state.config.enforceSlowDown && last && now - last < rec.interval * 1000 - 250) {
        // RFC 8628 §3.5: the client must add 5 seconds to its interval.
        rec.interval += 5;
        throw entraError(
          400,
          'slow_down',
          null,
          'OAuth 2.0 device flow error. Polling too frequently; slow down (interval increased by 5 seconds).',
        );
      }
      throw entraError(400, 'authorization_pending', 70016, ENTRA_MESSAGES[70016]);
    }
    const user = findUser(state, rec.user);
    const parsed = parseEntraScopes(rec.scope);
    checkSingleResource(parsed);
    rec.redeemed = true;
    return mintEntraUserTokens(ctx, { user, client, parsed, clientInfo, appidacr, authTime: rec.authTime });
  }

  // client_credentials (RFC 6749 §4.4)
  if (client.type === 'public') {
    throw entraError(401, 'invalid_client', 7000218, ENTRA_MESSAGES[7000218]);
  }
  if (!form.scope) throw missing('scope');
  const scopes = form.scope
    .split(/\s+/)
    .filter((s) => s && !['openid', 'profile', 'offline_access', 'email'].includes(s));
  const bad = scopes.find((s) => !s.endsWith('/.default'));
  if (bad || scopes.length !== 1) {
    throw entraError(
      400,
      'invalid_scope',
      1002012,
      `The provided value for scope ${bad || form.scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  }
  const resource = scopes[0].slice(0, -'/.default'.length);
  if (!APP_ONLY_RESOURCES.has(resource)) {
    throw entraError(
      400,
      'invalid_resource',
      500011,
      `The resource principal named ${resource} was not found in the tenant named ${state.registry.tenantDomain}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
    );
  }
  return mintEntraAppToken(ctx, { client, resource, appidacr });
}

// ---------------------------------------------------------------------------------------------
// device code (RFC 8628)

const USER_CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

function newUserCode() {
  const b = randomBytes(9);
  let s = '';
  for (const x of b) s += USER_CODE_ALPHABET[x % USER_CODE_ALPHABET.length];
  return s;
}

export function normalizeUserCode(c) {
  return String(c || '')
    .toUpperCase()
    .replace(/[\s-]/g, '');
}

async function deviceCode(ctx, req, res, tenant) {
  const { state } = ctx;
  const form = await readForm(req);
  count(state, 'devicecode');
  const release = ctx.enter('devicecode');
  try {
    if (await ctx.guard(res, 'devicecode', undefined, { counted: true })) return;
    if (!form.client_id) throw missing('client_id');
    const client = findClient(state, form.client_id);
    if (!client) {
      throw entraError(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${form.client_id}' was not found in the directory '${state.registry.tenantDomain}'.`,
      );
    }
    if (client.type !== 'public') {
      // Entra: "Allow public client flows" is off for confidential registrations
      throw entraError(401, 'invalid_client', 7000218, ENTRA_MESSAGES[7000218]);
    }
    if (!form.scope) throw missing('scope');
    const parsed = parseEntraScopes(form.scope);
    checkSingleResource(parsed);
    let userCode;
    do userCode = newUserCode();
    while (state.userCodes.has(userCode));
    const deviceCodeValue = `DAQABAAEAAAD${randomToken(96)}`;
    const interval = Number(state.config.deviceCodeInterval);
    const expiresIn = Number(state.config.deviceCodeLifetime);
    state.deviceCodes.set(deviceCodeValue, {
      deviceCode: deviceCodeValue,
      userCode,
      clientId: client.clientId,
      clientName: client.name,
      scope: form.scope,
      tenant: tenant.seg,
      interval,
      createdAt: idpNow(state),
      expiresAt: idpNow(state) + expiresIn * 1000,
      status: 'pending',
      user: null,
      lastPollAt: null,
      redeemed: false,
    });
    state.userCodes.set(userCode, deviceCodeValue);
    const verificationUri = `${ctx.baseUrl}/devicelogin`;
    sendJson(res, 200, {
      user_code: userCode,
      device_code: deviceCodeValue,
      verification_uri: verificationUri,
      expires_in: expiresIn,
      interval,
      message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`,
    });
  } finally {
    release();
  }
}

/** Find a pending device code by user code. */
export function findDeviceByUserCode(state, userCode) {
  const dc = state.userCodes.get(normalizeUserCode(userCode));
  return dc ? state.deviceCodes.get(dc) : undefined;
}

/** Mark a device code approved for a user (also records consent, as the page would). */
export function approveDevice(state, rec, user) {
  rec.status = 'approved';
  rec.user = user.upn;
  rec.authTime = Math.floor(Date.now() / 1000);
  grantConsent(state, 'microsoft', user.upn, rec.clientId, parseEntraScopes(rec.scope).consentKeys);
}

async function deviceLoginPost(ctx, req, res) {
  const { state } = ctx;
  const form = await readForm(req);
  count(state, 'devicelogin');
  const rec = findDeviceByUserCode(state, form.otc);
  if (!rec || rec.status !== 'pending' || idpNow(state) > rec.expiresAt) {
    sendHtml(
      res,
      200,
      deviceCodePage({
        error:
          rec && idpNow(state) > rec.expiresAt
            ? 'AADSTS70019: That code has expired. Get a new code from your device and try again.'
            : "AADSTS70018: That code didn't work. Check the code and try again.",
      }),
    );
    return;
  }
  const parsed = parseEntraScopes(rec.scope);
  startTxn(ctx, req, res, {
    provider: 'microsoft',
    clientId: rec.clientId,
    clientName: rec.clientName,
    displayScopes: parsed.raw,
    consentKeys: parsed.consentKeys,
    forceLogin: false,
    forceConsent: false,
    loginHint: undefined,
    user: undefined,
    complete: (resp, t) => {
      if (rec.status === 'pending') approveDevice(state, rec, t.user);
      sendHtml(resp, 200, deviceDonePage({ approved: true, clientName: rec.clientName }));
    },
    deny: (resp) => {
      if (rec.status === 'pending') rec.status = 'denied';
      sendHtml(resp, 200, deviceDonePage({ approved: false, clientName: rec.clientName }));
    },
  });
}

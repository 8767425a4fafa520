// Registry (from fixtures.json) and mutable runtime state of the fake identity provider.
import { stableUuid } from './jwt.mjs';

export const DEFAULT_CONFIG = Object.freeze({
  /** seconds; access tokens (both providers) */
  accessTokenLifetime: 3600,
  /** seconds; Entra/Google id_tokens */
  idTokenLifetime: 3600,
  /** seconds; a refresh token unused for longer than this is refused (null = never) */
  refreshTokenIdleTimeout: null,
  /** Entra: refuse a refresh token that was already redeemed (rotation) */
  rejectRotatedRefreshTokens: true,
  /** Entra: AADSTS code returned when a rotated (already used) refresh token comes back: 70008 | 700082 | 50173 | 70000 */
  reuseErrorCode: 70008,
  /** Google: issue a new refresh token on each refresh and invalidate the old one */
  rotateGoogleRefreshTokens: false,
  /** seconds; authorization codes */
  authCodeLifetime: 600,
  /** seconds; device code polling interval handed to clients */
  deviceCodeInterval: 5,
  /** seconds; device code lifetime */
  deviceCodeLifetime: 900,
  /** answer slow_down when a device code is polled sooner than interval - 250 ms */
  enforceSlowDown: true,
  /** skip consent pages (consent is recorded as granted) */
  autoConsent: false,
  /** public clients must send PKCE S256 at the authorize endpoint */
  requirePkceForPublicClients: true,
});

/** Load the registry from the fixtures object. */
export function buildRegistry(fixtures) {
  const ms = fixtures.microsoft;
  const g = fixtures.google || { users: [], clients: [] };
  return {
    tenantId: ms.tenantId,
    tenantDomain: ms.tenantDomain,
    users: ms.users.map((u) => ({ ...u })),
    sharedMailboxes: ms.sharedMailboxes || [],
    clients: ms.clients.map((c) => ({
      ...c,
      redirectUris: c.redirectUris || [],
      servicePrincipalId: c.servicePrincipalId || stableUuid(`sp:${c.clientId}`),
      /** @type {{publicKey: import('node:crypto').KeyObject, x5t?: string, x5tS256?: string}[]} */
      certificates: [],
    })),
    google: {
      users: g.users.map((u) => ({ ...u })),
      clients: g.clients.map((c) => ({ ...c, redirectUris: c.redirectUris || [] })),
      /** service accounts registered through the admin API */
      serviceAccounts: [],
    },
  };
}

export function createState(fixtures) {
  const registry = buildRegistry(fixtures);
  const state = {
    registry,
    config: { ...DEFAULT_CONFIG },
    stats: {},
    inFlight: {},
    /** @type {any[]} */
    faults: [],
    /** session id -> {provider, user, authTime} */
    sessions: new Map(),
    /** "provider|user|clientId" -> Set of consented scopes (Entra: "resource/Short" normalized) */
    consents: new Map(),
    /** pending sign-in transactions: txn id -> {...} */
    txns: new Map(),
    /** authorization codes */
    codes: new Map(),
    /** Entra refresh tokens */
    refreshTokens: new Map(),
    /** device codes by device_code; user codes map to device_code */
    deviceCodes: new Map(),
    userCodes: new Map(),
    /** Google refresh tokens */
    googleRefreshTokens: new Map(),
    /** Google: "user|client" pairs that already received a refresh token */
    googleOfflineGranted: new Set(),
    /** revoked access token ids (jti/uti) */
    revokedAccessTokens: new Set(),
    /** how far /_admin/clock moved the IdP's clock ahead of the real one (ms); see idpNow */
    clockOffsetMs: 0,
  };
  return state;
}

/** Reset everything except the registry (and registered certificates / service accounts). */
export function resetState(state) {
  state.config = { ...DEFAULT_CONFIG };
  state.stats = {};
  state.inFlight = {};
  state.faults = [];
  for (const k of [
    'sessions',
    'consents',
    'txns',
    'codes',
    'refreshTokens',
    'deviceCodes',
    'userCodes',
    'googleRefreshTokens',
  ]) {
    state[k].clear();
  }
  state.googleOfflineGranted.clear();
  state.revokedAccessTokens.clear();
  state.clockOffsetMs = 0;
}

/**
 * The IdP's clock, in ms: the real clock plus what `POST /_admin/clock` moved it by, so that tests
 * never wait for time to pass. It governs what only the IdP decides: authorization and device code
 * expiry, refresh-token idle timeouts. The time claims of the JWTs it signs (iat, nbf, exp) stay on
 * the real clock: Dovecot checks them against its own clock (a token whose iat is in its future is
 * refused), and a clock moved forward must not make fresh tokens unusable.
 */
export function idpNow(state) {
  return Date.now() + state.clockOffsetMs;
}

/** Count one call of `endpoint` (optionally by sub-key, e.g. grant type). */
export function count(state, endpoint, sub) {
  if (sub === undefined) {
    const cur = state.stats[endpoint];
    state.stats[endpoint] = (typeof cur === 'number' ? cur : 0) + 1;
    return;
  }
  const cur = state.stats[endpoint];
  const obj = cur && typeof cur === 'object' ? cur : (state.stats[endpoint] = {});
  obj[sub] = (obj[sub] || 0) + 1;
}

/**
 * A refresh_token grant for `token` is being handled (read, maybe delayed by a fault, not yet
 * answered): `/_admin/refresh-token` says so, so that a test can wait for the request of a
 * client it killed to be settled. Returns the function that ends it.
 */
export function pendingRefresh(state, token) {
  if (!token) return () => undefined;
  const m = (state.pendingRefresh ||= new Map());
  m.set(token, (m.get(token) || 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const n = (m.get(token) || 1) - 1;
    if (n > 0) m.set(token, n);
    else m.delete(token);
  };
}

/** Track concurrent requests per endpoint; returns the function that ends the request. */
export function enter(state, endpoint) {
  const c = (state.inFlight[endpoint] ||= { current: 0, max: 0 });
  c.current++;
  if (c.current > c.max) c.max = c.current;
  let done = false;
  return () => {
    if (!done) {
      done = true;
      c.current--;
    }
  };
}

export function findUser(state, upn) {
  if (!upn) return undefined;
  const l = String(upn).toLowerCase();
  return state.registry.users.find((u) => u.upn.toLowerCase() === l);
}

export function findClient(state, clientId) {
  return state.registry.clients.find((c) => c.clientId === clientId);
}

export function findGoogleUser(state, email) {
  if (!email) return undefined;
  const l = String(email).toLowerCase();
  return state.registry.google.users.find((u) => u.email.toLowerCase() === l);
}

export function findGoogleClient(state, clientId) {
  return state.registry.google.clients.find((c) => c.clientId === clientId);
}

/**
 * Take the first fault matching this call (and decrement its `times`).
 * @returns {any | undefined}
 */
export function takeFault(state, endpoint, grantType) {
  const i = state.faults.findIndex(
    (f) => f.endpoint === endpoint && (!f.grantType || f.grantType === grantType),
  );
  if (i < 0) return undefined;
  const f = state.faults[i];
  if (f.times > 0) {
    f.times--;
    if (f.times === 0) state.faults.splice(i, 1);
  }
  count(state, 'faults', endpoint);
  return f;
}

export function consentKey(provider, user, clientId) {
  return `${provider}|${String(user).toLowerCase()}|${clientId}`;
}

export function hasConsent(state, provider, user, clientId, scopes) {
  const set = state.consents.get(consentKey(provider, user, clientId));
  return scopes.every((s) => set?.has(s));
}

export function grantConsent(state, provider, user, clientId, scopes) {
  const key = consentKey(provider, user, clientId);
  const set = state.consents.get(key) || new Set();
  for (const s of scopes) set.add(s);
  state.consents.set(key, set);
}

export function revokeConsent(state, provider, user, clientId, scopes) {
  const key = consentKey(provider, user, clientId);
  if (!scopes || scopes.length === 0) {
    state.consents.delete(key);
    return;
  }
  const set = state.consents.get(key);
  if (set) for (const s of scopes) set.delete(s);
}

/** Is this redirect URI registered for the client? RFC 8252 §7.3: any port on loopback for native apps. */
export function redirectUriAllowed(client, redirectUri, baseUrl) {
  if (!redirectUri) return false;
  if (client.redirectUris.includes(redirectUri)) return true;
  // this server stands in for login.microsoftonline.com: a registered page of Microsoft's
  // (https://login.microsoftonline.com/common/oauth2/nativeclient) is the same path here
  if (
    baseUrl &&
    redirectUri.startsWith(`${baseUrl}/`) &&
    client.redirectUris.includes(`https://login.microsoftonline.com${redirectUri.slice(baseUrl.length)}`)
  )
    return true;
  let u;
  try {
    u = new URL(redirectUri);
  } catch {
    return false;
  }
  for (const reg of client.redirectUris) {
    let r;
    try {
      r = new URL(reg);
    } catch {
      continue;
    }
    if (u.href === r.href) return true;
    if (
      client.allowAnyLoopbackPort &&
      u.protocol === 'http:' &&
      r.protocol === 'http:' &&
      u.hostname === r.hostname &&
      ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) &&
      u.pathname === r.pathname &&
      !u.username &&
      !u.password
    ) {
      return true;
    }
  }
  return false;
}

/** For /_admin/refresh-token: when the answer to a refresh with this token left (ms since the epoch). */
export function answered(map, form) {
  const rec = form.grant_type === 'refresh_token' && form.refresh_token && map.get(form.refresh_token);
  if (rec) rec.answeredAt = Date.now();
}

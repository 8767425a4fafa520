// Admin API under /_admin/ (JSON, loopback only). See README.md beside this file.
import { createHash } from 'node:crypto';
import { readJson, sendJson } from './http.mjs';
import {
  DEFAULT_CONFIG,
  resetState,
  findClient,
  findUser,
  findGoogleUser,
  findGoogleClient,
  grantConsent,
  revokeConsent,
  idpNow,
} from './state.mjs';
import { parseKeyOrCert, b64url } from './jwt.mjs';
import {
  parseEntraScopes,
  mintEntraUserTokens,
  mintEntraAppToken,
  mintGoogleAccessToken,
} from './tokens.mjs';
import { findDeviceByUserCode, approveDevice } from './entra.mjs';
import { issueGoogleRefreshToken } from './google.mjs';
import { mintCustomTokens } from './custom.mjs';

const FAULT_ENDPOINTS = new Set([
  'token',
  'devicecode',
  'authorize',
  'discovery',
  'keys',
  'instance_discovery',
  'devicelogin',
  'google.token',
  'google.authorize',
  'google.revoke',
  'google.tokeninfo',
  'google.discovery',
  'google.certs',
  'custom.discovery',
  'custom.authorize',
  'custom.token',
  'custom.device',
  'custom.revoke',
]);

class AdminError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}
const bad = (m) => new AdminError(400, m);

/** hex thumbprint ("AB12...") -> base64url, as MSAL puts it in x5t / x5t#S256 */
function thumbToB64url(v) {
  if (!v) return undefined;
  if (/^[0-9a-f]+$/i.test(v) && (v.length === 40 || v.length === 64)) return b64url(Buffer.from(v, 'hex'));
  return v;
}

export async function handleAdmin(ctx, req, res, url) {
  try {
    await route(ctx, req, res, url);
  } catch (e) {
    if (e instanceof AdminError) sendJson(res, e.status, { error: e.message });
    else throw e;
  }
}

async function route(ctx, req, res, url) {
  const { state } = ctx;
  const path = url.pathname.replace(/\/+$/, '');
  const method = req.method;
  const body = method === 'POST' || method === 'PUT' ? await readJson(req) : {};

  if (path === '/_admin/health' && method === 'GET')
    return sendJson(res, 200, { ok: true, url: ctx.baseUrl });

  if (path === '/_admin/stats' && method === 'GET') {
    return sendJson(res, 200, {
      ...JSON.parse(JSON.stringify(state.stats)),
      inFlight: JSON.parse(JSON.stringify(state.inFlight)),
    });
  }

  if (path === '/_admin/reset' && method === 'POST') {
    resetState(state);
    return sendJson(res, 200, { ok: true });
  }

  if (path === '/_admin/faults') {
    if (method === 'GET') return sendJson(res, 200, { faults: state.faults });
    if (method === 'DELETE') {
      state.faults = [];
      return sendJson(res, 200, { ok: true });
    }
    if (method === 'POST') {
      const list = Array.isArray(body) ? body : [body];
      for (const f of list) {
        if (!FAULT_ENDPOINTS.has(f.endpoint))
          throw bad(`unknown endpoint '${f.endpoint}'; one of ${[...FAULT_ENDPOINTS].join(', ')}`);
        if (f.status === undefined && f.delayMs === undefined)
          throw bad('a fault needs status and/or delayMs');
        state.faults.push({
          endpoint: f.endpoint,
          grantType: f.grantType,
          status: f.status,
          retryAfter: f.retryAfter,
          body: f.body,
          error: f.error,
          errorCode: f.errorCode,
          suberror: f.suberror,
          message: f.message,
          delayMs: f.delayMs,
          times: f.times === undefined || f.times === null ? 1 : Number(f.times) < 0 ? -1 : Number(f.times),
        });
      }
      return sendJson(res, 200, { ok: true, faults: state.faults.length });
    }
  }

  if (path === '/_admin/config') {
    if (method === 'GET') return sendJson(res, 200, state.config);
    if (method === 'POST') {
      for (const [k, v] of Object.entries(body)) {
        if (!(k in DEFAULT_CONFIG))
          throw bad(`unknown config key '${k}'; known: ${Object.keys(DEFAULT_CONFIG).join(', ')}`);
        state.config[k] = v;
      }
      return sendJson(res, 200, state.config);
    }
  }

  if (path === '/_admin/clock') {
    if (method === 'POST') {
      // {advanceSeconds}: move it forward; {offsetSeconds}: set how far ahead of the real clock it is
      const key = body.offsetSeconds !== undefined ? 'offsetSeconds' : 'advanceSeconds';
      const s = Number(body[key]);
      if (!Number.isFinite(s) || s < 0) throw bad(`${key} must be a number of seconds, 0 or more`);
      state.clockOffsetMs = (key === 'offsetSeconds' ? 0 : state.clockOffsetMs) + Math.round(s * 1000);
    } else if (method !== 'GET') throw new AdminError(405, 'GET or POST');
    return sendJson(res, 200, {
      now: new Date(idpNow(state)).toISOString(),
      offsetSeconds: state.clockOffsetMs / 1000,
    });
  }

  if (path === '/_admin/device/pending' && method === 'GET') {
    const now = idpNow(state);
    const codes = [...state.deviceCodes.values()]
      .filter((d) => d.status === 'pending' && now <= d.expiresAt)
      .map((d) => ({
        user_code: d.userCode,
        client_id: d.clientId,
        scope: d.scope,
        status: d.status,
        expires_in: Math.round((d.expiresAt - now) / 1000),
        created_at: new Date(d.createdAt).toISOString(),
      }));
    return sendJson(res, 200, { codes });
  }

  if (path === '/_admin/device' && method === 'POST') {
    const rec = findDeviceByUserCode(state, body.user_code);
    if (!rec) throw new AdminError(404, `no device code with user_code '${body.user_code}'`);
    if (body.action === 'approve' && rec.provider === 'custom') {
      // custom-provider device codes (custom.mjs) belong to Google's fixture users
      if (!findGoogleUser(state, body.user || '')) throw bad(`unknown user '${body.user}'`);
      rec.status = 'approved';
      rec.user = body.user;
    } else if (body.action === 'approve') {
      const user = findUser(state, body.user || state.registry.users[0].upn);
      if (!user) throw bad(`unknown user '${body.user}'`);
      approveDevice(state, rec, user);
    } else if (body.action === 'deny') rec.status = 'denied';
    else if (body.action === 'expire') rec.status = 'expired';
    else throw bad("action must be 'approve', 'deny' or 'expire'");
    return sendJson(res, 200, { ok: true, status: rec.status });
  }

  if (path === '/_admin/consent' && method === 'POST') {
    const provider = body.provider || 'microsoft';
    if (!body.user || !body.clientId) throw bad('user and clientId are required');
    const scopes = Array.isArray(body.scopes)
      ? body.scopes
      : String(body.scopes || '')
          .split(/\s+/)
          .filter(Boolean);
    const keys = provider === 'microsoft' ? parseEntraScopes(scopes.join(' ')).consentKeys : scopes;
    if ((body.action || 'grant') === 'grant') grantConsent(state, provider, body.user, body.clientId, keys);
    else if (body.action === 'revoke') revokeConsent(state, provider, body.user, body.clientId, keys);
    else throw bad("action must be 'grant' or 'revoke'");
    const set = state.consents.get(`${provider}|${String(body.user).toLowerCase()}|${body.clientId}`);
    return sendJson(res, 200, { ok: true, consented: set ? [...set] : [] });
  }

  if (path === '/_admin/refresh-token' && method === 'POST') {
    // Whether a refresh token still works, without redeeming (and so rotating) it.
    const t = String(body.token || '');
    if (state.pendingRefresh?.has(t)) return sendJson(res, 200, { pending: true });
    const entra = state.refreshTokens.get(t);
    if (entra) {
      const live = !entra.revoked && !(entra.usedAt && state.config.rejectRotatedRefreshTokens);
      return sendJson(res, 200, {
        provider: 'microsoft',
        live,
        usedAt: entra.usedAt ?? null,
        answeredAt: entra.answeredAt ?? null,
      });
    }
    const g = state.googleRefreshTokens.get(t);
    if (g) return sendJson(res, 200, { provider: 'google', live: !g.revoked });
    const c = state.custom?.refreshTokens.get(t);
    if (c)
      return sendJson(res, 200, {
        provider: 'custom',
        live: !c.used,
        usedAt: c.usedAt ?? null,
        answeredAt: c.answeredAt ?? null,
      });
    return sendJson(res, 200, { provider: null, live: false });
  }

  if (path === '/_admin/revoke-refresh-tokens' && method === 'POST') {
    let revoked = 0;
    const u = body.user?.toLowerCase();
    for (const rec of state.refreshTokens.values()) {
      if (rec.revoked) continue;
      if (u && rec.user.toLowerCase() !== u) continue;
      if (body.clientId && rec.clientId !== body.clientId) continue;
      rec.revoked = true;
      rec.revokedAt = idpNow(state);
      revoked++;
    }
    for (const rec of state.googleRefreshTokens.values()) {
      if (rec.revoked) continue;
      if (u && rec.user.toLowerCase() !== u) continue;
      if (body.clientId && rec.clientId !== body.clientId) continue;
      rec.revoked = true;
      revoked++;
    }
    return sendJson(res, 200, { ok: true, revoked });
  }

  let m = /^\/_admin\/clients\/([^/]+)\/certificate$/.exec(path);
  if (m && method === 'POST') {
    const client = findClient(state, decodeURIComponent(m[1]));
    if (!client) throw new AdminError(404, `unknown client '${m[1]}'`);
    const pem = body.certificatePem || body.publicKeyPem;
    if (!pem) throw bad('publicKeyPem or certificatePem is required');
    let parsed;
    try {
      parsed = parseKeyOrCert(pem);
    } catch (e) {
      throw bad(`cannot parse key: ${e.message}`);
    }
    const cert = {
      publicKey: parsed.publicKey,
      x5t: thumbToB64url(body.x5t || body.thumbprint) || parsed.x5t,
      x5tS256: thumbToB64url(body['x5t#S256'] || body.x5tS256 || body.thumbprintSha256) || parsed.x5tS256,
    };
    if (body.replace) client.certificates = [];
    client.certificates.push(cert);
    return sendJson(res, 200, { ok: true, x5t: cert.x5t ?? null, 'x5t#S256': cert.x5tS256 ?? null });
  }

  if (path === '/_admin/google/service-accounts' && method === 'POST') {
    const email = body.client_email || body.clientEmail;
    const pem = body.publicKeyPem || body.certificatePem;
    if (!email || !pem) throw bad('client_email and publicKeyPem are required');
    let parsed;
    try {
      parsed = parseKeyOrCert(pem);
    } catch (e) {
      throw bad(`cannot parse key: ${e.message}`);
    }
    const sas = state.registry.google.serviceAccounts;
    const i = sas.findIndex((s) => s.clientEmail === email);
    const sa = {
      clientEmail: email,
      publicKey: parsed.publicKey,
      uniqueId:
        body.client_id ||
        body.uniqueId ||
        BigInt('0x' + createHash('sha256').update(email).digest('hex').slice(0, 15)).toString(),
      domainWideDelegation: Boolean(body.domainWideDelegation),
      allowedSubjects: body.allowedSubjects || null,
      allowedScopes: body.allowedScopes || null,
    };
    if (i >= 0) sas[i] = sa;
    else sas.push(sa);
    return sendJson(res, 200, { ok: true, client_email: email, client_id: sa.uniqueId });
  }

  if (path === '/_admin/mint' && method === 'POST') return mint(ctx, res, body);

  if (path === '/_admin/registry' && method === 'GET') {
    const r = state.registry;
    return sendJson(res, 200, {
      tenantId: r.tenantId,
      tenantDomain: r.tenantDomain,
      users: r.users.map(({ password: _p, ...u }) => u),
      clients: r.clients.map(({ secret: _s, certificates, ...c }) => ({
        ...c,
        certificates: certificates.length,
      })),
      google: {
        users: r.google.users.map(({ password: _p, ...u }) => u),
        clients: r.google.clients.map(({ secret: _s, ...c }) => c),
        serviceAccounts: r.google.serviceAccounts.map(({ publicKey: _k, ...s }) => s),
      },
    });
  }

  throw new AdminError(404, `no admin route ${method} ${path}`);
}

function mint(ctx, res, body) {
  const { state } = ctx;
  const provider = body.provider || 'microsoft';
  const scopes = Array.isArray(body.scopes) ? body.scopes.join(' ') : body.scopes;
  if (provider === 'google') {
    const user = findGoogleUser(state, body.user || state.registry.google.users[0]?.email);
    if (!user) throw bad(`unknown Google user '${body.user}'`);
    const clientId = body.clientId || state.registry.google.clients[0]?.clientId;
    if (!findGoogleClient(state, clientId)) throw bad(`unknown Google client '${clientId}'`);
    const at = mintGoogleAccessToken(ctx, {
      sub: user.sub,
      email: user.email,
      clientId,
      scope: scopes || 'https://mail.google.com/',
      lifetime: body.lifetime,
    });
    return sendJson(res, 200, {
      access_token: at.access_token,
      expires_in: at.expires_in,
      token_type: 'Bearer',
      ...(body.refreshToken
        ? {
            refresh_token: issueGoogleRefreshToken(state, {
              user: user.email,
              clientId,
              scope: scopes || 'https://mail.google.com/',
            }),
          }
        : {}),
    });
  }
  if (provider === 'custom') {
    const user = findGoogleUser(state, body.user || state.registry.google.users[0]?.email);
    if (!user) throw bad(`unknown user '${body.user}'`);
    const clientId = body.clientId || state.registry.google.clients[0]?.clientId;
    if (!findGoogleClient(state, clientId)) throw bad(`unknown client '${clientId}'`);
    return sendJson(res, 200, mintCustomTokens(ctx, { user: user.email, clientId, scope: scopes || 'mail' }));
  }
  if (provider !== 'microsoft') throw bad("provider must be 'microsoft', 'google' or 'custom'");
  const client = findClient(state, body.clientId || state.registry.clients[0].clientId);
  if (!client) throw bad(`unknown client '${body.clientId}'`);
  if (body.app || !body.user) {
    const resource = String(scopes || 'https://outlook.office365.com/.default').replace(/\/\.default$/, '');
    const at = mintEntraAppToken(ctx, { client, resource, lifetime: body.lifetime });
    return sendJson(res, 200, {
      access_token: at.access_token,
      expires_in: at.expires_in,
      token_type: 'Bearer',
    });
  }
  const user = findUser(state, body.user);
  if (!user) throw bad(`unknown user '${body.user}'`);
  const parsed = parseEntraScopes(
    scopes || 'https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send',
  );
  parsed.oidc = [];
  const out = mintEntraUserTokens(ctx, { user, client, parsed, lifetime: body.lifetime });
  return sendJson(res, 200, {
    access_token: out.access_token,
    expires_in: out.expires_in,
    token_type: 'Bearer',
    scope: out.scope,
  });
}

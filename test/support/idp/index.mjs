// The fake identity provider: an HTTPS server on loopback speaking Entra ID v2.0's and Google's
// OAuth wire formats well enough for the real @azure/msal-node and google-auth-library.
//   import { startIdp } from './index.mjs';
//   const idp = await startIdp({ pkiDir });   // idp.url === 'https://localhost:PORT'
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSigner } from './jwt.mjs';
import { createState, count, enter, takeFault } from './state.mjs';
import { sendJson, sendHtml, isLoopbackAddress, sleep } from './http.mjs';
import { handleEntra } from './entra.mjs';
import { handleGoogle } from './google.mjs';
import { handleCustom } from './custom.mjs';
import { handleAdmin } from './admin.mjs';
import { handleLogin, handleConsent } from './flow.mjs';
import { OAuthError, entraErrorBody } from './tokens.mjs';
import { errorPage } from './pages.mjs';
import { ENTRA_MESSAGES, ENTRA_ERROR_FOR_CODE, ENTRA_SUBERROR_FOR_CODE } from './errors.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_FIXTURES = join(HERE, '..', 'fixtures.json');
const HTML_ENDPOINTS = new Set(['authorize', 'google.authorize', 'devicelogin']);

/**
 * Start the fake identity provider.
 * @param {{pkiDir: string, port?: number, host?: string, fixtures?: object|string, log?: boolean | ((line: string) => void)}} opts
 * @returns {Promise<{url: string, port: number, close: () => Promise<void>}>}
 */
export async function startIdp({ pkiDir, port = 0, host = '127.0.0.1', fixtures, log } = {}) {
  if (!pkiDir) throw new Error('startIdp: pkiDir is required (make one with test/support/pki.sh DIR)');
  const read = (f) => readFileSync(join(pkiDir, f), 'utf8');
  const fx =
    fixtures && typeof fixtures === 'object'
      ? fixtures
      : JSON.parse(readFileSync(fixtures || DEFAULT_FIXTURES, 'utf8'));
  const signer = createSigner({
    privateKeyPem: read('jwt-key.pem'),
    publicKeyPem: read('jwt-pub.pem'),
    kid: read('jwt-kid').trim(),
  });
  const logLine =
    typeof log === 'function'
      ? log
      : log
        ? (l) => process.stderr.write(l + '\n')
        : process.env.IDP_LOG
          ? (l) => process.stderr.write(l + '\n')
          : null;

  const state = createState(fx);
  const ctx = {
    state,
    signer,
    baseUrl: '',
    enter: (endpoint) => enter(state, endpoint),
    /**
     * Count a call and apply an injected fault if one matches. Returns true when a response was sent.
     * @param {any} res
     * @param {string} endpoint
     * @param {string} [grantType]
     * @param {{counted?: boolean}} [opts]
     */
    guard: async (res, endpoint, grantType, opts = {}) => {
      if (!opts.counted) count(state, endpoint);
      const f = takeFault(state, endpoint, grantType);
      if (!f) return false;
      if (f.delayMs) await sleep(Number(f.delayMs));
      if (!f.status) return false;
      sendFault(res, endpoint, f);
      return true;
    },
  };

  const handler = async (req, res) => {
    const t0 = Date.now();
    let url;
    try {
      url = new URL(req.url || '/', ctx.baseUrl || 'https://localhost');
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (logLine) {
      // Path only: query strings can carry tokens (/tokeninfo, /revoke); bodies are never logged.
      res.on('finish', () =>
        logLine(
          `[idp] ${req.method} ${url.pathname}${req.grantType ? ` grant=${req.grantType}` : ''} -> ${res.statusCode} ${Date.now() - t0}ms`,
        ),
      );
    }
    try {
      if (url.pathname.startsWith('/_admin/')) {
        if (!isLoopbackAddress(req.socket.remoteAddress))
          return sendJson(res, 403, { error: 'admin API is loopback only' });
        return await handleAdmin(ctx, req, res, url);
      }
      if (req.method === 'POST' && url.pathname === '/_flow/login') return await handleLogin(ctx, req, res);
      if (req.method === 'POST' && url.pathname === '/_flow/consent')
        return await handleConsent(ctx, req, res);
      if (await handleCustom(ctx, req, res, url)) return;
      if (await handleGoogle(ctx, req, res, url)) return;
      if (await handleEntra(ctx, req, res, url)) return;
      sendJson(res, 404, {
        error: 'not_found',
        error_description: `No route for ${req.method} ${url.pathname}`,
      });
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof OAuthError) return sendJson(res, e.status, e.body, e.headers);
      const status = e && typeof e.status === 'number' ? e.status : 500;
      if (status === 500) process.stderr.write(`[idp] internal error: ${e?.stack || e}\n`);
      sendJson(res, status, { error: 'server_error', error_description: String(e?.message || e) });
    }
  };

  const tls = { key: read('server-key.pem'), cert: read('server.pem') };
  const servers = [https.createServer(tls, handler)];
  const listen = (srv, p, h) =>
    new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(p, h, () => {
        srv.off('error', reject);
        resolve(srv.address().port);
      });
    });
  const actualPort = await listen(servers[0], port, host);
  // Clients resolve "localhost" to ::1 or 127.0.0.1 depending on the resolver; answer on both.
  if (host === '127.0.0.1' || host === 'localhost') {
    const v6 = https.createServer(tls, handler);
    try {
      await listen(v6, actualPort, '::1');
      servers.push(v6);
    } catch {
      /* no IPv6 loopback here: fine */
    }
  }
  ctx.baseUrl = `https://localhost:${actualPort}`;
  for (const s of servers) s.keepAliveTimeout = 1000;

  return {
    url: ctx.baseUrl,
    port: actualPort,
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise((resolve) => {
              s.close(() => resolve(undefined));
              s.closeAllConnections?.();
            }),
        ),
      ).then(() => undefined),
  };
}

/** Answer with an injected fault, shaped like the provider behind `endpoint`. */
function sendFault(res, endpoint, f) {
  const headers =
    f.retryAfter !== undefined && f.retryAfter !== null ? { 'Retry-After': String(f.retryAfter) } : {};
  const status = Number(f.status);
  if (f.body !== undefined) return sendJson(res, status, f.body, headers);
  if (HTML_ENDPOINTS.has(endpoint)) {
    return sendHtml(
      res,
      status,
      errorPage({
        provider: endpoint.startsWith('google.') ? 'google' : 'microsoft',
        error: f.error || 'temporarily_unavailable',
        errorCode: f.errorCode ?? '',
        message: f.message || `Injected fault: HTTP ${status}`,
      }),
      headers,
    );
  }
  if (endpoint.startsWith('google.') || endpoint.startsWith('custom.')) {
    // RFC 6749 §5.2 shape, as Google and the custom provider answer
    return sendJson(
      res,
      status,
      {
        error:
          f.error ||
          (status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'internal_failure' : 'invalid_grant'),
        error_description: f.message || (status >= 500 ? 'Backend Error' : 'Bad Request'),
      },
      headers,
    );
  }
  const code = f.errorCode ?? (status === 429 ? 50196 : status >= 500 ? 90033 : 70000);
  const error =
    f.error ||
    ENTRA_ERROR_FOR_CODE[code] ||
    (status === 429 || status >= 500 ? 'temporarily_unavailable' : 'invalid_grant');
  return sendJson(
    res,
    status,
    entraErrorBody({
      error,
      code,
      message: f.message || ENTRA_MESSAGES[code] || `Injected fault (HTTP ${status}).`,
      suberror: f.suberror ?? ENTRA_SUBERROR_FOR_CODE[code],
    }),
    headers,
  );
}

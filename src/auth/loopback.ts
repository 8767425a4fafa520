/**
 * The loopback redirect listener for the authorization-code flow (RFC 8252 §7.3).
 *
 * MSAL 7's acquireTokenInteractive no longer takes a custom loopback client (only
 * `preferredPort`, a fixed `http://localhost:PORT` redirect, no timeout, and its own pages), so
 * the flow is driven with getAuthCodeUrl + acquireTokenByCode and this server:
 *   - listens on 127.0.0.1 only, on a random port or the profile's fixed port;
 *   - answers only the redirect path, only for Host localhost/127.0.0.1 (DNS rebinding);
 *   - accepts the response as form_post (what we ask for) or query;
 *   - ignores responses whose `state` is not ours (RFC 6749 §10.12) and keeps waiting;
 *   - serves our own success and error pages;
 *   - gives up after a timeout.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { AuthError, ConfigError } from '../errors/index.js';

export interface AuthorizationResponse {
  code?: string;
  state?: string;
  client_info?: string;
  error?: string;
  error_description?: string;
  error_uri?: string;
  suberror?: string;
  error_codes?: string;
  [k: string]: string | undefined;
}

export interface LoopbackOptions {
  /** Fixed redirect URI (must be http://localhost|127.0.0.1[:port]/path); default http://localhost:RANDOM */
  redirectUri?: string;
  /** Fixed port with the default redirect URI. */
  port?: number;
  timeoutMs: number;
  /** What the profile's `login` command is, for the timeout message. */
  retryCommand: string;
  /** Our pages. */
  successPage: () => string;
  errorPage: (r: AuthorizationResponse) => string;
}

export type StartOptions = Pick<LoopbackOptions, 'redirectUri' | 'port'> & {
  /** For an https://localhost redirect URI: the per-install certificate (src/auth/self-signed.ts). */
  tls?: { key: string; cert: string };
};

export class LoopbackServer {
  private constructor(
    private readonly server: http.Server,
    readonly redirectUri: string,
    private readonly path: string,
    private readonly port: number,
  ) {}

  static async start(o: StartOptions): Promise<LoopbackServer> {
    let host = 'localhost';
    let path = '/';
    let port = o.port ?? 0;
    if (o.redirectUri) {
      const u = new URL(o.redirectUri);
      const scheme = o.tls ? 'https:' : 'http:';
      if (u.protocol !== scheme || !['localhost', '127.0.0.1', '[::1]'].includes(u.hostname)) {
        throw new ConfigError(`redirect URI ${o.redirectUri} is not a loopback address`, {
          code: 'bad_redirect_uri',
          hint: 'use http://localhost:PORT/ or https://localhost:PORT/ (RFC 8252 §7.3); oauthmail listens on the loopback interface only',
        });
      }
      host = u.hostname;
      path = u.pathname || '/';
      if (u.port) port = Number(u.port);
    }
    // https.Server emits the same 'request' events as http.Server
    const server = (
      o.tls ? https.createServer({ key: o.tls.key, cert: o.tls.cert }) : http.createServer()
    ) as http.Server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE') {
          reject(
            new ConfigError(`port ${port} for the sign-in redirect is in use`, {
              code: 'redirect_port_in_use',
              hint: 'close the program using it (another oauthmail login?), or register another redirect URI for the app',
              cause: e,
            }),
          );
        } else reject(e);
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const actual = (server.address() as AddressInfo).port;
    let redirectUri: string;
    if (o.redirectUri) {
      const u = new URL(o.redirectUri);
      if (u.port)
        redirectUri = o.redirectUri; // exactly as registered
      else {
        u.port = String(actual); // RFC 8252 §7.3: a loopback redirect may use any port
        redirectUri = u.toString();
      }
    } else {
      // Same shape as MSAL's own loopback URI (Entra matches "http://localhost" on any port).
      redirectUri = `http://${host}:${actual}`;
    }
    return new LoopbackServer(server, redirectUri, path, actual);
  }

  /**
   * Wait for the authorization response carrying `expectedState`; resolves with it (success or
   * error, after our page has been served) or rejects on timeout.
   */
  waitForResponse(
    expectedState: string,
    o: Pick<LoopbackOptions, 'timeoutMs' | 'retryCommand' | 'successPage' | 'errorPage'>,
  ): Promise<AuthorizationResponse> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new AuthError(`no sign-in response arrived within ${Math.round(o.timeoutMs / 1000)} seconds`, {
            code: 'login_timeout',
            hint: `run: ${o.retryCommand} (and finish the sign-in in the browser), or use a device code: ${o.retryCommand} --device`,
          }),
        );
      }, o.timeoutMs);
      timer.unref?.();
      this.server.on('request', (req, res) => {
        const send = (status: number, html: string) => {
          res.writeHead(status, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            'referrer-policy': 'no-referrer',
            'x-content-type-options': 'nosniff',
            connection: 'close',
          });
          res.end(html);
        };
        const hostHeader = (req.headers.host ?? '').toLowerCase();
        const okHosts = [`localhost:${this.port}`, `127.0.0.1:${this.port}`, `[::1]:${this.port}`];
        const url = new URL(req.url ?? '/', `http://127.0.0.1:${this.port}`);
        if (!okHosts.includes(hostHeader) || url.pathname !== this.path) {
          send(404, '<!doctype html><title>Not found</title><p>Not found.</p>');
          return;
        }
        const finish = (params: URLSearchParams) => {
          const r: AuthorizationResponse = {};
          for (const [k, v] of params) r[k] = v;
          if (!r.code && !r.error) {
            send(
              400,
              '<!doctype html><title>oauthmail</title><p>This page only receives the sign-in response.</p>',
            );
            return;
          }
          const states = params.getAll('state');
          if (states.length !== 1 || states[0] !== expectedState) {
            // not our request (an old tab, or a forged one): refuse it and keep waiting
            send(
              400,
              '<!doctype html><title>oauthmail</title><p>This sign-in response does not belong to the running oauthmail login (state mismatch). Start the sign-in again from the terminal.</p>',
            );
            return;
          }
          clearTimeout(timer);
          send(200, r.error ? o.errorPage(r) : o.successPage());
          resolve(r);
        };
        if (req.method === 'GET') {
          finish(url.searchParams);
        } else if (req.method === 'POST') {
          const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          if (type !== 'application/x-www-form-urlencoded') {
            send(415, '<!doctype html><title>oauthmail</title><p>Unsupported content type.</p>');
            return;
          }
          let body = '';
          req.setEncoding('utf8');
          req.on('data', (c: string) => {
            body += c;
            if (body.length > 1_000_000) req.destroy();
          });
          req.on('end', () => finish(new URLSearchParams(body)));
        } else {
          res.writeHead(405, { allow: 'GET, POST' });
          res.end();
        }
      });
    });
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections?.();
  }
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}';

export function successPage(profile: string, account?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>oauthmail: signed in</title><style>${STYLE}</style></head>
<body><main id="oauthmail-success" data-result="success"><h1>Signed in${account ? ` as ${esc(account)}` : ''}</h1>
<p>oauthmail received the sign-in for profile <code>${esc(profile)}</code>. You can close this tab and go back to the terminal.</p></main></body></html>`;
}

export function errorPage(info: { code?: string; error?: string; message: string; hint?: string }): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>oauthmail: sign-in failed</title><style>${STYLE}</style></head>
<body><main id="oauthmail-error" data-result="error" data-error="${esc(info.error ?? '')}" data-error-code="${esc(info.code ?? '')}">
<h1>Sign-in failed${info.code ? ` (AADSTS${esc(info.code)})` : info.error ? ` (${esc(info.error)})` : ''}</h1>
<p>${esc(info.message.charAt(0).toUpperCase() + info.message.slice(1))}.</p>
${info.hint ? `<p><strong>What to do:</strong> ${esc(info.hint)}</p>` : ''}
<p>The terminal shows the same message. You can close this tab.</p></main></body></html>`;
}

/**
 * The loopback redirect listener for the authorization-code flow (RFC 8252 §7.3).
 *
 * MSAL 7's acquireTokenInteractive no longer takes a custom loopback client (only
 * `preferredPort`, a fixed `http://localhost:PORT` redirect, no timeout, and its own pages), so
 * the flow is driven with getAuthCodeUrl + acquireTokenByCode and this server:
 *   - listens on the loopback interface only, on a random port or the profile's fixed port, and
 *     on EVERY loopback address the redirect host stands for: browsers resolve `localhost`
 *     themselves (Chromium tries [::1] before 127.0.0.1, whatever /etc/hosts says), so another
 *     program on [::1]:PORT would otherwise receive the code and show its own "Signed in" page
 *     (RFC 8252 §8.3). Entra requires `http://localhost` for desktop apps, so the redirect keeps
 *     the name; a fixed port that is taken on any address is refused, a random one picked again;
 *   - answers only the redirect path, only for Host localhost/127.0.0.1/[::1] (DNS rebinding);
 *   - accepts the response as form_post (what we ask for) or query;
 *   - ignores responses whose `state` is not ours (RFC 6749 §10.12) and keeps waiting;
 *   - holds the browser's request open while the code is redeemed and the tokens stored
 *     (settle), then serves our success page or the real error; bounded by holdMs;
 *   - gives up after a timeout.
 */
import dns from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { AuthError, ConfigError } from '../errors/index.js';
import { failurePage, pendingPage } from './loopback-pages.js';

export { successPage, errorPage } from './loopback-pages.js';

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

export interface WaitOptions {
  timeoutMs: number;
  /** What the profile's `login` command is, for the timeout message. */
  retryCommand: string;
  /** Our page for an error response from the identity provider. */
  errorPage: (r: AuthorizationResponse) => string;
  /** How long the browser waits for settle() before it gets the "still finishing" page. */
  holdMs?: number;
}

export interface StartOptions {
  /** Fixed redirect URI (must be http://localhost|127.0.0.1|[::1][:port]/path); default http://localhost:RANDOM */
  redirectUri?: string;
  /** Fixed port with the default redirect URI. */
  port?: number;
  /** For an https://localhost redirect URI: the per-install certificate (src/auth/self-signed.ts). */
  tls?: { key: string; cert: string };
  /** For the pages and for the command that picks another port. */
  profileName: string;
  /**
   * The host of the default redirect: `localhost` (Entra requires it for desktop apps) or the
   * loopback IP literal that RFC 8252 §8.3 recommends (custom providers: oidc-provider, for one,
   * refuses `localhost` when the client registered `http://127.0.0.1`).
   */
  defaultHost?: 'localhost' | '127.0.0.1';
}

/** Long enough for a token exchange with retries; the browser then hears "still finishing". */
const DEFAULT_HOLD_MS = 60_000;
/** A random port free on one loopback address but taken on another is picked again this often. */
const PORT_ATTEMPTS = 10;

const isLoopbackIp = (a: string) => a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a);
const hostPort = (address: string, port: number) =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;

/**
 * Every address a browser may connect to for the redirect host: an IP literal is itself;
 * `localhost` is 127.0.0.1 and ::1 (what browsers use without asking the resolver) plus any other
 * loopback address the resolver gives for it.
 */
async function addressesFor(host: string): Promise<string[]> {
  if (host === '127.0.0.1') return ['127.0.0.1'];
  if (host === '[::1]') return ['::1'];
  const out = new Set(['127.0.0.1', '::1']);
  try {
    for (const a of await dns.lookup('localhost', { all: true }))
      if (isLoopbackIp(a.address)) out.add(a.address);
  } catch {
    // the resolver cannot help: the two above are what browsers use anyway
  }
  return [...out];
}

/** Listen; 'unavailable' when this machine has no such address (no IPv6): nobody can take it then. */
function listen(server: http.Server, port: number, address: string): Promise<'ok' | 'unavailable'> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT') resolve('unavailable');
      else reject(Object.assign(e, { address }));
    };
    server.once('error', onError);
    server.listen(port, address, () => {
      server.off('error', onError);
      resolve('ok');
    });
  });
}

export class LoopbackServer {
  /** The browser's request carrying the code, answered by settle() (or the hold timer). */
  private held: { res: http.ServerResponse; timer: NodeJS.Timeout } | undefined;
  private received = false;

  private constructor(
    private readonly servers: http.Server[],
    readonly redirectUri: string,
    private readonly path: string,
    private readonly port: number,
    private readonly profileName: string,
  ) {}

  static async start(o: StartOptions): Promise<LoopbackServer> {
    let host: string = o.defaultHost ?? 'localhost';
    let path = '/';
    let port = o.port ?? 0;
    let pinnedBy: 'redirectUri' | 'redirectPort' | undefined = o.port ? 'redirectPort' : undefined;
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
      if (u.port) {
        port = Number(u.port);
        pinnedBy = 'redirectUri';
      }
    }
    const addresses = await addressesFor(host);
    // https.Server emits the same 'request' events as http.Server
    const create = () =>
      (o.tls ? https.createServer({ key: o.tls.key, cert: o.tls.cert }) : http.createServer()) as http.Server;
    let servers: http.Server[] = [];
    let actual = port;
    for (let attempt = 1; ; attempt++) {
      servers = [];
      actual = port;
      try {
        for (const address of addresses) {
          const server = create();
          if ((await listen(server, actual, address)) === 'unavailable') continue;
          servers.push(server);
          if (!actual) actual = (server.address() as AddressInfo).port;
        }
        if (!servers.length) {
          throw new ConfigError(`this computer has no ${host} address to receive the sign-in redirect on`, {
            code: 'redirect_address_unavailable',
            hint: `use http://localhost/ as the redirect: oauthmail profile edit ${o.profileName} --set redirectUri=http://localhost/`,
          });
        }
        break;
      } catch (e) {
        for (const s of servers) s.close();
        const err = e as NodeJS.ErrnoException & { address?: string };
        if (err.code !== 'EADDRINUSE') throw e;
        // a random port that is free on 127.0.0.1 but taken on [::1]: pick another
        if (!pinnedBy && attempt < PORT_ATTEMPTS) continue;
        throw new ConfigError(
          `the sign-in redirect address ${hostPort(err.address ?? host, actual)} is in use by another program, which would receive the sign-in`,
          { code: 'redirect_port_in_use', hint: portHint(o, pinnedBy), cause: e },
        );
      }
    }
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
    return new LoopbackServer(servers, redirectUri, path, actual, o.profileName);
  }

  /**
   * Wait for the authorization response carrying `expectedState`; resolves with it or rejects on
   * timeout. An error response gets its page at once; for a code the browser's request stays
   * open until settle() answers it.
   */
  waitForResponse(expectedState: string, o: WaitOptions): Promise<AuthorizationResponse> {
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
      const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const send = (status: number, html: string) => sendPage(res, status, html);
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
          if (this.received) {
            // the same response again (a reload): the first request gets the result
            send(
              409,
              '<!doctype html><title>oauthmail</title><p>oauthmail already received this sign-in; the first tab and the terminal show the result.</p>',
            );
            return;
          }
          this.received = true;
          clearTimeout(timer);
          if (r.error) send(200, o.errorPage(r));
          else this.hold(res, o.holdMs ?? DEFAULT_HOLD_MS);
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
      };
      for (const s of this.servers) s.on('request', onRequest);
    });
  }

  private hold(res: http.ServerResponse, holdMs: number): void {
    const timer = setTimeout(() => void this.answer(pendingPage(this.profileName)), holdMs);
    timer.unref?.();
    this.held = { res, timer };
  }

  /** Answer the held request (once); resolves when the page has been handed to the socket. */
  private answer(html: string): Promise<void> {
    const held = this.held;
    if (!held) return Promise.resolve();
    this.held = undefined;
    clearTimeout(held.timer);
    // the browser may have gone away meanwhile: its response then emits nothing more
    if (held.res.closed || held.res.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      held.res.once('finish', () => resolve());
      held.res.once('close', () => resolve());
      sendPage(held.res, 200, html);
    });
  }

  /**
   * Redeem the code and store the tokens (`work`) while the browser waits, then show it
   * `success(result)`, or the error `work` threw, as the terminal shows it.
   */
  async settle<T>(work: () => Promise<T>, success: (result: T) => string): Promise<T> {
    let result: T;
    try {
      result = await work();
    } catch (e) {
      await this.answer(failurePage(e));
      throw e;
    }
    await this.answer(success(result));
    return result;
  }

  async close(): Promise<void> {
    // an exit before settle() (an error on the way): the browser must not wait for nothing
    await this.answer(failurePage(undefined));
    for (const s of this.servers) {
      s.close();
      s.closeAllConnections?.();
    }
  }
}

function sendPage(res: http.ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    connection: 'close',
  });
  res.end(html);
}

/** How to get past a taken fixed port, for the profile's way of fixing it. */
function portHint(o: StartOptions, pinnedBy: 'redirectUri' | 'redirectPort' | undefined): string {
  const close = 'close the program listening there (another oauthmail login?)';
  if (pinnedBy === 'redirectUri') {
    const u = new URL(o.redirectUri!);
    return `${close}, or register another port for the app and use it: oauthmail profile edit ${o.profileName} --set redirectUri=${u.protocol}//${u.hostname}:OTHER_PORT${u.pathname}`;
  }
  if (pinnedBy === 'redirectPort') {
    return `${close}, or use another port: oauthmail profile edit ${o.profileName} --set redirectPort=OTHER_PORT (or --unset redirectPort for a random port)`;
  }
  return `${close}, then run the login again`;
}

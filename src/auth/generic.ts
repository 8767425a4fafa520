/**
 * Standards-based OAuth 2.0 providers ("custom" profiles), and the token store shared with
 * Google.
 *
 * Protocol: authorization code with PKCE S256 (RFC 6749 §4.1, RFC 7636) through our loopback
 * redirect (RFC 8252 §7.3), device authorization (RFC 8628), refresh (RFC 6749 §6), client
 * authentication client_secret_basic / client_secret_post (RFC 6749 §2.3.1), endpoints given
 * in the profile or discovered from the issuer (RFC 8414 §3, then OpenID Connect Discovery).
 * These are small, fixed exchanges written against fetch: openid-client 6 would fit Node 20,
 * but was not added within this change's time budget (see the issue note).
 *
 * Storage: one `token-cache` secret holding {refresh_token, access_token, expires_at, scope,
 * account}. Refreshes happen under the lock `token-<profile>` after re-reading the secret, so
 * that a refresh token rotated by another process is never overwritten by an older one.
 */
import type { Profile } from '../config/schema.js';
import {
  AuthError,
  ConfigError,
  InternalError,
  OauthmailError,
  TransientError,
  UsageError,
} from '../errors/index.js';
import { oauthError, type OAuthErrorContext } from '../diagnose/google-errors.js';
import { registerSecret } from '../util/redact.js';
import type {
  AuthDeps,
  GetTokenOptions,
  LoginOptions,
  TokenFile,
  TokenProvider,
  TokenResult,
  TokenStatus,
} from './types.js';

const DEFAULT_MIN_VALIDITY = 300;

export interface StoredTokens {
  v: 1;
  refresh_token?: string;
  access_token?: string;
  /** ms since the epoch */
  expires_at?: number;
  scope?: string;
  account?: string | null;
}

export interface TokenResponse {
  access_token?: string;
  refresh_token?: string;
  expires_in?: number | string;
  scope?: string;
  token_type?: string;
  id_token?: string;
}

export function parseStored(text: string | undefined): StoredTokens | undefined {
  if (!text) return undefined;
  try {
    const j = JSON.parse(text) as StoredTokens;
    if (j && j.v === 1) {
      registerSecret(j.refresh_token);
      registerSecret(j.access_token);
      return j;
    }
  } catch {
    // a cache written by another provider type: treat as not signed in
  }
  return undefined;
}

const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function networkError(url: string, e: unknown): TransientError {
  const c =
    (e as { cause?: { code?: string }; code?: string })?.cause?.code ?? (e as { code?: string })?.code;
  return new TransientError(
    `cannot reach the identity provider at ${new URL(url).host}${c ? ` (${c})` : ''}`,
    {
      code: 'network_error',
      hint: 'check the network (and a proxy or firewall); exit code 6 is safe to retry',
      cause: e,
    },
  );
}

export function isNetworkError(e: unknown): boolean {
  const c =
    (e as { cause?: { code?: string }; code?: string })?.cause?.code ?? (e as { code?: string })?.code;
  return typeof c === 'string' && (NET_CODES.has(c) || c.startsWith('UND_ERR'));
}

/** POST a form to a token-style endpoint; OAuth errors (RFC 6749 §5.2) are mapped with ctx. */
export async function postForm(
  url: string,
  form: Record<string, string>,
  ctx: OAuthErrorContext,
  io: { debug(l: string): void },
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...headers,
      },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw networkError(url, e);
  }
  const u = new URL(url);
  io.debug(`POST ${u.origin}${u.pathname} → ${res.status}`);
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  if (!res.ok || typeof body.error === 'string') {
    throw oauthError(
      {
        error: typeof body.error === 'string' ? body.error : undefined,
        error_description: typeof body.error_description === 'string' ? body.error_description : undefined,
        status: res.status,
      },
      ctx,
    );
  }
  return body;
}

/**
 * What Google and custom providers share: the stored-token cache, silent refresh under the
 * lock, status, logout, import and export. Subclasses say how to redeem a refresh token.
 */
export abstract class StoredTokenProvider implements TokenProvider {
  protected abstract readonly providerKind: 'google' | 'custom';

  constructor(
    readonly profileName: string,
    protected readonly profile: Profile,
    protected readonly deps: AuthDeps,
  ) {}

  abstract login(options: LoginOptions): Promise<TokenResult>;
  abstract revokeHints(): string[];
  /** Redeem the refresh token (called under the lock); returns what the provider answered. */
  protected abstract redeemRefreshToken(refreshToken: string): Promise<TokenResponse>;
  protected abstract get scopes(): string[];

  /** App-only profiles (service accounts) override: no refresh token, new assertion instead. */
  protected appOnlyToken(): Promise<TokenResponse> | undefined {
    return undefined;
  }

  protected get lockName(): string {
    return `token-${this.profileName}`;
  }

  protected errCtx(extra: Partial<OAuthErrorContext> = {}): OAuthErrorContext {
    return {
      profile: this.profileName,
      provider: this.providerKind,
      clientId: this.profile.clientId,
      ...extra,
    };
  }

  protected async readStored(): Promise<StoredTokens | undefined> {
    return parseStored(await this.deps.store.get(this.profileName, 'token-cache'));
  }

  protected async writeStored(t: StoredTokens): Promise<void> {
    registerSecret(t.refresh_token);
    registerSecret(t.access_token);
    await this.deps.store.set(this.profileName, 'token-cache', JSON.stringify(t));
  }

  /** Merge a token response into the stored tokens (a missing refresh_token keeps the old one). */
  protected merge(prev: StoredTokens | undefined, r: TokenResponse, account?: string | null): StoredTokens {
    registerSecret(r.access_token);
    registerSecret(r.refresh_token);
    registerSecret(r.id_token);
    const exp = r.expires_in !== undefined ? Number(r.expires_in) : undefined;
    return {
      v: 1,
      refresh_token: r.refresh_token ?? prev?.refresh_token,
      access_token: r.access_token ?? prev?.access_token,
      expires_at:
        exp !== undefined && Number.isFinite(exp)
          ? Date.now() + exp * 1000
          : r.access_token
            ? undefined
            : prev?.expires_at,
      scope: r.scope ?? prev?.scope ?? this.scopes.join(' '),
      account: account !== undefined ? account : (prev?.account ?? this.defaultAccount()),
    };
  }

  protected defaultAccount(): string | null {
    return this.profile.loginHint ?? this.profile.user ?? null;
  }

  protected result(t: StoredTokens, fromCache: boolean): TokenResult {
    if (!t.access_token) {
      throw new InternalError('the identity provider returned no access token', { code: 'no_access_token' });
    }
    return {
      accessToken: t.access_token,
      expiresOn: t.expires_at ? new Date(t.expires_at) : null,
      scopes: (t.scope ?? '').split(/\s+/).filter(Boolean),
      account: t.account ?? null,
      fromCache,
    };
  }

  private valid(t: StoredTokens | undefined, minValiditySeconds: number): boolean {
    return (
      !!t?.access_token &&
      (t.expires_at === undefined || t.expires_at - Date.now() > minValiditySeconds * 1000)
    );
  }

  protected notSignedIn(): AuthError {
    return new AuthError(`profile ${this.profileName} is not signed in`, {
      code: 'not_signed_in',
      hint: `run: oauthmail login ${this.profileName}`,
    });
  }

  async getToken(o: GetTokenOptions = {}): Promise<TokenResult> {
    const min = o.minValiditySeconds ?? DEFAULT_MIN_VALIDITY;
    if (!o.forceRefresh) {
      const t = await this.readStored();
      if (this.valid(t, min)) return this.result(t!, true);
    }
    return this.deps.lock(this.lockName, async () => {
      // Re-read under the lock: another process may have refreshed (and rotated) meanwhile.
      const prev = await this.readStored();
      if (!o.forceRefresh && this.valid(prev, min)) return this.result(prev!, true);
      const app = this.appOnlyToken();
      if (app) {
        const next = this.merge(prev, await app);
        await this.writeStored(next);
        return this.result(next, false);
      }
      if (!prev?.refresh_token) throw this.notSignedIn();
      this.deps.io.debug(`refreshing the access token of ${this.profileName}`);
      const r = await this.redeemRefreshToken(prev.refresh_token);
      // Re-read once more: a subclass may have persisted emitted tokens while redeeming.
      const latest = (await this.readStored()) ?? prev;
      const next = this.merge(latest, r);
      await this.writeStored(next);
      return this.result(next, false);
    });
  }

  /** Store the result of an interactive sign-in (replaces what was stored). */
  protected async storeLogin(r: TokenResponse, account: string | null): Promise<TokenResult> {
    if (!r.refresh_token) {
      throw new AuthError('the identity provider returned no refresh token, so the sign-in would not last', {
        code: 'no_refresh_token',
        hint:
          this.providerKind === 'google'
            ? `run: oauthmail login ${this.profileName} --prompt consent`
            : `ask for offline access: oauthmail profile edit ${this.profileName} --set scopes="... offline_access" (or --set authParams.access_type=offline), then log in again`,
      });
    }
    const next = this.merge(undefined, r, account);
    await this.deps.lock(this.lockName, () => this.writeStored(next));
    return this.result(next, false);
  }

  async logout(): Promise<boolean> {
    return this.deps.lock(this.lockName, () => this.deps.store.delete(this.profileName, 'token-cache'));
  }

  async status(): Promise<TokenStatus> {
    const t = await this.readStored();
    const problems: TokenStatus['problems'] = [];
    const signedIn = !!t?.refresh_token;
    if (!signedIn) problems.push({ problem: 'not signed in', fix: `oauthmail login ${this.profileName}` });
    return {
      signedIn,
      account: t?.account ?? null,
      location: this.deps.store.location,
      storeKind: this.deps.store.kind,
      accessTokenExpiresOn: t?.expires_at ? new Date(t.expires_at) : null,
      scopes: (t?.scope ?? '').split(/\s+/).filter(Boolean),
      hasRefreshToken: signedIn,
      problems,
    };
  }

  async importRefreshToken(file: TokenFile): Promise<TokenResult> {
    if (!file.refresh_token) {
      throw new UsageError('the token file has no refresh_token', {
        code: 'bad_input',
        hint: 'give a JSON file like {"access_token": "...", "refresh_token": "...", "expires_in": 3599}',
      });
    }
    registerSecret(file.refresh_token);
    registerSecret(file.access_token);
    return this.deps.lock(this.lockName, async () => {
      const r = await this.redeemRefreshToken(file.refresh_token!);
      const next = this.merge({ v: 1, refresh_token: file.refresh_token }, r);
      await this.writeStored(next);
      return this.result(next, false);
    });
  }

  async exportTokens(): Promise<TokenFile> {
    const t = await this.getToken({ minValiditySeconds: 60 });
    const stored = await this.readStored();
    const out: TokenFile = {
      access_token: t.accessToken,
      expires_in: t.expiresOn
        ? Math.max(0, Math.floor((t.expiresOn.getTime() - Date.now()) / 1000))
        : undefined,
      token_type: 'Bearer',
      scope: t.scopes.join(' '),
    };
    if (stored?.refresh_token) out.refresh_token = stored.refresh_token;
    return out;
  }

  /** The client secret, if the profile has one (store, then OAUTHMAIL_CLIENT_SECRET). */
  protected async clientSecret(required: boolean): Promise<string | undefined> {
    const s =
      (await this.deps.store.get(this.profileName, 'client-secret')) ??
      this.deps.env.OAUTHMAIL_CLIENT_SECRET ??
      undefined;
    if (!s && required) {
      throw new ConfigError(`profile ${this.profileName} needs a client secret and none is stored`, {
        code: 'missing_client_secret',
        hint: `store it: printf %s "$SECRET" | oauthmail profile secret ${this.profileName} --stdin`,
      });
    }
    registerSecret(s);
    return s || undefined;
  }

  /** PKCE (RFC 7636 S256) and state (RFC 6749 §10.12). */
  protected async pkce(): Promise<{ verifier: string; challenge: string; state: string }> {
    const { randomBytes, createHash } = await import('node:crypto');
    const verifier = randomBytes(32).toString('base64url');
    registerSecret(verifier);
    return {
      verifier,
      challenge: createHash('sha256').update(verifier).digest('base64url'),
      state: randomBytes(32).toString('base64url'),
    };
  }

  /**
   * Run the loopback part of a browser sign-in: start the listener, build the URL with
   * `authUrl(redirectUri)`, show/open it, wait for the response. Returns the code.
   */
  protected async browserCode(
    o: LoginOptions,
    state: string,
    authUrl: (redirectUri: string) => string | Promise<string>,
  ): Promise<{ code: string; redirectUri: string }> {
    const io = this.deps.io;
    const { LoopbackServer, successPage, errorPage } = await import('./loopback.js');
    const server = await LoopbackServer.start({
      redirectUri: this.profile.redirectUri,
      port: this.profile.redirectPort,
    });
    try {
      const redirectUri = server.redirectUri;
      const url = await authUrl(redirectUri);
      const waiting = server.waitForResponse(state, {
        timeoutMs: o.timeoutMs,
        retryCommand: `oauthmail login ${this.profileName}`,
        successPage: () => successPage(this.profileName),
        errorPage: (r) => {
          const err = oauthError(
            { error: r.error, error_description: r.error_description },
            this.errCtx({ redirectUri, during: 'login' }),
          );
          return errorPage({ error: r.error, message: err.message, hint: err.hint });
        },
      });
      let opened = false;
      if (o.openBrowser) {
        const { openBrowser } = await import('./browser.js');
        opened = await openBrowser(url, this.deps.env);
      }
      io.err(
        opened
          ? 'Opened the sign-in page in your browser. If it did not open, go to:'
          : 'Open this URL in a browser on this computer to sign in:',
      );
      io.err(url);
      io.err(`Waiting for the sign-in (up to ${Math.round(o.timeoutMs / 60000) || 1} min)...`);
      const r = await waiting;
      if (r.error || !r.code) {
        throw oauthError(
          { error: r.error ?? 'invalid_request', error_description: r.error_description },
          this.errCtx({ redirectUri, during: 'login' }),
        );
      }
      registerSecret(r.code);
      return { code: r.code, redirectUri };
    } finally {
      server.close();
    }
  }
}

interface Metadata {
  issuer?: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  device_authorization_endpoint?: string;
  revocation_endpoint?: string;
}

export class GenericProvider extends StoredTokenProvider {
  protected readonly providerKind = 'custom' as const;
  private metadata: Metadata | undefined;

  protected get scopes(): string[] {
    return this.profile.scopes;
  }

  /** Endpoints from the profile, completed by discovery from the issuer when one is set. */
  private async endpoints(): Promise<Metadata> {
    if (this.metadata) return this.metadata;
    const p = this.profile;
    let m: Metadata = {};
    if (p.issuer && !(p.tokenEndpoint && (p.authorizationEndpoint || p.deviceEndpoint))) {
      m = await this.discover(p.issuer);
    }
    this.metadata = {
      issuer: m.issuer ?? p.issuer,
      authorization_endpoint: p.authorizationEndpoint ?? m.authorization_endpoint,
      token_endpoint: p.tokenEndpoint ?? m.token_endpoint,
      device_authorization_endpoint: p.deviceEndpoint ?? m.device_authorization_endpoint,
      revocation_endpoint: p.revocationEndpoint ?? m.revocation_endpoint,
    };
    if (!this.metadata.token_endpoint) {
      throw new ConfigError(`no token endpoint is known for profile ${this.profileName}`, {
        code: 'no_token_endpoint',
        hint: `set it: oauthmail profile edit ${this.profileName} --set tokenEndpoint=https://...`,
      });
    }
    return this.metadata;
  }

  /** RFC 8414 §3 (path-inserted well-known URI), then OpenID Connect Discovery 1.0 §4. */
  private async discover(issuer: string): Promise<Metadata> {
    const u = new URL(issuer);
    const path = u.pathname.replace(/\/+$/, '');
    const candidates = [
      `${u.origin}/.well-known/oauth-authorization-server${path}`,
      `${u.origin}${path}/.well-known/openid-configuration`,
    ];
    let lastErr: unknown;
    for (const url of candidates) {
      let res: Response;
      try {
        res = await fetch(url, {
          headers: { accept: 'application/json' },
          signal: AbortSignal.timeout(30_000),
        });
      } catch (e) {
        lastErr = e;
        continue;
      }
      this.deps.io.debug(`GET ${url} → ${res.status}`);
      if (!res.ok) continue;
      const m = (await res.json().catch(() => ({}))) as Metadata;
      // RFC 8414 §3.3: the issuer in the metadata must be identical to the one we asked for.
      if (m.issuer !== issuer && m.issuer !== issuer.replace(/\/+$/, '')) {
        throw new ConfigError(
          `the discovery document of ${issuer} names another issuer (${m.issuer ?? 'none'})`,
          {
            code: 'issuer_mismatch',
            hint: `set the exact issuer: oauthmail profile edit ${this.profileName} --set issuer=${m.issuer ?? 'URL'}`,
          },
        );
      }
      return m;
    }
    if (lastErr && isNetworkError(lastErr)) throw networkError(issuer, lastErr);
    throw new ConfigError(`no discovery document found for issuer ${issuer}`, {
      code: 'discovery_failed',
      hint: `give the endpoints instead: oauthmail profile edit ${this.profileName} --set authorizationEndpoint=... --set tokenEndpoint=...`,
    });
  }

  /** Client authentication at the token endpoint (RFC 6749 §2.3.1); public clients send client_id. */
  private async clientAuth(form: Record<string, string>): Promise<Record<string, string>> {
    const secret = await this.clientSecret(this.profile.clientType === 'secret');
    if (!secret) {
      form.client_id = this.profile.clientId;
      return {};
    }
    if (this.profile.tokenEndpointAuth === 'client_secret_post') {
      form.client_id = this.profile.clientId;
      form.client_secret = secret;
      return {};
    }
    // RFC 6749 §2.3.1: form-urlencode each part before base64.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    return {
      authorization: `Basic ${Buffer.from(`${enc(this.profile.clientId)}:${enc(secret)}`).toString('base64')}`,
    };
  }

  private async token(
    form: Record<string, string>,
    during: OAuthErrorContext['during'],
    redirectUri?: string,
  ): Promise<TokenResponse> {
    const ep = await this.endpoints();
    const headers = await this.clientAuth(form);
    const body = await postForm(
      ep.token_endpoint!,
      form,
      this.errCtx({ during, redirectUri }),
      this.deps.io,
      headers,
    );
    return body as TokenResponse;
  }

  protected redeemRefreshToken(refreshToken: string): Promise<TokenResponse> {
    return this.token({ grant_type: 'refresh_token', refresh_token: refreshToken }, 'refresh');
  }

  async login(o: LoginOptions): Promise<TokenResult> {
    if (o.method === 'client-credentials' || this.profile.flow === 'client-credentials') {
      const r = await this.token(
        { grant_type: 'client_credentials', ...(this.scopes.length ? { scope: this.scopes.join(' ') } : {}) },
        'login',
      );
      const next = this.merge(undefined, r, null);
      await this.deps.lock(this.lockName, () => this.writeStored(next));
      return this.result(next, false);
    }
    const ep = await this.endpoints();
    if (o.method === 'device') return this.deviceLogin(o, ep);
    if (!ep.authorization_endpoint) {
      throw new ConfigError(`no authorization endpoint is known for profile ${this.profileName}`, {
        code: 'no_authorization_endpoint',
        hint: `set it: oauthmail profile edit ${this.profileName} --set authorizationEndpoint=https://...`,
      });
    }
    const { verifier, challenge, state } = await this.pkce();
    const { code, redirectUri } = await this.browserCode(o, state, (redirectUri) => {
      const u = new URL(ep.authorization_endpoint!);
      const params: Record<string, string> = {
        response_type: 'code',
        client_id: this.profile.clientId,
        redirect_uri: redirectUri,
        state,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...(this.scopes.length ? { scope: this.scopes.join(' ') } : {}),
        ...(o.prompt ? { prompt: o.prompt } : {}),
        ...(o.loginHint ? { login_hint: o.loginHint } : {}),
        ...(this.profile.authParams ?? {}),
      };
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return u.toString();
    });
    const r = await this.token(
      { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier },
      'login',
      redirectUri,
    );
    return this.storeLogin(r, o.loginHint ?? this.defaultAccount());
  }

  /** RFC 8628: device authorization request, show the code, poll politely. */
  private async deviceLogin(o: LoginOptions, ep: Metadata): Promise<TokenResult> {
    if (!ep.device_authorization_endpoint) {
      throw new ConfigError(`profile ${this.profileName} has no device authorization endpoint`, {
        code: 'no_device_endpoint',
        hint: `set it (oauthmail profile edit ${this.profileName} --set deviceEndpoint=https://...) or sign in in a browser: oauthmail login ${this.profileName} --browser`,
      });
    }
    const form: Record<string, string> = { ...(this.scopes.length ? { scope: this.scopes.join(' ') } : {}) };
    const headers = await this.clientAuth(form);
    const d = (await postForm(
      ep.device_authorization_endpoint,
      form,
      this.errCtx({ during: 'login' }),
      this.deps.io,
      headers,
    )) as {
      device_code?: string;
      user_code?: string;
      verification_uri?: string;
      verification_uri_complete?: string;
      expires_in?: number;
      interval?: number;
    };
    if (!d.device_code || !d.user_code || !d.verification_uri) {
      throw new InternalError(
        'the device authorization response lacks device_code, user_code or verification_uri',
        { code: 'bad_device_response' },
      );
    }
    registerSecret(d.device_code);
    const { showDeviceCode } = await import('./device-code.js');
    const expiresIn = Number(d.expires_in ?? 600);
    showDeviceCode(
      this.deps.io,
      { userCode: d.user_code, verificationUri: d.verification_uri, expiresIn },
      this.profileName,
    );
    const { setTimeout: sleep } = await import('node:timers/promises');
    let interval = Math.max(1, Number(d.interval ?? 5)) * 1000; // RFC 8628 §3.2: default 5 s
    const deadline = Date.now() + Math.min(o.timeoutMs, expiresIn * 1000);
    while (Date.now() < deadline) {
      await sleep(interval);
      try {
        const r = await this.token(
          { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: d.device_code },
          'login',
        );
        return await this.storeLogin(r, this.defaultAccount());
      } catch (e) {
        const code =
          e instanceof OauthmailError ? (e.response as { error?: string } | undefined)?.error : undefined;
        if (code === 'authorization_pending') continue;
        if (code === 'slow_down') {
          interval += 5000; // RFC 8628 §3.5
          this.deps.io.err(
            `The identity provider asked oauthmail to poll more slowly: every ${interval / 1000} s now.`,
          );
          continue;
        }
        throw e;
      }
    }
    throw new AuthError('the device-code sign-in did not finish in time', {
      code: 'login_timeout',
      hint: `run: oauthmail login ${this.profileName} --device (and enter the code sooner)`,
    });
  }

  revokeHints(): string[] {
    return [
      `the account or admin pages of the identity provider${this.profile.issuer ? ` (${this.profile.issuer})` : ''}: revoke the grant of client ${this.profile.clientId}`,
    ];
  }
}

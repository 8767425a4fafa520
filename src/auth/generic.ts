/**
 * Standards-based OAuth 2.0 providers ("custom" profiles), and the token store shared with
 * Google.
 *
 * Protocol: authorization code with PKCE S256 (RFC 6749 §4.1, RFC 7636) through our loopback
 * redirect (RFC 8252 §7.3), device authorization (RFC 8628), refresh (RFC 6749 §6), client
 * authentication client_secret_basic / client_secret_post (RFC 6749 §2.3.1), endpoints given
 * in the profile or discovered from the issuer (RFC 8414 §3, then OpenID Connect Discovery).
 * The protocol work for custom providers is openid-client 6 (panva; runs on Node 20.19+),
 * which checks state, PKCE, the RFC 9207 `iss` response parameter and discovery issuers.
 * postForm below is only the service-account grant's POST (google.ts), which it does not cover.
 *
 * Storage: one `token-cache` secret holding {refresh_token, access_token, expires_at, scope,
 * account}. Refreshes happen under the lock `token-<profile>` after re-reading the secret, so
 * that a refresh token rotated by another process is never overwritten by an older one.
 */
import { newPkce, type Pkce } from './pkce.js';
import { networkErrorCode, retryingFetch } from './http-retry.js';
import type { Profile } from '../config/schema.js';
import {
  AuthError,
  ConfigError,
  InternalError,
  OauthmailError,
  TransientError,
  UsageError,
} from '../errors/index.js';
import { oauthError, type OAuthErrorContext } from './errors/google-errors.js';
import { registerSecret } from '../util/redact.js';
import { armStoreRescue, critical, debugStoredAfterAnswer } from '../util/critical.js';
import type { AuthorizationResponse } from './loopback.js';
import type {
  AuthDeps,
  GetTokenOptions,
  LoginOptions,
  TokenFile,
  TokenProvider,
  TokenResult,
  TokenStatus,
} from './types.js';
import { DEFAULT_MIN_VALIDITY } from './types.js';

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
  return networkErrorCode(e) !== undefined;
}

/**
 * POST a form to a token-style endpoint with `http` (a retryingFetch: it logs each call with
 * --verbose); OAuth errors (RFC 6749 §5.2) are mapped with ctx.
 */
export async function postForm(
  url: string,
  form: Record<string, string>,
  ctx: OAuthErrorContext,
  http: typeof fetch,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await http(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...headers,
      },
      body: new URLSearchParams(form).toString(),
    });
  } catch (e) {
    throw networkError(url, e);
  }
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

  private httpFetch: typeof fetch | undefined;
  /** fetch for the provider's endpoints: the profile's retry policy, one --verbose line per call. */
  protected get http(): typeof fetch {
    return (this.httpFetch ??= retryingFetch({
      retry: this.profile.retry,
      debug: (l) => this.deps.io.debug(l),
    }));
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

  /** What this process wrote last (see getToken). */
  private lastStored: StoredTokens | undefined;

  protected async writeStored(t: StoredTokens): Promise<void> {
    registerSecret(t.refresh_token);
    registerSecret(t.access_token);
    await this.deps.store.set(this.profileName, 'token-cache', JSON.stringify(t));
    this.lastStored = t;
    debugStoredAfterAnswer((l) => this.deps.io.debug(l));
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
      // From the request on, a rotated refresh token exists only in this process until it is
      // written: the store is made ready first (key derived, keychain module loaded), and
      // SIGINT/SIGTERM wait for the write (critical), so that neither loses the sign-in.
      await this.deps.store.prepare?.(this.profileName, 'token-cache');
      this.lastStored = undefined;
      // SIGKILL cannot be held off: the rotated token also goes to the rescue file the moment
      // the answer arrives (src/secrets/rescue.ts), and the store's next read puts it in place
      const disarm = armStoreRescue(this.deps.store, this.profileName, prev.refresh_token);
      const next = await critical(async () => {
        let r: TokenResponse;
        try {
          r = await this.redeemRefreshToken(prev.refresh_token!);
        } catch (e) {
          if (e instanceof AuthError) await this.health({ kind: 'refresh-refused', code: e.code });
          throw e;
        }
        // A subclass may have persisted emitted tokens while redeeming (google.ts): start from
        // those. Under the lock only we write, so what we wrote last is what is stored, and the
        // store need not be read (a keychain or decryption round trip) while the answer waits.
        const latest = this.lastStored ?? prev;
        const merged = this.merge(latest, r);
        await this.writeStored(merged);
        return merged;
      }).finally(disarm);
      await this.health({ kind: 'refresh', rotated: next.refresh_token !== prev.refresh_token });
      return this.result(next, false);
    });
  }

  /** Token health (src/auth/health.ts), as microsoft.ts records it: best effort, never fails the caller. */
  protected async health(ev: import('./health.js').HealthEvent): Promise<void> {
    const { recordHealth } = await import('./health.js');
    await recordHealth(
      { env: this.deps.env, lock: this.deps.lock, debug: (m) => this.deps.io.debug(m) },
      this.profileName,
      this.providerKind,
      ev,
    );
  }

  /** Store the result of an interactive sign-in (replaces what was stored). */
  protected async storeLogin(
    r: TokenResponse,
    account: string | null,
    prompt?: string,
  ): Promise<TokenResult> {
    if (!r.refresh_token) {
      throw new AuthError('the identity provider returned no refresh token, so the sign-in would not last', {
        code: 'no_refresh_token',
        hint: this.noRefreshTokenHint(prompt ?? this.profile.prompt),
      });
    }
    const next = this.merge(undefined, r, account);
    await this.deps.lock(this.lockName, () => this.writeStored(next));
    await this.health({ kind: 'sign-in' });
    return this.result(next, false);
  }

  /** What gets a refresh token next time, given what this sign-in asked for. */
  private noRefreshTokenHint(prompt: string | undefined): string {
    const n = this.profileName;
    if (this.providerKind === 'google') return `run: oauthmail login ${n} --prompt consent`;
    const consented = /\bconsent\b/.test(prompt ?? '');
    if (!this.scopes.includes('offline_access')) {
      return `ask for offline access: oauthmail profile edit ${n} --set scopes="${[...this.scopes, 'offline_access'].join(' ')}" (or the provider's own parameter, e.g. --auth-param access_type=offline), then: oauthmail login ${n}${consented ? '' : ' --prompt consent'}`;
    }
    if (!consented) {
      // OpenID Connect Core 1.0 §11: the provider MUST ignore offline_access unless the request
      // has prompt=consent (the user must be asked to grant it again)
      return `the provider dropped offline_access because the sign-in did not ask for consent (OpenID Connect Core §11): run: oauthmail login ${n} --prompt consent (to always ask: oauthmail profile edit ${n} --set prompt=consent)`;
    }
    return `the provider issued no refresh token even with offline_access and prompt=consent: allow the refresh_token grant (offline access) for client ${this.profile.clientId} in the provider's client registration, then: oauthmail login ${n} --prompt consent`;
  }

  async logout(): Promise<boolean> {
    return this.deps.lock(this.lockName, () => this.deps.store.delete(this.profileName, 'token-cache'));
  }

  /** Revoke the refresh token at the provider; false when the provider has no revocation endpoint. */
  protected abstract revokeRefreshToken(refreshToken: string): Promise<boolean>;

  async revokeAtProvider(): Promise<'revoked' | 'nothing'> {
    const t = await this.readStored();
    if (!t?.refresh_token) return 'nothing';
    this.deps.io.debug(`revoking the refresh token of ${this.profileName} at the provider`);
    return (await this.revokeRefreshToken(t.refresh_token)) ? 'revoked' : 'nothing';
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
      // the imported token is redeemed (and may be burned) by this request: see getToken
      await this.deps.store.prepare?.(this.profileName, 'token-cache');
      const next = await critical(async () => {
        const r = await this.redeemRefreshToken(file.refresh_token!);
        const merged = this.merge({ v: 1, refresh_token: file.refresh_token }, r);
        await this.writeStored(merged);
        return merged;
      });
      await this.health({ kind: 'sign-in' });
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
  protected async pkce(): Promise<Pkce> {
    return newPkce();
  }

  /**
   * A browser sign-in through the loopback listener: start it, build the URL with
   * `authUrl(redirectUri)`, show/open it, wait for the response, then `redeem` the code (token
   * exchange and store) while the browser waits, so that its page says "Signed in" only once
   * the tokens are stored, or shows the error that stopped it.
   */
  protected async browserSignIn(
    o: LoginOptions,
    state: string,
    authUrl: (redirectUri: string) => string | Promise<string>,
    redeem: (r: {
      code: string;
      redirectUri: string;
      response: AuthorizationResponse;
    }) => Promise<TokenResult>,
  ): Promise<TokenResult> {
    const io = this.deps.io;
    const { LoopbackServer, successPage, errorPage } = await import('./loopback.js');
    const server = await LoopbackServer.start({
      redirectUri: this.profile.redirectUri,
      port: this.profile.redirectPort,
      profileName: this.profileName,
      // RFC 8252 §8.3: the loopback IP literal for custom providers (Google keeps localhost)
      ...(this.profile.provider === 'custom' ? { defaultHost: '127.0.0.1' as const } : {}),
    });
    try {
      const redirectUri = server.redirectUri;
      const url = await authUrl(redirectUri);
      const waiting = server.waitForResponse(state, {
        timeoutMs: o.timeoutMs,
        retryCommand: `oauthmail login ${this.profileName}`,
        errorPage: (r) => {
          const err = oauthError(
            { error: r.error, error_description: r.error_description },
            this.errCtx({ redirectUri, during: 'login' }),
          );
          return errorPage({ error: r.error, message: err.message, hint: err.hint });
        },
      });
      const { presentSignInUrl } = await import('./browser.js');
      await presentSignInUrl(io, url, {
        openBrowser: o.openBrowser,
        timeoutMs: o.timeoutMs,
        env: this.deps.env,
      });
      const r = await waiting;
      if (r.error || !r.code) {
        throw oauthError(
          { error: r.error ?? 'invalid_request', error_description: r.error_description },
          this.errCtx({ redirectUri, during: 'login' }),
        );
      }
      const code = r.code;
      registerSecret(code);
      return await server.settle(
        () => redeem({ code, redirectUri, response: r }),
        (t) => successPage(this.profileName, t.account),
      );
    } finally {
      await server.close();
    }
  }
}

type OpenIdClient = typeof import('openid-client');

/** openid-client's limit for one call including our retries (each try is limited in http-retry.ts). */
const WHOLE_CALL_TIMEOUT_S = 3600;

export class GenericProvider extends StoredTokenProvider {
  protected readonly providerKind = 'custom' as const;
  private cfg: import('openid-client').Configuration | undefined;

  protected get scopes(): string[] {
    return this.profile.scopes;
  }

  private lib(): Promise<OpenIdClient> {
    return import('openid-client');
  }

  /**
   * openid-client's Configuration: the profile's endpoints, completed by discovery from the
   * issuer when one is set (RFC 8414 §3 first, then OpenID Connect Discovery 1.0 §4; both check
   * that the metadata names the same issuer, RFC 8414 §3.3).
   */
  private async config(): Promise<import('openid-client').Configuration> {
    if (this.cfg) return this.cfg;
    const oc = await this.lib();
    const p = this.profile;
    const secret = await this.clientSecret(p.clientType === 'secret');
    // RFC 6749 §2.3.1; a public client only sends client_id (RFC 6749 §3.2.1).
    const auth = !secret
      ? oc.None()
      : p.tokenEndpointAuth === 'client_secret_post'
        ? oc.ClientSecretPost(secret)
        : oc.ClientSecretBasic(secret);
    let server: import('openid-client').ServerMetadata = {
      issuer: p.issuer ?? new URL(p.tokenEndpoint ?? p.authorizationEndpoint ?? 'https://invalid.').origin,
    };
    if (p.issuer && !(p.tokenEndpoint && (p.authorizationEndpoint || p.deviceEndpoint))) {
      server = await this.discover(oc, p.issuer, auth);
    }
    const override: Record<string, string | undefined> = {
      authorization_endpoint: p.authorizationEndpoint,
      token_endpoint: p.tokenEndpoint,
      device_authorization_endpoint: p.deviceEndpoint,
      revocation_endpoint: p.revocationEndpoint,
    };
    for (const [k, v] of Object.entries(override)) if (v) (server as Record<string, unknown>)[k] = v;
    if (!server.token_endpoint) {
      throw new ConfigError(`no token endpoint is known for profile ${this.profileName}`, {
        code: 'no_token_endpoint',
        hint: `set it: oauthmail profile edit ${this.profileName} --set tokenEndpoint=https://...`,
      });
    }
    this.cfg = new oc.Configuration(server, p.clientId, undefined, auth);
    this.cfg[oc.customFetch] = this.http;
    // each try has its own limit in this.http; openid-client's own (one signal for the whole call)
    // would end a retry loop that waits out Retry-After
    this.cfg.timeout = WHOLE_CALL_TIMEOUT_S;
    return this.cfg;
  }

  private async discover(
    oc: OpenIdClient,
    issuer: string,
    auth: import('openid-client').ClientAuth,
  ): Promise<import('openid-client').ServerMetadata> {
    let first: unknown;
    for (const algorithm of ['oauth2', 'oidc'] as const) {
      try {
        const c = await oc.discovery(new URL(issuer), this.profile.clientId, undefined, auth, {
          algorithm,
          [oc.customFetch]: this.http,
          timeout: WHOLE_CALL_TIMEOUT_S,
        });
        this.deps.io.debug(
          `discovered the endpoints of ${issuer} (${algorithm === 'oauth2' ? 'RFC 8414' : 'OpenID Connect'})`,
        );
        return c.serverMetadata();
      } catch (e) {
        first ??= e;
      }
    }
    if (isNetworkError(first)) throw networkError(issuer, first);
    const mismatch =
      /issuer/i.test((first as Error)?.message ?? '') &&
      /match|mismatch|unexpected/i.test((first as Error)?.message ?? '');
    throw new ConfigError(
      mismatch
        ? `the discovery document of ${issuer} names another issuer`
        : `no discovery document found for issuer ${issuer}`,
      {
        code: mismatch ? 'issuer_mismatch' : 'discovery_failed',
        hint: mismatch
          ? `set the exact issuer URL the provider publishes: oauthmail profile edit ${this.profileName} --set issuer=URL`
          : `give the endpoints instead: oauthmail profile edit ${this.profileName} --set authorizationEndpoint=... --set tokenEndpoint=...`,
        cause: first,
      },
    );
  }

  /** openid-client / oauth4webapi errors → ours (RFC 6749 §5.2 bodies through the catalogue). */
  private async mapError(
    e: unknown,
    during: OAuthErrorContext['during'],
    redirectUri?: string,
  ): Promise<OauthmailError> {
    if (e instanceof OauthmailError) return e;
    // oauth4webapi reads error bodies of 4xx answers only; a 5xx comes as "not a conform
    // response" with the Response as its cause, body unread: read it here for the provider's words
    const res = (e as { cause?: unknown })?.cause;
    if (res instanceof Response && !res.bodyUsed) {
      const text = await res.text().catch(() => '');
      let body: { error?: unknown; error_description?: unknown } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // not JSON (an HTML error page from a proxy): the status says enough
      }
      return oauthError(
        {
          error: typeof body?.error === 'string' ? body.error : undefined,
          error_description: typeof body?.error_description === 'string' ? body.error_description : undefined,
          status: res.status,
        },
        this.errCtx({ during, redirectUri }),
        e,
      );
    }
    const r = e as { error?: unknown; error_description?: unknown; status?: unknown; name?: string };
    if (typeof r?.error === 'string') {
      return oauthError(
        {
          error: r.error,
          error_description: typeof r.error_description === 'string' ? r.error_description : undefined,
          status: typeof r.status === 'number' ? r.status : undefined,
        },
        this.errCtx({ during, redirectUri }),
        e,
      );
    }
    // OAUTH_TIMEOUT: openid-client 6's name for a request that hit its own timeout (a provider
    // that accepted the connection and did not answer): a network fault, safe to retry
    if (isNetworkError(e) || (e as { code?: unknown })?.code === 'OAUTH_TIMEOUT')
      return networkError(this.profile.tokenEndpoint ?? this.profile.issuer ?? 'https://invalid.', e);
    return new InternalError(`the sign-in failed: ${(e as Error)?.message ?? String(e)}`, {
      code: 'auth_failed',
      hint: "run again with --verbose; check the profile's endpoints",
      cause: e,
    });
  }

  private toResponse(t: import('openid-client').TokenEndpointResponse): TokenResponse {
    return {
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      expires_in: t.expires_in,
      scope: t.scope,
      token_type: t.token_type,
      id_token: t.id_token,
    };
  }

  /** RFC 7009 through openid-client, when the metadata (or the profile) names a revocation endpoint. */
  protected async revokeRefreshToken(refreshToken: string): Promise<boolean> {
    const oc = await this.lib();
    const config = await this.config();
    if (!config.serverMetadata().revocation_endpoint) return false;
    try {
      await oc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
    } catch (e) {
      throw await this.mapError(e, 'refresh');
    }
    return true;
  }

  protected async redeemRefreshToken(refreshToken: string): Promise<TokenResponse> {
    const oc = await this.lib();
    const config = await this.config();
    try {
      return this.toResponse(await oc.refreshTokenGrant(config, refreshToken));
    } catch (e) {
      throw await this.mapError(e, 'refresh');
    }
  }

  async login(o: LoginOptions): Promise<TokenResult> {
    const oc = await this.lib();
    const config = await this.config();
    const scope: Record<string, string> = this.scopes.length ? { scope: this.scopes.join(' ') } : {};
    if (o.method === 'client-credentials' || this.profile.flow === 'client-credentials') {
      try {
        const r = await oc.clientCredentialsGrant(config, scope);
        const next = this.merge(undefined, this.toResponse(r), null);
        await this.deps.lock(this.lockName, () => this.writeStored(next));
        return this.result(next, false);
      } catch (e) {
        throw await this.mapError(e, 'login');
      }
    }
    if (o.method === 'device') return this.deviceLogin(o, oc, config);
    if (!config.serverMetadata().authorization_endpoint) {
      throw new ConfigError(`no authorization endpoint is known for profile ${this.profileName}`, {
        code: 'no_authorization_endpoint',
        hint: `set it: oauthmail profile edit ${this.profileName} --set authorizationEndpoint=https://...`,
      });
    }
    const { verifier, challenge, state } = await this.pkce();
    return this.browserSignIn(
      o,
      state,
      (redirectUri) =>
        oc
          .buildAuthorizationUrl(config, {
            ...(this.profile.authParams ?? {}),
            // the normalised form (http://localhost:PORT/): openid-client sends the callback URL
            // without its query as redirect_uri, and RFC 6749 §4.1.3 wants the two identical
            redirect_uri: new URL(redirectUri).href,
            state,
            code_challenge: challenge,
            code_challenge_method: 'S256',
            ...scope,
            ...(o.prompt ? { prompt: o.prompt } : {}),
            ...(o.loginHint ? { login_hint: o.loginHint } : {}),
          })
          .toString(),
      async ({ redirectUri, response }) => {
        // openid-client checks state, and `iss` (RFC 9207) against the issuer when the response
        // carries it; a profile without an issuer has nothing to check it against.
        const current = new URL(redirectUri);
        for (const [k, v] of Object.entries(response)) {
          if (v !== undefined && !(k === 'iss' && !this.profile.issuer)) current.searchParams.set(k, v);
        }
        try {
          const r = await oc.authorizationCodeGrant(config, current, {
            pkceCodeVerifier: verifier,
            expectedState: state,
          });
          return await this.storeLogin(this.toResponse(r), o.loginHint ?? this.defaultAccount(), o.prompt);
        } catch (e) {
          throw await this.mapError(e, 'login', redirectUri);
        }
      },
    );
  }

  /** RFC 8628: device authorization request, show the code, poll (openid-client honours slow_down). */
  private async deviceLogin(
    o: LoginOptions,
    oc: OpenIdClient,
    config: import('openid-client').Configuration,
  ): Promise<TokenResult> {
    if (!config.serverMetadata().device_authorization_endpoint) {
      throw new ConfigError(`profile ${this.profileName} has no device authorization endpoint`, {
        code: 'no_device_endpoint',
        hint: `set it (oauthmail profile edit ${this.profileName} --set deviceEndpoint=https://...) or sign in in a browser: oauthmail login ${this.profileName} --browser`,
      });
    }
    let d: import('openid-client').DeviceAuthorizationResponse;
    try {
      d = await oc.initiateDeviceAuthorization(
        config,
        this.scopes.length ? { scope: this.scopes.join(' ') } : {},
      );
    } catch (e) {
      throw await this.mapError(e, 'login');
    }
    registerSecret(d.device_code);
    const { showDeviceCode } = await import('./device-code.js');
    showDeviceCode(
      this.deps.io,
      { userCode: d.user_code, verificationUri: d.verification_uri, expiresIn: d.expires_in },
      this.profileName,
    );
    const deadline = AbortSignal.timeout(Math.min(o.timeoutMs, d.expires_in * 1000));
    try {
      const r = await oc.pollDeviceAuthorizationGrant(config, d, undefined, { signal: deadline });
      return await this.storeLogin(this.toResponse(r), this.defaultAccount());
    } catch (e) {
      const name = (e as { name?: string })?.name;
      // openid-client 6 wraps the abort of our deadline as ClientError code OAUTH_TIMEOUT
      // (OAUTH_ABORT for an abort); what counts is that our deadline passed
      if (deadline.aborted || name === 'TimeoutError' || name === 'AbortError') {
        throw new AuthError('the device-code sign-in did not finish in time', {
          code: 'login_timeout',
          hint: `run: oauthmail login ${this.profileName} --device (and enter the code sooner)`,
          cause: e,
        });
      }
      throw await this.mapError(e, 'login');
    }
  }

  revokeHints(): string[] {
    return [
      `the account or admin pages of the identity provider${this.profile.issuer ? ` (${this.profile.issuer})` : ''}: revoke the grant of client ${this.profile.clientId}`,
    ];
  }
}

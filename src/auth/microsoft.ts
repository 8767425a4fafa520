/**
 * Microsoft Entra ID through MSAL (`@azure/msal-node` 7).
 *
 * Token cache and concurrency. MSAL keeps refresh tokens inside its cache and rotates them on
 * every redemption, and the old one stops working (Entra may reject a redeemed refresh token).
 * Two processes that refresh from the same stored cache and then write back in turn lose one
 * rotation, and possibly the sign-in. MSAL's ICachePlugin calls beforeCacheAccess (read) and
 * afterCacheAccess (write) around each cache use, but a silent acquisition reads, then goes to
 * the network, then writes: a lock taken inside the plugin would not cover the network call.
 * So the design is: the lock `token-<profile>` is held around the WHOLE refresh, and inside it
 * the cache is re-read from the store before anything else. If another process refreshed while
 * we waited for the lock, its fresh access token is used and nothing is redeemed.
 *
 *   token (fast path, no lock, no MSAL): read the stored cache JSON, use a valid access token;
 *   else lock → re-read → valid now? use it : MSAL acquireTokenSilent(forceRefresh) → plugin
 *   writes the new cache (with the rotated refresh token) to the store → unlock.
 *
 * Interactive sign-ins start from an empty cache (the profile holds one account), do not hold
 * the lock while a person is signing in, and take it only to write the result.
 */
import { newPkce, type Pkce } from './pkce.js';
import { NETWORK_ERROR_CODES } from '../net/errors.js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type {
  AuthenticationResult,
  ConfidentialClientApplication,
  Configuration,
  ICachePlugin,
  PublicClientApplication,
  TokenCacheContext,
} from '@azure/msal-node';
import type { Profile } from '../config/schema.js';
import { microsoftAuthority, scopesFor, MICROSOFT_APP_ONLY_SCOPE } from '../config/presets.js';
import {
  AuthError,
  ConfigError,
  InternalError,
  OauthmailError,
  TransientError,
  UsageError,
  providerCode,
} from '../errors/index.js';
import { entraError, type EntraErrorContext, lookup } from './errors/aadsts.js';
import { registerSecret } from '../util/redact.js';
import { armStoreRescue, critical, debugStoredAfterAnswer } from '../util/critical.js';
import {
  findAccessToken,
  latestAccessToken,
  parseCache,
  pickAccount,
  refreshTokenOf,
  registerCacheSecrets,
  type MsalCacheJson,
} from './msal-cache.js';
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

/** Hosts of Microsoft's public and sovereign clouds; any other authority host is "known" explicitly. */
const MICROSOFT_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoft.com',
  'login.windows.net',
  'sts.windows.net',
  'login.microsoftonline.us',
  'login.usgovcloudapi.net',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
]);

type App = PublicClientApplication | ConfidentialClientApplication;

interface Pasted {
  code?: string;
  state?: string;
  client_info?: string;
  error?: string;
  error_description?: string;
  error_codes?: string;
  suberror?: string;
}

/** A pasted redirect URL (query or fragment) or a bare authorization code. */
export function parsePasted(text: string): Pasted | undefined {
  const t = text.trim().replace(/^["'<]|[">']$/g, '');
  if (!t) return undefined;
  if (/^https?:\/\//i.test(t) || /[?#&]?(code|error)=/.test(t)) {
    let params: URLSearchParams;
    try {
      const u = new URL(t, 'http://localhost/');
      params = new URLSearchParams(u.search || u.hash.replace(/^#/, ''));
      if (!params.has('code') && !params.has('error') && u.hash)
        params = new URLSearchParams(u.hash.slice(1));
    } catch {
      params = new URLSearchParams(t.replace(/^[?#]/, ''));
    }
    const get = (k: string) => params.get(k) ?? undefined;
    const p: Pasted = {
      code: get('code'),
      state: get('state'),
      client_info: get('client_info'),
      error: get('error'),
      error_description: get('error_description'),
      error_codes: get('error_codes'),
      suberror: get('suberror'),
    };
    if (!p.code && !p.error) return undefined;
    // a URL always names its state: a missing one is a mismatch, not a bare code
    if (p.code && p.state === undefined) p.state = '';
    return p;
  }
  if (/^[\w.\-~]+$/.test(t)) return { code: t };
  return undefined;
}

/** Read one line from stdin (pasted), or undefined at EOF or after the timeout. */
function readLine(stdin: NodeJS.ReadableStream, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      resolve(v);
    };
    const onData = (c: Buffer | string) => {
      buf += c.toString();
      const i = buf.search(/\r?\n/);
      if (i >= 0) done(buf.slice(0, i));
    };
    const onEnd = () => done(buf.trim() ? buf : undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

export class MicrosoftProvider implements TokenProvider {
  private readonly authority: string;
  private readonly appOnly: boolean;
  private readonly scopes: string[];
  /** The error body of a refused device-code request (MSAL hands the callback empty fields). */
  private deviceCodeError: Record<string, unknown> | undefined;
  /**
   * An error answer to endpoint discovery (`.../.well-known/openid-configuration`), e.g. 400
   * AADSTS90002 for a tenant that does not exist: MSAL drops it and throws endpoints_resolution_error,
   * which alone reads as a network failure.
   */
  private discoveryError: { status: number; body: Record<string, unknown> } | undefined;

  constructor(
    readonly profileName: string,
    private readonly profile: Profile,
    private readonly deps: AuthDeps,
  ) {
    this.authority = microsoftAuthority(profile);
    this.appOnly = profile.flow === 'client-credentials';
    this.scopes = this.appOnly
      ? profile.scopes.length
        ? profile.scopes
        : [MICROSOFT_APP_ONLY_SCOPE]
      : profile.scopes.length
        ? profile.scopes
        : scopesFor('microsoft', profile.capabilities, profile.flow);
  }

  private get lockName(): string {
    return `token-${this.profileName}`;
  }

  private errCtx(extra: Partial<EntraErrorContext> = {}): EntraErrorContext {
    return {
      profile: this.profileName,
      clientId: this.profile.clientId,
      authority: this.authority,
      scopes: this.scopes,
      redirectUri: this.profile.redirectUri,
      ...extra,
    };
  }

  // ---- cache -------------------------------------------------------------------------------

  private async readCache(): Promise<MsalCacheJson | undefined> {
    return parseCache(await this.deps.store.get(this.profileName, 'token-cache'));
  }

  private async readCacheText(): Promise<{ text: string | undefined; cache: MsalCacheJson | undefined }> {
    const text = await this.deps.store.get(this.profileName, 'token-cache');
    return { text, cache: parseCache(text) };
  }

  private fromCache(cache: MsalCacheJson | undefined, minValiditySeconds: number): TokenResult | undefined {
    const account = this.appOnly ? undefined : pickAccount(cache, this.profile.loginHint);
    if (!this.appOnly && !account) return undefined;
    const hit = findAccessToken(cache, {
      clientId: this.profile.clientId,
      scopes: this.scopes,
      homeAccountId: account?.homeAccountId ?? '',
      minValiditySeconds,
    });
    if (!hit) return undefined;
    return {
      accessToken: hit.secret,
      expiresOn: hit.expiresOn,
      scopes: hit.scopes,
      account: account?.username ?? null,
      fromCache: true,
    };
  }

  /**
   * The cache plugin: reads the profile's `token-cache` secret before each MSAL cache access and
   * writes it back after one that changed it. `fresh`: never read (a new sign-in replaces the
   * stored account). `lockWrites`: take the lock for the write (when the caller does not hold it).
   */
  private cachePlugin(o: { fresh: boolean; lockWrites: boolean; text?: string }): ICachePlugin {
    const { store } = this.deps;
    // `text`: the cache as the caller just read it under the lock, which it holds throughout, so
    // the store cannot change but through us: kept up to date here instead of read (and, with a
    // passphrase, decrypted) again before every MSAL cache access
    let known = o.text;
    return {
      beforeCacheAccess: async (ctx: TokenCacheContext) => {
        if (o.fresh) return;
        const text = known ?? (await store.get(this.profileName, 'token-cache'));
        if (text) {
          const parsed = parseCache(text);
          if (parsed) ctx.tokenCache.deserialize(text);
        }
      },
      afterCacheAccess: async (ctx: TokenCacheContext) => {
        if (!ctx.cacheHasChanged) return;
        const text = ctx.tokenCache.serialize();
        const parsed = parseCache(text);
        if (parsed) registerCacheSecrets(parsed);
        const write = () => store.set(this.profileName, 'token-cache', text);
        if (o.lockWrites) await this.deps.lock(this.lockName, write);
        else await write();
        if (known !== undefined) known = text;
        debugStoredAfterAnswer((l) => this.deps.io.debug(l));
      },
    };
  }

  // ---- MSAL application ---------------------------------------------------------------------

  private async credential(): Promise<Pick<Configuration['auth'], 'clientSecret' | 'clientCertificate'>> {
    const { store } = this.deps;
    if (this.profile.clientType === 'secret') {
      const secret =
        (await store.get(this.profileName, 'client-secret')) ?? this.deps.env.OAUTHMAIL_CLIENT_SECRET;
      if (!secret) {
        throw new ConfigError(`profile ${this.profileName} needs a client secret and none is stored`, {
          code: 'missing_client_secret',
          hint: `store it: printf %s "$SECRET" | oauthmail profile secret ${this.profileName} --stdin`,
        });
      }
      registerSecret(secret);
      return { clientSecret: secret };
    }
    if (this.profile.clientType === 'certificate') {
      const pem = await store.get(this.profileName, 'certificate');
      if (!pem) {
        throw new ConfigError(
          `profile ${this.profileName} needs a certificate private key and none is stored`,
          {
            code: 'missing_certificate',
            hint: `store it: oauthmail profile secret ${this.profileName} --certificate key-and-cert.pem`,
          },
        );
      }
      registerSecret(pem);
      let privateKey: string;
      try {
        privateKey = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' }).toString();
      } catch (e) {
        throw new ConfigError(
          `the stored certificate of profile ${this.profileName} holds no usable private key`,
          {
            code: 'bad_certificate',
            hint: `store a PEM private key (and certificate): oauthmail profile secret ${this.profileName} --certificate FILE.pem`,
            cause: e,
          },
        );
      }
      registerSecret(privateKey);
      const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
      const tp = (this.profile.certificateThumbprint ?? '').toLowerCase();
      let x5c: string | undefined;
      if (certMatch) {
        try {
          new X509Certificate(certMatch[0]);
          x5c = certMatch[0];
        } catch {
          x5c = undefined;
        }
      }
      return {
        clientCertificate: {
          privateKey,
          ...(tp.length === 64 ? { thumbprintSha256: tp } : { thumbprint: tp }),
          ...(x5c ? { x5c } : {}),
        },
      };
    }
    return {};
  }

  private async app(plugin: ICachePlugin, onSlowDown?: (s: number) => void): Promise<App> {
    const msal = await import('@azure/msal-node');
    const { createNetworkModule } = await import('./network.js');
    const host = new URL(this.authority).host;
    const io = this.deps.io;
    const cred = await this.credential();
    const config: Configuration = {
      auth: {
        clientId: this.profile.clientId,
        authority: this.authority,
        // an authority outside Microsoft's clouds (ADFS-like or the test provider) must be trusted explicitly
        ...(MICROSOFT_HOSTS.has(new URL(this.authority).hostname) ? {} : { knownAuthorities: [host] }),
        ...cred,
      },
      cache: { cachePlugin: plugin },
      system: {
        networkClient: this.watchDeviceCode(
          createNetworkModule({ debug: (l) => io.debug(l), onSlowDown, retry: this.profile.retry }),
        ),
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: io.verbose ? msal.LogLevel.Info : msal.LogLevel.Error,
          loggerCallback: (_level, message, containsPii) => {
            if (!containsPii && io.verbose) io.debug(`msal: ${message}`);
          },
        },
      },
    };
    return this.profile.clientType === 'public'
      ? new msal.PublicClientApplication(config)
      : new msal.ConfidentialClientApplication(config);
  }

  /**
   * MSAL 7 does not treat an error answer of the device-code endpoint as an error: it calls the
   * callback with undefined fields. Keep that answer so the callback can raise the real error.
   */
  private watchDeviceCode(
    net: import('@azure/msal-node').INetworkModule,
  ): import('@azure/msal-node').INetworkModule {
    return {
      sendGetRequestAsync: async <T>(
        url: string,
        options?: Parameters<typeof net.sendGetRequestAsync>[1],
        timeout?: number,
      ) => {
        const r = await net.sendGetRequestAsync<T>(url, options, timeout);
        if (r.status >= 400 && /\/openid-configuration$/.test(new URL(url).pathname)) {
          this.discoveryError = { status: r.status, body: (r.body ?? {}) as Record<string, unknown> };
        }
        return r;
      },
      sendPostRequestAsync: async <T>(
        url: string,
        options?: Parameters<typeof net.sendPostRequestAsync>[1],
      ) => {
        const r = await net.sendPostRequestAsync<T>(url, options);
        if (r.status >= 400 && /\/devicecode$/.test(new URL(url).pathname)) {
          this.deviceCodeError = r.body as Record<string, unknown>;
        }
        return r;
      },
    };
  }

  private toResult(r: AuthenticationResult | null): TokenResult {
    if (!r || !r.accessToken) {
      throw new InternalError('the identity provider returned no access token', { code: 'no_access_token' });
    }
    registerSecret(r.accessToken);
    registerSecret(r.idToken);
    return {
      accessToken: r.accessToken,
      expiresOn: r.expiresOn ?? null,
      scopes: r.scopes,
      account: r.account?.username ?? null,
      fromCache: !!r.fromCache,
    };
  }

  /** MSAL and network errors → our errors with a sentence, a fix and an exit code. */
  private mapError(e: unknown, extra: Partial<EntraErrorContext> = {}): OauthmailError {
    if (e instanceof OauthmailError) return e;
    const ctx = this.errCtx(extra);
    const m = e as {
      errorCode?: string;
      errorMessage?: string;
      subError?: string;
      errorNo?: string;
      status?: number;
      code?: string;
      name?: string;
      message?: string;
    };
    if (m && typeof m.errorCode === 'string') {
      const code = m.errorCode;
      // MSAL wraps some OAuth errors (device-code polling) as post_request_failed + the error string
      if (code === 'post_request_failed' && /^[a-z_]+$/.test((m.errorMessage ?? '').trim())) {
        return entraError({ error: m.errorMessage!.trim(), status: m.status }, ctx, e);
      }
      if (
        m.name === 'ServerError' ||
        m.name === 'InteractionRequiredAuthError' ||
        m.errorNo ||
        /AADSTS\d+/.test(m.errorMessage ?? '')
      ) {
        return entraError(
          {
            error: code,
            description: m.errorMessage,
            code: m.errorNo,
            suberror: m.subError,
            status: m.status,
          },
          ctx,
          e,
        );
      }
      if (
        [
          'no_tokens_found',
          'no_account_found',
          'no_account_in_silent_request',
          'refresh_token_expired',
          'token_refresh_required',
          'interaction_required',
          'login_required',
          'consent_required',
          'bad_token',
          'native_account_unavailable',
        ].includes(code)
      ) {
        const { entry } = lookup({ error: code });
        return new AuthError(entry ? entry.message(ctx) : `profile ${this.profileName} needs a new sign-in`, {
          code: providerCode(code),
          hint: entry ? entry.hint(ctx) : `run: oauthmail login ${this.profileName}`,
          cause: e,
        });
      }
      const refused = this.discoveryError;
      if (
        refused &&
        refused.status < 500 &&
        refused.status !== 429 &&
        (code === 'endpoints_resolution_error' || code === 'openid_config_error')
      ) {
        // the identity provider answered, and said no: a wrong tenant (AADSTS90002) is a
        // configuration error, not a network one (and retrying cannot help)
        const b = refused.body;
        const codes = Array.isArray(b.error_codes) ? (b.error_codes as unknown[]) : [];
        return entraError(
          {
            ...(typeof b.error === 'string' ? { error: b.error } : {}),
            ...(typeof b.error_description === 'string' ? { description: b.error_description } : {}),
            ...(codes.length ? { code: String(codes[0]) } : {}),
            status: refused.status,
          },
          ctx,
          e,
        );
      }
      if (
        [
          'network_error',
          'no_network_connectivity',
          'endpoints_resolution_error',
          'openid_config_error',
          'network_request_failed',
        ].includes(code)
      ) {
        return new TransientError(`cannot reach the identity provider at ${new URL(this.authority).host}`, {
          code: providerCode(code),
          hint: 'check the network (and a proxy or firewall); exit code 6 is safe to retry',
          cause: e,
        });
      }
      if (
        code === 'untrusted_authority' ||
        code === 'invalid_authority' ||
        code === 'url_parse_error' ||
        code === 'authority_uri_insecure'
      ) {
        return new ConfigError(`the authority ${this.authority} was refused by MSAL (${code})`, {
          code,
          hint: `check the profile's tenant or authority (oauthmail profile show ${this.profileName}); it must be an https:// URL`,
          cause: e,
        });
      }
      if (code === 'state_mismatch' || code === 'nonce_mismatch' || code === 'invalid_state') {
        return new AuthError(`the sign-in response did not match this sign-in (${code})`, {
          code,
          hint: `run: oauthmail login ${this.profileName}`,
          cause: e,
        });
      }
      return new InternalError(`MSAL failed: ${code}`, {
        code: `msal_${code}`,
        hint: 'run again with --verbose for details',
        cause: e,
      });
    }
    if (m && typeof m.code === 'string' && NETWORK_ERROR_CODES.has(m.code)) {
      return new TransientError(
        `cannot reach the identity provider at ${new URL(this.authority).host} (${m.code})`,
        {
          code: 'network_error',
          hint: 'check the network; exit code 6 is safe to retry',
          cause: e,
        },
      );
    }
    return new InternalError(`sign-in failed: ${m?.message ?? String(e)}`, { code: 'auth_failed', cause: e });
  }

  /** Token health (src/auth/health.ts): best effort, never fails the caller. */
  private async health(ev: import('./health.js').HealthEvent): Promise<void> {
    const { recordHealth } = await import('./health.js');
    await recordHealth(
      { env: this.deps.env, lock: this.deps.lock, debug: (m) => this.deps.io.debug(m) },
      this.profileName,
      'microsoft',
      ev,
    );
  }

  private notSignedIn(): AuthError {
    return new AuthError(`profile ${this.profileName} is not signed in`, {
      code: 'not_signed_in',
      hint: `run: oauthmail login ${this.profileName}`,
    });
  }

  // ---- TokenProvider --------------------------------------------------------------------------

  /** The cached access token if it is valid long enough; no lock, no network, no MSAL (fast path). */
  async peekCachedToken(minValiditySeconds = DEFAULT_MIN_VALIDITY): Promise<TokenResult | undefined> {
    return this.fromCache(await this.readCache(), minValiditySeconds);
  }

  async getToken(o: GetTokenOptions = {}): Promise<TokenResult> {
    const min = o.minValiditySeconds ?? DEFAULT_MIN_VALIDITY;
    if (!o.forceRefresh) {
      const hit = this.fromCache(await this.readCache(), min);
      if (hit) {
        this.deps.io.debug(
          `using the cached access token of ${this.profileName} (valid until ${hit.expiresOn?.toISOString()})`,
        );
        return hit;
      }
    }
    return this.deps.lock(this.lockName, async () => {
      // Re-read under the lock: another process may have refreshed (and rotated) meanwhile.
      const { text, cache } = await this.readCacheText();
      if (!o.forceRefresh) {
        const hit = this.fromCache(cache, min);
        if (hit) return hit;
      }
      const plugin = this.cachePlugin({ fresh: false, lockWrites: false, text: text ?? '' });
      if (this.appOnly) {
        const app = (await this.app(plugin)) as ConfidentialClientApplication;
        try {
          this.deps.io.debug(`requesting an app-only token for ${this.profileName}`);
          return this.toResult(
            await app.acquireTokenByClientCredential({ scopes: this.scopes, skipCache: true }),
          );
        } catch (e) {
          throw this.mapError(e);
        }
      }
      const cached = pickAccount(cache, this.profile.loginHint);
      if (!cached || !refreshTokenOf(cache, this.profile.clientId, cached.homeAccountId))
        throw this.notSignedIn();
      const app = await this.app(plugin);
      try {
        const account = await app.getTokenCache().getAccountByHomeId(cached.homeAccountId);
        if (!account) throw this.notSignedIn();
        this.deps.io.debug(`refreshing the access token of ${this.profileName}`);
        // forceRefresh: MSAL's own renewal window is a fixed 300 s; ours is --min-validity,
        // and the cache check above already decided that a refresh is needed.
        const oldRt = refreshTokenOf(cache, this.profile.clientId, cached.homeAccountId);
        // From the request on, the rotated refresh token exists only in this process until the
        // cache is written: the store is made ready first (key derived, keychain module loaded),
        // and SIGINT/SIGTERM wait for the write (critical), so that neither loses the sign-in.
        await this.deps.store.prepare?.(this.profileName, 'token-cache');
        // SIGKILL cannot be held off: the rotated token also goes to the rescue file the moment
        // the answer arrives (src/secrets/rescue.ts), and the store's next read puts it in place
        const disarm = armStoreRescue(this.deps.store, this.profileName, oldRt);
        let result: TokenResult;
        try {
          result = this.toResult(
            await critical(() => app.acquireTokenSilent({ account, scopes: this.scopes, forceRefresh: true })),
          );
        } finally {
          disarm();
        }
        const newRt = refreshTokenOf(await this.readCache(), this.profile.clientId, cached.homeAccountId);
        await this.health({ kind: 'refresh', rotated: !!newRt && newRt !== oldRt });
        return result;
      } catch (e) {
        const err = this.mapError(e);
        if (err instanceof AuthError && err.code !== 'not_signed_in')
          await this.health({ kind: 'refresh-refused', code: err.code });
        throw err;
      }
    });
  }

  async login(o: LoginOptions): Promise<TokenResult> {
    const r = await this.loginInner(o);
    if (!this.appOnly && o.method !== 'client-credentials') await this.health({ kind: 'sign-in' });
    return r;
  }

  private async loginInner(o: LoginOptions): Promise<TokenResult> {
    const io = this.deps.io;
    const plugin = this.cachePlugin({ fresh: true, lockWrites: true });
    if (o.method === 'client-credentials' || this.appOnly) {
      if (this.profile.clientType === 'public') {
        throw new ConfigError('client credentials need a confidential app (a secret or certificate)', {
          code: 'public_client_credentials',
          hint: `set clientType: oauthmail profile edit ${this.profileName} --set clientType=secret`,
        });
      }
      const app = (await this.app(plugin)) as ConfidentialClientApplication;
      try {
        return this.toResult(
          await app.acquireTokenByClientCredential({ scopes: this.scopes, skipCache: true }),
        );
      } catch (e) {
        throw this.mapError(e);
      }
    }
    const extra: Record<string, string> = { ...(this.profile.authParams ?? {}) };
    if (o.method === 'device') {
      const { showDeviceCode } = await import('./device-code.js');
      if (this.profile.clientType !== 'public') {
        throw new ConfigError(
          'device-code sign-in needs a public client app (MSAL offers it to public clients only)',
          {
            code: 'device_code_confidential',
            hint: `use the browser sign-in: oauthmail login ${this.profileName} --browser`,
          },
        );
      }
      const app = (await this.app(plugin, (s) =>
        io.err(`The identity provider asked oauthmail to poll more slowly: every ${s} s now.`),
      )) as PublicClientApplication;
      try {
        const r = await app.acquireTokenByDeviceCode({
          scopes: this.scopes,
          timeout: Math.max(1, Math.round(o.timeoutMs / 1000)),
          ...(Object.keys(extra).length ? { extraQueryParameters: extra } : {}),
          deviceCodeCallback: (d) => {
            const refused = this.deviceCodeError;
            if (!d.userCode && refused) {
              const codes = refused.error_codes as number[] | undefined;
              throw entraError(
                {
                  error: refused.error as string | undefined,
                  description: refused.error_description as string | undefined,
                  code: codes?.[0],
                  suberror: refused.suberror as string | undefined,
                },
                this.errCtx(),
              );
            }
            showDeviceCode(io, d, this.profileName);
          },
        });
        if (!r) {
          throw new AuthError(
            `the device-code sign-in did not finish within ${Math.round(o.timeoutMs / 1000)} seconds`,
            {
              code: 'login_timeout',
              hint: `run: oauthmail login ${this.profileName} --device`,
            },
          );
        }
        return this.toResult(r);
      } catch (e) {
        const m = e as { errorCode?: string };
        if (
          m?.errorCode === 'device_code_polling_cancelled' ||
          m?.errorCode === 'user_timeout_reached' ||
          m?.errorCode === 'device_code_expired' ||
          m?.errorCode === 'user_timeout'
        ) {
          throw new AuthError(`the device-code sign-in did not finish in time`, {
            code: 'login_timeout',
            hint: `run: oauthmail login ${this.profileName} --device (and enter the code sooner)`,
            cause: e,
          });
        }
        throw this.mapError(e);
      }
    }
    if (o.paste) return this.pasteLogin(o, plugin, extra);
    return this.browserLogin(o, plugin, extra);
  }

  /**
   * The authorization URL with fresh PKCE (RFC 7636 S256), state (RFC 6749 §10.12) and nonce
   * (OIDC); the caller keeps the verifier to redeem the code.
   */
  private async authCodeUrl(
    app: Awaited<ReturnType<MicrosoftProvider['app']>>,
    redirectUri: string,
    responseMode: 'query' | 'form_post',
    o: LoginOptions,
    extra: Record<string, string>,
  ): Promise<Pkce & { url: string }> {
    const pkce = newPkce();
    try {
      const url = await app.getAuthCodeUrl({
        scopes: this.scopes,
        redirectUri,
        responseMode: responseMode as never,
        codeChallenge: pkce.challenge,
        codeChallengeMethod: 'S256',
        state: pkce.state,
        nonce: pkce.nonce,
        ...(o.prompt ? { prompt: o.prompt } : {}),
        ...(o.loginHint ? { loginHint: o.loginHint } : {}),
        ...(o.domainHint ? { domainHint: o.domainHint } : {}),
        ...(Object.keys(extra).length ? { extraQueryParameters: extra } : {}),
      });
      return { ...pkce, url };
    } catch (e) {
      throw this.mapError(e, { redirectUri });
    }
  }

  /**
   * `login --paste`: the authorization-code flow with PKCE where the redirect cannot reach us
   * (a machine reached over SSH). The browser ends on an unreachable http://localhost page; the
   * person copies that address (or just the code) and pastes it on stdin. The state of a pasted
   * URL must match (RFC 6749 §10.12); a bare code carries no state, but PKCE (RFC 7636) still
   * binds it to this process's verifier.
   */
  private async pasteLogin(
    o: LoginOptions,
    plugin: ICachePlugin,
    extra: Record<string, string>,
  ): Promise<TokenResult> {
    const io = this.deps.io;
    const app = await this.app(plugin);
    const redirectUri = this.profile.redirectUri ?? 'http://localhost';
    const { url, verifier, state, nonce } = await this.authCodeUrl(app, redirectUri, 'query', o, extra);
    io.err('Open this URL in a browser on any computer and sign in:');
    io.err(url);
    io.err(
      `The browser then goes to ${redirectUri}... and shows an error page (nothing listens there): that is expected.`,
    );
    io.err(
      'Copy the whole address from the address bar (or just the code) and paste it here, then press Enter:',
    );
    const line = await readLine(io.stdin, o.timeoutMs);
    if (line === undefined) {
      throw new AuthError(`no redirect URL was pasted within ${Math.round(o.timeoutMs / 1000)} seconds`, {
        code: 'login_timeout',
        hint: `run: oauthmail login ${this.profileName} --paste`,
      });
    }
    const pasted = parsePasted(line);
    if (!pasted) {
      throw new UsageError('the pasted text is neither the redirect URL nor an authorization code', {
        code: 'bad_input',
        hint: `run: oauthmail login ${this.profileName} --paste, and paste the whole address the browser ended on`,
      });
    }
    if (pasted.error) {
      throw entraError(
        {
          error: pasted.error,
          description: pasted.error_description,
          code: pasted.error_codes?.split(',')[0],
          suberror: pasted.suberror,
        },
        this.errCtx({ redirectUri }),
      );
    }
    if (pasted.state !== undefined && pasted.state !== state) {
      throw new AuthError(
        'the pasted URL belongs to another sign-in (its state does not match); nothing was stored',
        {
          code: 'state_mismatch',
          hint: `run: oauthmail login ${this.profileName} --paste, and paste the address from that sign-in`,
        },
      );
    }
    registerSecret(pasted.code);
    try {
      return this.toResult(
        await app.acquireTokenByCode(
          { code: pasted.code!, codeVerifier: verifier, redirectUri, scopes: this.scopes, state, nonce },
          {
            code: pasted.code!,
            state,
            ...(pasted.client_info ? { client_info: pasted.client_info } : {}),
            nonce,
          } as never,
        ),
      );
    } catch (e) {
      throw this.mapError(e, { redirectUri });
    }
  }

  private async browserLogin(
    o: LoginOptions,
    plugin: ICachePlugin,
    extra: Record<string, string>,
  ): Promise<TokenResult> {
    const io = this.deps.io;
    const { LoopbackServer, successPage, errorPage } = await import('./loopback.js');
    const app = await this.app(plugin);
    const retryCommand = `oauthmail login ${this.profileName}`;
    // An https://localhost redirect (for registrations that allow only https): our own
    // per-install certificate, which the browser does not know and warns about once.
    let tls: import('./self-signed.js').LoopbackTls | undefined;
    if (this.profile.redirectUri?.toLowerCase().startsWith('https:')) {
      const { loopbackTls } = await import('./self-signed.js');
      tls = await loopbackTls(this.deps.env);
    }
    const server = await LoopbackServer.start({
      redirectUri: this.profile.redirectUri,
      port: this.profile.redirectPort,
      ...(tls ? { tls: { key: tls.key, cert: tls.cert } } : {}),
      profileName: this.profileName,
    });
    if (tls) {
      io.err(
        `The sign-in ends at ${server.redirectUri}, served with oauthmail's own certificate made on this computer.`,
      );
      io.err(
        `Your browser warns that it does not trust it${tls.created ? '' : ' (unless you accepted it before)'}: check that the SHA-256 fingerprint is`,
      );
      io.err(`  ${tls.fingerprint}`);
      io.err(
        `then choose Advanced → Proceed to localhost. Or trust ${tls.dir}/cert.pem in the browser once to skip the warning.`,
      );
    }
    try {
      const redirectUri = server.redirectUri;
      const { url, verifier, state, nonce } = await this.authCodeUrl(app, redirectUri, 'form_post', o, extra);
      const waiting = server.waitForResponse(state, {
        timeoutMs: o.timeoutMs,
        retryCommand,
        errorPage: (r) => {
          const err = entraError(
            {
              error: r.error,
              description: r.error_description,
              code: r.error_codes?.split(',')[0],
              suberror: r.suberror,
            },
            this.errCtx({ redirectUri }),
          );
          const code = /^AADSTS(\d+)$/.exec(err.code)?.[1];
          return errorPage({
            code,
            error: r.error,
            message: err.message.replace(/ \(AADSTS\d+\)$/, ''),
            hint: err.hint,
          });
        },
      });
      const { presentSignInUrl } = await import('./browser.js');
      await presentSignInUrl(io, url, {
        openBrowser: o.openBrowser,
        timeoutMs: o.timeoutMs,
        env: this.deps.env,
      });
      const r = await waiting;
      if (r.error) {
        throw entraError(
          {
            error: r.error,
            description: r.error_description,
            code: r.error_codes?.split(',')[0],
            suberror: r.suberror,
          },
          this.errCtx({ redirectUri }),
        );
      }
      registerSecret(r.code);
      // the browser hears "Signed in" only once the tokens are stored (the cache plugin writes
      // them inside acquireTokenByCode), or the error that stopped it (a refused code, a nonce)
      return await server.settle(
        async () => {
          try {
            return this.toResult(
              await app.acquireTokenByCode(
                { code: r.code!, codeVerifier: verifier, redirectUri, scopes: this.scopes, state, nonce },
                { code: r.code!, state: r.state, client_info: r.client_info, nonce } as never,
              ),
            );
          } catch (e) {
            throw this.mapError(e, { redirectUri });
          }
        },
        (t) => successPage(this.profileName, t.account),
      );
    } finally {
      await server.close();
    }
  }

  async logout(): Promise<boolean> {
    return this.deps.lock(this.lockName, () => this.deps.store.delete(this.profileName, 'token-cache'));
  }

  async status(): Promise<TokenStatus> {
    const { store } = this.deps;
    const cache = await this.readCache();
    const problems: TokenStatus['problems'] = [];
    const account = this.appOnly ? undefined : pickAccount(cache, this.profile.loginHint);
    const at = latestAccessToken(cache, this.profile.clientId, account?.homeAccountId ?? '');
    const hasRt = !!account && !!refreshTokenOf(cache, this.profile.clientId, account.homeAccountId);
    let signedIn: boolean;
    if (this.appOnly) {
      const kind = this.profile.clientType === 'certificate' ? 'certificate' : 'client-secret';
      signedIn =
        (await store.get(this.profileName, kind)) !== undefined ||
        (kind === 'client-secret' && !!this.deps.env.OAUTHMAIL_CLIENT_SECRET);
      if (!signedIn) {
        problems.push({
          problem: `no ${kind.replace('-', ' ')} is stored for this app-only profile`,
          fix:
            kind === 'certificate'
              ? `oauthmail profile secret ${this.profileName} --certificate FILE.pem`
              : `oauthmail profile secret ${this.profileName} --stdin`,
        });
      }
    } else {
      signedIn = hasRt;
      if (!signedIn) problems.push({ problem: 'not signed in', fix: `oauthmail login ${this.profileName}` });
      else if (
        this.profile.clientType === 'secret' &&
        !(await store.get(this.profileName, 'client-secret'))
      ) {
        problems.push({
          problem: 'no client secret is stored',
          fix: `oauthmail profile secret ${this.profileName} --stdin`,
        });
      }
    }
    if (this.profile.clientSecretExpires && this.profile.clientType === 'secret') {
      const days = Math.floor(
        (Date.parse(this.profile.clientSecretExpires + 'T00:00:00Z') - Date.now()) / 86_400_000,
      );
      if (days < 0) {
        problems.push({
          problem: `the client secret expired on ${this.profile.clientSecretExpires}`,
          fix: `create a new secret, then: oauthmail profile secret ${this.profileName} --stdin --expires YYYY-MM-DD`,
        });
      } else if (days <= 30) {
        problems.push({
          problem: `the client secret expires in ${days} day${days === 1 ? '' : 's'} (${this.profile.clientSecretExpires})`,
          fix: `create a new secret, then: oauthmail profile secret ${this.profileName} --stdin --expires YYYY-MM-DD`,
        });
      }
    }
    return {
      signedIn,
      account: account?.username ?? null,
      location: store.location,
      storeKind: store.kind,
      accessTokenExpiresOn: at?.expiresOn ?? null,
      scopes: at?.scopes ?? [],
      hasRefreshToken: hasRt,
      problems,
    };
  }

  async importRefreshToken(file: TokenFile): Promise<TokenResult> {
    if (this.appOnly) {
      throw new UsageError('an app-only profile has no refresh token to import', {
        code: 'bad_usage',
        hint: `run: oauthmail login ${this.profileName}`,
      });
    }
    if (!file.refresh_token) {
      throw new UsageError('the token file has no refresh_token', {
        code: 'bad_input',
        hint: 'give a JSON file like {"access_token": "...", "refresh_token": "...", "expires_in": 3599}',
      });
    }
    registerSecret(file.refresh_token);
    registerSecret(file.access_token);
    const app = await this.app(this.cachePlugin({ fresh: true, lockWrites: true }));
    try {
      // the imported token is redeemed (and may be burned) by this request: see getToken
      const r = await critical(() =>
        app.acquireTokenByRefreshToken({
          refreshToken: file.refresh_token!,
          scopes: this.scopes,
          // the cache starts empty: without forceCache MSAL drops a refresh response whose
          // account is not cached yet ("account was logged out" protection)
          forceCache: true,
        }),
      );
      const result = this.toResult(r);
      const cache = await this.readCache();
      if (!pickAccount(cache)) {
        // Without an id_token MSAL caches no account, and so no refresh token we can use later.
        throw new AuthError(
          'the imported refresh token was redeemed, but the identity provider returned no account (id_token)',
          {
            code: 'import_no_account',
            hint: `include the openid scope when the token was issued, or sign in: oauthmail login ${this.profileName}`,
          },
        );
      }
      await this.health({ kind: 'sign-in' });
      return result;
    } catch (e) {
      throw this.mapError(e);
    }
  }

  async exportTokens(): Promise<TokenFile> {
    const t = await this.getToken({ minValiditySeconds: 60 });
    const cache = await this.readCache();
    const account = pickAccount(cache, this.profile.loginHint);
    const rt = account ? refreshTokenOf(cache, this.profile.clientId, account.homeAccountId) : undefined;
    const out: TokenFile = {
      access_token: t.accessToken,
      expires_in: t.expiresOn
        ? Math.max(0, Math.floor((t.expiresOn.getTime() - Date.now()) / 1000))
        : undefined,
      token_type: 'Bearer',
      scope: t.scopes.join(' '),
    };
    if (rt) out.refresh_token = rt;
    return out;
  }

  revokeHints(): string[] {
    const tenant =
      this.profile.tenant && !['common', 'organizations', 'consumers'].includes(this.profile.tenant)
        ? this.profile.tenant
        : undefined;
    return [
      "https://myapps.microsoft.com (your account: Apps → revoke the app's permissions)",
      `https://entra.microsoft.com/${tenant ? `${tenant}/` : ''}#view/Microsoft_AAD_IAM/StartboardApplicationsMenuBlade/~/AppAppsPreview (administrators: Enterprise applications → the app → Permissions; app ID ${this.profile.clientId})`,
    ];
  }
}

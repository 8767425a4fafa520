/**
 * Microsoft Entra ID: the grants through MSAL (`@azure/msal-node` 7), behind GrantAdapter.
 * MSAL is loaded only when a grant needs it (app.ts); a cached token is read without it
 * (cache.ts). The token service (token-service.ts) holds the lock, writes the cache MSAL
 * produced, and records health.
 *
 * MSAL keeps refresh tokens inside its cache and rotates them on every redemption; the silent
 * refresh is acquireTokenSilent(forceRefresh) on the cache read under the lock (MSAL's own
 * renewal window is a fixed 300 s; ours is --min-validity, and the token service already
 * decided that a refresh is needed). Interactive sign-ins start from an empty cache (the
 * profile holds one account).
 */
import type {
  AuthenticationResult,
  ConfidentialClientApplication,
  PublicClientApplication,
} from '@azure/msal-node';
import type { Profile } from '../../config/schema.js';
import { microsoftAuthority, scopesFor } from '../../config/presets.js';
import { AuthError, ConfigError, InternalError, UsageError } from '../../errors/index.js';
import { registerSecret } from '../../util/redact.js';
import type { EntraErrorContext } from '../errors/aadsts.js';
import {
  notSignedIn,
  type AuthorizationCodeGrant,
  type GrantAdapter,
  type Issued,
  type SignInUi,
} from '../grant.js';
import type { AuthDeps, LoginOptions, TokenResult, TokenStatus } from '../types.js';
import { MsalSession, type MsalApp } from './app.js';
import { findAccessToken, parseCache, pickAccount, refreshTokenOf } from './cache.js';
import { entraFromBody, entraFromResponse, mapMsalError } from './errors.js';
import { microsoftStatus } from './status.js';

const DEVICE_TIMEOUT_CODES = new Set([
  'device_code_polling_cancelled',
  'user_timeout_reached',
  'device_code_expired',
  'user_timeout',
]);

export class MicrosoftAdapter implements GrantAdapter {
  readonly kind = 'microsoft' as const;
  readonly appOnly: boolean;
  readonly appOnlyLogin = false;
  private readonly authority: string;
  private readonly scopes: string[];
  private readonly session: MsalSession;
  /** The application of the browser sign-in under way (its URL and its code share one). */
  private signIn: MsalApp | undefined;

  constructor(
    private readonly profileName: string,
    private readonly profile: Profile,
    private readonly deps: AuthDeps,
  ) {
    this.authority = microsoftAuthority(profile);
    this.appOnly = profile.flow === 'client-credentials';
    this.scopes = profile.scopes.length
      ? profile.scopes
      : scopesFor('microsoft', profile.capabilities, profile.flow, profile.transport);
    this.session = new MsalSession(profileName, profile, deps, this.authority);
    this.authorizationCode = this.codeGrant();
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

  private mapError(e: unknown, extra: Partial<EntraErrorContext> = {}) {
    return mapMsalError(e, this.errCtx(extra), this.session.discoveryError);
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

  /** Run an MSAL grant on `m`; its result and the cache MSAL wrote, errors mapped. */
  private async issue(
    m: MsalApp,
    grant: () => Promise<AuthenticationResult | null>,
    extra = {},
  ): Promise<Issued> {
    try {
      return { result: this.toResult(await grant()), text: m.written() };
    } catch (e) {
      throw this.mapError(e, extra);
    }
  }

  // ---- the cache ------------------------------------------------------------------------------

  cachedToken(text: string | undefined, minValiditySeconds: number): TokenResult | undefined {
    const cache = parseCache(text);
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

  refreshTokenOf(text: string | undefined): string | undefined {
    const cache = parseCache(text);
    const account = pickAccount(cache, this.profile.loginHint);
    return account ? refreshTokenOf(cache, this.profile.clientId, account.homeAccountId) : undefined;
  }

  status(text: string | undefined): Promise<TokenStatus> {
    return microsoftStatus(this.profileName, this.profile, this.deps, text, this.appOnly);
  }

  // ---- grants -----------------------------------------------------------------------------------

  async refresh(text: string | undefined): Promise<Issued> {
    const cached = pickAccount(parseCache(text), this.profile.loginHint);
    if (!cached) throw notSignedIn(this.profileName);
    let m: MsalApp;
    try {
      m = await this.session.app(text);
    } catch (e) {
      throw this.mapError(e);
    }
    return this.issue(m, async () => {
      const account = await m.app.getTokenCache().getAccountByHomeId(cached.homeAccountId);
      if (!account) throw notSignedIn(this.profileName);
      return m.app.acquireTokenSilent({ account, scopes: this.scopes, forceRefresh: true });
    });
  }

  async clientCredentials(text: string | undefined): Promise<Issued> {
    if (this.profile.clientType === 'public') {
      throw new ConfigError('client credentials need a confidential app (a secret or certificate)', {
        code: 'public_client_credentials',
        hint: `set clientType: oauthmail profile edit ${this.profileName} --set clientType=secret`,
      });
    }
    const m = await this.session.app(text);
    return this.issue(m, () =>
      (m.app as ConfidentialClientApplication).acquireTokenByClientCredential({
        scopes: this.scopes,
        skipCache: true,
      }),
    );
  }

  async deviceCode(o: LoginOptions, ui: SignInUi): Promise<Issued> {
    if (this.profile.clientType !== 'public') {
      throw new ConfigError(
        'device-code sign-in needs a public client app (MSAL offers it to public clients only)',
        {
          code: 'device_code_confidential',
          hint: `use the browser sign-in: oauthmail login ${this.profileName} --browser`,
        },
      );
    }
    const extra = this.profile.authParams ?? {};
    const m = await this.session.app(undefined, (s) => ui.slowDown(s));
    try {
      const r = await (m.app as PublicClientApplication).acquireTokenByDeviceCode({
        scopes: this.scopes,
        timeout: Math.max(1, Math.round(o.timeoutMs / 1000)),
        ...(Object.keys(extra).length ? { extraQueryParameters: extra } : {}),
        deviceCodeCallback: (d) => {
          const refused = this.session.deviceCodeError;
          if (!d.userCode && refused) throw entraFromBody(refused, this.errCtx());
          ui.showDeviceCode(d, this.profileName);
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
      return { result: this.toResult(r), text: m.written() };
    } catch (e) {
      const code = (e as { errorCode?: string })?.errorCode;
      if (code && DEVICE_TIMEOUT_CODES.has(code)) {
        throw new AuthError(`the device-code sign-in did not finish in time`, {
          code: 'login_timeout',
          hint: `run: oauthmail login ${this.profileName} --device (and enter the code sooner)`,
          cause: e,
        });
      }
      throw this.mapError(e);
    }
  }

  readonly authorizationCode: AuthorizationCodeGrant;

  private codeGrant(): AuthorizationCodeGrant {
    return {
      loopbackTls: true,
      pasteRedirectUri: this.profile.redirectUri ?? 'http://localhost',
      prepare: async () => {
        this.signIn = await this.session.app(undefined);
      },
      authorizationUrl: async ({ redirectUri, responseMode, pkce, options: o }) => {
        const m = (this.signIn ??= await this.session.app(undefined));
        const extra = this.profile.authParams ?? {};
        try {
          return await m.app.getAuthCodeUrl({
            scopes: this.scopes,
            redirectUri,
            responseMode: responseMode,
            codeChallenge: pkce.challenge,
            codeChallengeMethod: 'S256',
            state: pkce.state,
            nonce: pkce.nonce,
            ...(o.prompt ? { prompt: o.prompt } : {}),
            ...(o.loginHint ? { loginHint: o.loginHint } : {}),
            ...(o.domainHint ? { domainHint: o.domainHint } : {}),
            ...(Object.keys(extra).length ? { extraQueryParameters: extra } : {}),
          });
        } catch (e) {
          throw this.mapError(e, { redirectUri });
        }
      },
      authorizationError: (r, redirectUri) => entraFromResponse(r, this.errCtx({ redirectUri })),
      redeemCode: async ({ code, response, redirectUri, pkce }) => {
        const m = this.signIn!;
        const { state, nonce } = pkce;
        return this.issue(
          m,
          () =>
            m.app.acquireTokenByCode(
              { code, codeVerifier: pkce.verifier, redirectUri, scopes: this.scopes, state, nonce },
              {
                code,
                state,
                ...(response.client_info ? { client_info: response.client_info } : {}),
                nonce,
              },
            ),
          { redirectUri },
        );
      },
    };
  }

  assertImportable(): void {
    if (this.appOnly) {
      throw new UsageError('an app-only profile has no refresh token to import', {
        code: 'bad_usage',
        hint: `run: oauthmail login ${this.profileName}`,
      });
    }
  }

  async importRefreshToken(refreshToken: string): Promise<Issued> {
    const m = await this.session.app(undefined);
    const issued = await this.issue(m, () =>
      m.app.acquireTokenByRefreshToken({
        refreshToken,
        scopes: this.scopes,
        // the cache starts empty: without forceCache MSAL drops a refresh response whose
        // account is not cached yet ("account was logged out" protection)
        forceCache: true,
      }),
    );
    if (!pickAccount(parseCache(issued.text))) {
      // Without an id_token MSAL caches no account, and so no refresh token we can use later.
      issued.failAfterWrite = new AuthError(
        'the imported refresh token was redeemed, but the identity provider returned no account (id_token)',
        {
          code: 'import_no_account',
          hint: `include the openid scope when the token was issued, or sign in: oauthmail login ${this.profileName}`,
        },
      );
    }
    return issued;
  }

  revokeHints(): string[] {
    const t = this.profile.tenant;
    const tenant = t && !['common', 'organizations', 'consumers'].includes(t) ? t : undefined;
    return [
      "https://myapps.microsoft.com (your account: Apps → revoke the app's permissions)",
      `https://entra.microsoft.com/${tenant ? `${tenant}/` : ''}#view/Microsoft_AAD_IAM/StartboardApplicationsMenuBlade/~/AppAppsPreview (administrators: Enterprise applications → the app → Permissions; app ID ${this.profile.clientId})`,
    ];
  }
}

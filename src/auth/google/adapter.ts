/**
 * Google: user sign-in with google-auth-library's OAuth2Client, and Workspace service accounts
 * (service-account.ts), behind GrantAdapter.
 *
 * - Browser sign-in: authorization code with PKCE S256 through our loopback listener (RFC 8252
 *   §7.3), with `access_type=offline` and `prompt=consent`: Google returns a refresh token only
 *   for an offline request, and a second time only when consent is asked again.
 * - No device flow: Google's "TV and limited input" flow does not allow https://mail.google.com/
 *   (the only scope SMTP and IMAP accept), so `login --device` is refused before any request.
 * - Refresh: google-auth-library hands a rotated refresh token only to its `'tokens'` event, so
 *   every emitted set is kept, in order, and the token service stores them (still under the lock).
 */
import type { Credentials, OAuth2Client } from 'google-auth-library';
import type { Profile } from '../../config/schema.js';
import {
  GOOGLE_AUTH_ENDPOINT,
  GOOGLE_MAIL_SCOPE,
  GOOGLE_REVOKE_ENDPOINT,
  GOOGLE_TOKEN_ENDPOINT,
} from '../../config/presets.js';
import { ConfigError, InternalError, OauthmailError, UsageError } from '../../errors/index.js';
import { registerSecret } from '../../util/redact.js';
import { GOOGLE_NO_DEVICE, googleScopeWarning, oauthError } from '../errors/google-errors.js';
import type { AuthorizationCodeGrant, Issued } from '../grant.js';
import { errorBody, isNetworkError, networkError } from '../oauth-http.js';
import { parseStored, StoredTokenAdapter, type TokenResponse } from '../stored-tokens.js';
import type { AuthDeps, TokenStatus } from '../types.js';
import { serviceAccountToken } from './service-account.js';

function toResponse(c: Credentials): TokenResponse {
  registerSecret(c.access_token);
  registerSecret(c.refresh_token);
  registerSecret(c.id_token);
  return {
    access_token: c.access_token ?? undefined,
    refresh_token: c.refresh_token ?? undefined,
    expires_in: c.expiry_date ? Math.round((c.expiry_date - Date.now()) / 1000) : undefined,
    scope: c.scope ?? undefined,
    id_token: c.id_token ?? undefined,
  };
}

export class GoogleAdapter extends StoredTokenAdapter {
  readonly kind = 'google' as const;
  readonly appOnly: boolean;
  readonly appOnlyLogin = false;
  /** The client of the browser sign-in under way (its URL and its code share one). */
  private signIn: OAuth2Client | undefined;

  constructor(profileName: string, profile: Profile, deps: AuthDeps) {
    super(profileName, profile, deps);
    this.appOnly = profile.flow === 'service-account';
  }

  protected get scopes(): string[] {
    return this.profile.scopes.length ? this.profile.scopes : [GOOGLE_MAIL_SCOPE];
  }

  private get tokenUrl(): string {
    return this.profile.tokenEndpoint ?? GOOGLE_TOKEN_ENDPOINT;
  }

  private async client(redirectUri?: string): Promise<OAuth2Client> {
    const { OAuth2Client } = await import('google-auth-library');
    // Google's installed-app clients have a "secret" that is not secret, but the token
    // endpoint still asks for it; a profile without one is sent as a public client.
    const secret = await this.clientSecret();
    return new OAuth2Client({
      clientId: this.profile.clientId,
      ...(secret ? { clientSecret: secret } : {}),
      ...(redirectUri ? { redirectUri } : {}),
      endpoints: {
        oauth2AuthBaseUrl: this.profile.authorizationEndpoint ?? GOOGLE_AUTH_ENDPOINT,
        oauth2TokenUrl: this.tokenUrl,
        oauth2RevokeUrl: this.profile.revocationEndpoint ?? GOOGLE_REVOKE_ENDPOINT,
      },
      // our retry loop (the profile's policy, Retry-After) instead of gaxios' own, which retries
      // POSTs three times whatever the profile says and ignores Retry-After
      transporterOptions: { fetchImplementation: this.http, retryConfig: { shouldRetry: () => false } },
    });
  }

  /** google-auth-library (gaxios) errors → ours. */
  private mapError(e: unknown, during: 'login' | 'refresh', redirectUri?: string): OauthmailError {
    if (e instanceof OauthmailError) return e;
    const g = e as { response?: { status?: number; data?: unknown }; status?: number; message?: string };
    const data = g?.response?.data as { error?: unknown; error_description?: unknown } | undefined;
    if (data && typeof data === 'object' && typeof data.error === 'string') {
      return oauthError(
        {
          error: data.error,
          error_description: typeof data.error_description === 'string' ? data.error_description : undefined,
          status: g.response?.status,
        },
        this.errCtx({ during, redirectUri }),
        e,
      );
    }
    if (isNetworkError(e)) return networkError(this.tokenUrl, e);
    if (g?.response?.status) {
      return oauthError({ status: g.response.status }, this.errCtx({ during, redirectUri }), e);
    }
    return new InternalError(`Google sign-in failed: ${g?.message ?? String(e)}`, {
      code: 'auth_failed',
      cause: e,
    });
  }

  /**
   * Google's revocation endpoint (RFC 7009 shape, no client authentication). A token Google
   * already considers invalid (400 invalid_token) is as good as revoked.
   */
  async revoke(refreshToken: string): Promise<boolean> {
    if (this.appOnly) return false;
    const url = this.profile.revocationEndpoint ?? GOOGLE_REVOKE_ENDPOINT;
    let res: Response;
    try {
      res = await this.http(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: refreshToken }).toString(),
      });
    } catch (e) {
      throw networkError(url, e);
    }
    if (res.ok) return true;
    const body = await errorBody(res);
    if (res.status === 400 && body.error === 'invalid_token') return true;
    throw oauthError(body, this.errCtx({ during: 'refresh' }));
  }

  /**
   * Every token set the library emits is kept, in order. The event's object is copied at once:
   * refreshAccessToken() then overwrites its refresh_token with the one it was called with,
   * which would lose a rotated token.
   */
  protected async redeemRefreshToken(refreshToken: string): Promise<TokenResponse[]> {
    const client = await this.client();
    const emitted: TokenResponse[] = [];
    client.on('tokens', (t: Credentials) => {
      emitted.push(toResponse({ ...t }));
    });
    client.setCredentials({ refresh_token: refreshToken });
    let credentials: Credentials;
    try {
      ({ credentials } = await client.refreshAccessToken());
    } catch (e) {
      throw this.mapError(e, 'refresh');
    }
    // the library's returned credentials carry the OLD refresh token: prefer what it emitted
    return emitted.length ? emitted : [{ ...toResponse(credentials), refresh_token: undefined }];
  }

  async clientCredentials(text: string | undefined): Promise<Issued> {
    if (!this.appOnly) {
      throw new ConfigError(
        'Google has no client-credentials grant; use a service account for unattended mail',
        {
          code: 'google_no_client_credentials',
          hint: `oauthmail profile edit ${this.profileName} --set flow=service-account, then store the key: oauthmail profile secret ${this.profileName} --service-account-key FILE.json`,
        },
      );
    }
    const r = await serviceAccountToken({
      profileName: this.profileName,
      profile: this.profile,
      deps: this.deps,
      scopes: this.scopes,
      tokenUrl: this.tokenUrl,
      http: this.http,
      errCtx: this.errCtx({ serviceAccount: true, during: 'service-account' }),
    });
    return this.issued(this.merge(parseStored(text), r));
  }

  deviceCode(): Promise<Issued> {
    return Promise.reject(
      new UsageError(GOOGLE_NO_DEVICE, {
        code: 'google_no_device',
        hint: `run: oauthmail login ${this.profileName} --no-browser (and open the URL on this computer)`,
      }),
    );
  }

  readonly authorizationCode: AuthorizationCodeGrant = {
    loopbackTls: false,
    pasteRedirectUri: this.profile.redirectUri ?? 'http://localhost',
    prepare: (ui) => {
      const warning = googleScopeWarning(this.scopes);
      if (warning) ui.warn(warning);
      return Promise.resolve();
    },
    authorizationUrl: async ({ redirectUri, pkce, options: o }) => {
      const client = (this.signIn = await this.client(redirectUri));
      const { CodeChallengeMethod } = await import('google-auth-library');
      return client.generateAuthUrl({
        ...(this.profile.authParams ?? {}),
        access_type: 'offline',
        // without consent Google returns no refresh token on a second sign-in
        prompt: o.prompt && o.prompt !== 'consent' ? `consent ${o.prompt}` : 'consent',
        scope: this.scopes,
        state: pkce.state,
        redirect_uri: redirectUri,
        code_challenge: pkce.challenge,
        code_challenge_method: CodeChallengeMethod.S256,
        ...(o.loginHint ? { login_hint: o.loginHint } : {}),
      });
    },
    authorizationError: (r, redirectUri) => this.authorizationError(r, redirectUri),
    redeemCode: async ({ code, redirectUri, pkce, options: o }) => {
      try {
        const { tokens } = await this.signIn!.getToken({
          code,
          codeVerifier: pkce.verifier,
          redirect_uri: redirectUri,
        });
        return this.signedIn(toResponse(tokens), o.loginHint ?? this.defaultAccount());
      } catch (e) {
        throw this.mapError(e, 'login', redirectUri);
      }
    },
  };

  override async status(text: string | undefined): Promise<TokenStatus> {
    const st = await super.status(text);
    if (!this.appOnly) return st;
    // app-only: "signed in" means a key is stored; there is no refresh token to have
    const hasKey = (await this.deps.store.get(this.profileName, 'service-account')) !== undefined;
    const fix = `oauthmail profile secret ${this.profileName} --service-account-key FILE.json`;
    return {
      ...st,
      signedIn: hasKey,
      account: this.profile.user ?? null,
      problems: hasKey ? [] : [{ problem: 'no service-account key is stored', fix }],
    };
  }

  revokeHints(): string[] {
    return [
      'https://myaccount.google.com/connections (your account: Third-party apps & services → the app → Delete all connections)',
      'https://admin.google.com (Workspace administrators: Security → API controls → App access control)',
    ];
  }
}

/**
 * Google: user sign-in with google-auth-library's OAuth2Client, and Workspace service accounts.
 *
 * - Browser sign-in: authorization code with PKCE S256 through our loopback listener (RFC 8252
 *   §7.3), with `access_type=offline` and `prompt=consent`: Google returns a refresh token only
 *   for an offline request, and a second time only when consent is asked again.
 * - No device flow: Google's "TV and limited input" flow does not allow https://mail.google.com/
 *   (the only scope SMTP and IMAP accept), so `login --device` is refused before any request.
 * - Refresh: under the lock `token-<profile>` (see generic.ts). google-auth-library hands a
 *   rotated refresh token only to its `'tokens'` event, so every emitted set is written to the
 *   store at once, still under the lock.
 * - Service accounts (domain-wide delegation): a JWT bearer assertion (RFC 7523 §2.1) signed
 *   RS256 with the key from the secret store, `sub` = the mailbox user, posted to the profile's
 *   token endpoint. google-auth-library's JWT client (gtoken) posts to oauth2.googleapis.com
 *   whatever the profile says, which a test provider or a proxy setup cannot use, and the
 *   assertion is a few lines of node:crypto.
 */
import type { OAuth2Client, Credentials } from 'google-auth-library';
import type { Profile } from '../config/schema.js';
import {
  GOOGLE_AUTH_ENDPOINT,
  GOOGLE_MAIL_SCOPE,
  GOOGLE_REVOKE_ENDPOINT,
  GOOGLE_TOKEN_ENDPOINT,
} from '../config/presets.js';
import { ConfigError, InternalError, OauthmailError, UsageError } from '../errors/index.js';
import { GOOGLE_NO_DEVICE, googleScopeWarning, oauthError } from './errors/google-errors.js';
import { registerSecret } from '../util/redact.js';
import {
  isNetworkError,
  networkError,
  postForm,
  StoredTokenProvider,
  type TokenResponse,
} from './generic.js';
import type { AuthDeps, LoginOptions, TokenResult, TokenStatus } from './types.js';

interface ServiceAccountKey {
  type: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

export class GoogleProvider extends StoredTokenProvider {
  protected readonly providerKind = 'google' as const;
  private readonly serviceAccount: boolean;

  constructor(profileName: string, profile: Profile, deps: AuthDeps) {
    super(profileName, profile, deps);
    this.serviceAccount = profile.flow === 'service-account';
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
    const secret = await this.clientSecret(this.profile.clientType === 'secret');
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

  private toResponse(c: Credentials): TokenResponse {
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

  /**
   * Google's revocation endpoint (RFC 7009 shape, no client authentication). A token Google
   * already considers invalid (400 invalid_token) is as good as revoked.
   */
  protected async revokeRefreshToken(refreshToken: string): Promise<boolean> {
    if (this.serviceAccount) return false;
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
    const text = await res.text().catch(() => '');
    let body: { error?: unknown; error_description?: unknown } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // an HTML error page: the status says enough
    }
    if (res.status === 400 && body.error === 'invalid_token') return true;
    throw oauthError(
      {
        error: typeof body.error === 'string' ? body.error : undefined,
        error_description: typeof body.error_description === 'string' ? body.error_description : undefined,
        status: res.status,
      },
      this.errCtx({ during: 'refresh' }),
    );
  }

  /**
   * Called under the lock. Every token set the library emits is persisted before returning.
   * The event's object is copied at once: refreshAccessToken() then overwrites its
   * refresh_token with the one it was called with, which would lose a rotated token.
   */
  protected async redeemRefreshToken(refreshToken: string): Promise<TokenResponse> {
    const client = await this.client();
    const emitted: TokenResponse[] = [];
    client.on('tokens', (t: Credentials) => {
      emitted.push(this.toResponse({ ...t }));
    });
    client.setCredentials({ refresh_token: refreshToken });
    let credentials: Credentials;
    try {
      ({ credentials } = await client.refreshAccessToken());
    } catch (e) {
      throw this.mapError(e, 'refresh');
    } finally {
      let prev = (await this.readStored()) ?? { v: 1 as const, refresh_token: refreshToken };
      for (const r of emitted) {
        prev = this.merge(prev, r);
        await this.writeStored(prev);
      }
    }
    const last = emitted.at(-1);
    // the library's returned credentials carry the OLD refresh token: prefer what it emitted
    return last ?? { ...this.toResponse(credentials), refresh_token: undefined };
  }

  protected override appOnlyToken(): Promise<TokenResponse> | undefined {
    return this.serviceAccount ? this.serviceAccountToken() : undefined;
  }

  /** RFC 7523 §2.1 JWT bearer grant with Google's claims (iss, scope, aud, sub, iat, exp). */
  private async serviceAccountToken(): Promise<TokenResponse> {
    const text = await this.deps.store.get(this.profileName, 'service-account');
    const fix = `oauthmail profile secret ${this.profileName} --service-account-key FILE.json`;
    if (!text) {
      throw new ConfigError(`profile ${this.profileName} needs a service-account key and none is stored`, {
        code: 'missing_service_account',
        hint: `store it: ${fix}`,
      });
    }
    registerSecret(text);
    let key: ServiceAccountKey;
    try {
      key = JSON.parse(text) as ServiceAccountKey;
      if (key.type !== 'service_account' || !key.private_key || !key.client_email) throw new Error('shape');
    } catch {
      throw new ConfigError(
        `the stored service-account key of ${this.profileName} is not a Google JSON key`,
        {
          code: 'bad_service_account',
          hint: `store it again: ${fix}`,
        },
      );
    }
    registerSecret(key.private_key);
    if (!this.profile.user) {
      throw new ConfigError(`profile ${this.profileName} needs the mailbox user to impersonate`, {
        code: 'missing_user',
        hint: `set it: oauthmail profile edit ${this.profileName} --set user=name@your-domain`,
      });
    }
    const { createPrivateKey, sign } = await import('node:crypto');
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const header = b64({
      alg: 'RS256',
      typ: 'JWT',
      ...(key.private_key_id ? { kid: key.private_key_id } : {}),
    });
    const claims = b64({
      iss: key.client_email,
      sub: this.profile.user,
      scope: this.scopes.join(' '),
      aud: this.tokenUrl,
      iat: now,
      exp: now + 3600,
    });
    let signature: string;
    try {
      signature = sign(
        'RSA-SHA256',
        Buffer.from(`${header}.${claims}`),
        createPrivateKey(key.private_key),
      ).toString('base64url');
    } catch (e) {
      throw new ConfigError(
        `the stored service-account key of ${this.profileName} holds no usable private key`,
        {
          code: 'bad_service_account',
          hint: `store it again: ${fix}`,
          cause: e,
        },
      );
    }
    const assertion = `${header}.${claims}.${signature}`;
    registerSecret(assertion);
    this.deps.io.debug(`requesting a service-account token for ${this.profile.user}`);
    const r = (await postForm(
      this.tokenUrl,
      { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion },
      this.errCtx({ serviceAccount: true, during: 'service-account' }),
      this.http,
    )) as TokenResponse;
    return { ...r, scope: r.scope ?? this.scopes.join(' ') };
  }

  async login(o: LoginOptions): Promise<TokenResult> {
    if (this.serviceAccount) {
      return this.getToken({ forceRefresh: true });
    }
    if (o.method === 'device') {
      throw new UsageError(GOOGLE_NO_DEVICE, {
        code: 'google_no_device',
        hint: `run: oauthmail login ${this.profileName} --no-browser (and open the URL on this computer)`,
      });
    }
    if (o.method === 'client-credentials') {
      throw new ConfigError(
        'Google has no client-credentials grant; use a service account for unattended mail',
        {
          code: 'google_no_client_credentials',
          hint: `oauthmail profile edit ${this.profileName} --set flow=service-account, then store the key: oauthmail profile secret ${this.profileName} --service-account-key FILE.json`,
        },
      );
    }
    const warning = googleScopeWarning(this.scopes);
    if (warning) this.deps.io.err(warning);
    const { verifier, challenge, state } = await this.pkce();
    let client: OAuth2Client | undefined;
    return this.browserSignIn(
      o,
      state,
      async (redirectUri) => {
        client = await this.client(redirectUri);
        const { CodeChallengeMethod } = await import('google-auth-library');
        return client.generateAuthUrl({
          ...(this.profile.authParams ?? {}),
          access_type: 'offline',
          // without consent Google returns no refresh token on a second sign-in
          prompt: o.prompt && o.prompt !== 'consent' ? `consent ${o.prompt}` : 'consent',
          scope: this.scopes,
          state,
          redirect_uri: redirectUri,
          code_challenge: challenge,
          code_challenge_method: CodeChallengeMethod.S256,
          ...(o.loginHint ? { login_hint: o.loginHint } : {}),
        });
      },
      async ({ code, redirectUri }) => {
        try {
          const { tokens } = await client!.getToken({
            code,
            codeVerifier: verifier,
            redirect_uri: redirectUri,
          });
          const loginHint = o.loginHint ?? this.defaultAccount();
          return await this.storeLogin(this.toResponse(tokens), loginHint);
        } catch (e) {
          throw this.mapError(e, 'login', redirectUri);
        }
      },
    );
  }

  override async status(): Promise<TokenStatus> {
    const st = await super.status();
    if (!this.serviceAccount) return st;
    // app-only: "signed in" means a key is stored; there is no refresh token to have
    const hasKey = (await this.deps.store.get(this.profileName, 'service-account')) !== undefined;
    return {
      ...st,
      signedIn: hasKey,
      account: this.profile.user ?? null,
      problems: hasKey
        ? []
        : [
            {
              problem: 'no service-account key is stored',
              fix: `oauthmail profile secret ${this.profileName} --service-account-key FILE.json`,
            },
          ],
    };
  }

  revokeHints(): string[] {
    return [
      'https://myaccount.google.com/connections (your account: Third-party apps & services → the app → Delete all connections)',
      'https://admin.google.com (Workspace administrators: Security → API controls → App access control)',
    ];
  }
}

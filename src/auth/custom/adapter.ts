/**
 * Standards-based OAuth 2.0 providers ("custom" profiles) through openid-client 6, behind
 * GrantAdapter: authorization code with PKCE S256 (RFC 6749 §4.1, RFC 7636; openid-client checks
 * state, PKCE and the RFC 9207 `iss` parameter), device authorization (RFC 8628, openid-client
 * honours slow_down), refresh (RFC 6749 §6), client credentials, revocation (RFC 7009). Client
 * authentication and discovery: client.ts. Storage and merging: stored-tokens.ts.
 */
import type { Configuration, TokenEndpointResponse } from 'openid-client';
import { AuthError, ConfigError } from '../../errors/index.js';
import { registerSecret } from '../../util/redact.js';
import type { OAuthErrorContext } from '../errors/google-errors.js';
import type { AuthorizationCodeGrant, Issued, SignInUi } from '../grant.js';
import { StoredTokenAdapter, type TokenResponse } from '../stored-tokens.js';
import type { LoginOptions } from '../types.js';
import { mapOpenIdError, openIdConfiguration, type OpenIdClient } from './client.js';

function toResponse(t: TokenEndpointResponse): TokenResponse {
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    expires_in: t.expires_in,
    scope: t.scope,
    token_type: t.token_type,
    id_token: t.id_token,
  };
}

export class CustomAdapter extends StoredTokenAdapter {
  readonly kind = 'custom' as const;
  readonly appOnly = false;
  get appOnlyLogin(): boolean {
    return this.profile.flow === 'client-credentials';
  }
  private cfg: Promise<Configuration> | undefined;

  protected get scopes(): string[] {
    return this.profile.scopes;
  }

  private get scopeParam(): Record<string, string> {
    return this.scopes.length ? { scope: this.scopes.join(' ') } : {};
  }

  private lib(): Promise<OpenIdClient> {
    return import('openid-client');
  }

  private config(): Promise<Configuration> {
    return (this.cfg ??= this.clientSecret().then((secret) =>
      openIdConfiguration(this.profileName, this.profile, secret, this.http, (l) => this.deps.io.debug(l)),
    ));
  }

  private mapError(e: unknown, during: OAuthErrorContext['during'], redirectUri?: string) {
    return mapOpenIdError(e, this.profile, this.errCtx({ during, redirectUri }));
  }

  /** Run one openid-client call; its errors mapped for `during`. */
  private async call<T>(
    during: OAuthErrorContext['during'],
    f: (oc: OpenIdClient, c: Configuration) => Promise<T>,
  ) {
    const oc = await this.lib();
    const config = await this.config();
    try {
      return await f(oc, config);
    } catch (e) {
      throw await this.mapError(e, during);
    }
  }

  async revoke(refreshToken: string): Promise<boolean> {
    const config = await this.config();
    if (!config.serverMetadata().revocation_endpoint) return false;
    await this.call('refresh', (oc, c) =>
      oc.tokenRevocation(c, refreshToken, { token_type_hint: 'refresh_token' }),
    );
    return true;
  }

  protected async redeemRefreshToken(refreshToken: string): Promise<TokenResponse[]> {
    return [toResponse(await this.call('refresh', (oc, c) => oc.refreshTokenGrant(c, refreshToken)))];
  }

  async clientCredentials(): Promise<Issued> {
    const r = await this.call('login', (oc, c) => oc.clientCredentialsGrant(c, this.scopeParam));
    return this.issued(this.merge(undefined, toResponse(r), null));
  }

  /** RFC 8628: device authorization request, show the code, poll. */
  async deviceCode(o: LoginOptions, ui: SignInUi): Promise<Issued> {
    const config = await this.config();
    if (!config.serverMetadata().device_authorization_endpoint) {
      throw new ConfigError(`profile ${this.profileName} has no device authorization endpoint`, {
        code: 'no_device_endpoint',
        hint: `set it (oauthmail profile edit ${this.profileName} --set deviceEndpoint=https://...) or sign in in a browser: oauthmail login ${this.profileName} --browser`,
      });
    }
    const d = await this.call('login', (oc, c) => oc.initiateDeviceAuthorization(c, this.scopeParam));
    registerSecret(d.device_code);
    ui.showDeviceCode(
      { userCode: d.user_code, verificationUri: d.verification_uri, expiresIn: d.expires_in },
      this.profileName,
    );
    const deadline = AbortSignal.timeout(Math.min(o.timeoutMs, d.expires_in * 1000));
    const oc = await this.lib();
    try {
      const r = await oc.pollDeviceAuthorizationGrant(config, d, undefined, { signal: deadline });
      return this.signedIn(toResponse(r), this.defaultAccount());
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

  readonly authorizationCode: AuthorizationCodeGrant = {
    // RFC 8252 §8.3: the loopback IP literal (oidc-provider, for one, refuses `localhost` when the
    // client registered http://127.0.0.1)
    loopbackHost: '127.0.0.1',
    loopbackTls: false,
    pasteRedirectUri: this.profile.redirectUri ?? 'http://127.0.0.1/',
    prepare: async () => {
      const config = await this.config();
      if (!config.serverMetadata().authorization_endpoint) {
        throw new ConfigError(`no authorization endpoint is known for profile ${this.profileName}`, {
          code: 'no_authorization_endpoint',
          hint: `set it: oauthmail profile edit ${this.profileName} --set authorizationEndpoint=https://...`,
        });
      }
    },
    authorizationUrl: async ({ redirectUri, pkce, options: o }) => {
      const oc = await this.lib();
      return oc
        .buildAuthorizationUrl(await this.config(), {
          ...(this.profile.authParams ?? {}),
          // the normalised form (http://localhost:PORT/): openid-client sends the callback URL
          // without its query as redirect_uri, and RFC 6749 §4.1.3 wants the two identical
          redirect_uri: new URL(redirectUri).href,
          state: pkce.state,
          code_challenge: pkce.challenge,
          code_challenge_method: 'S256',
          ...this.scopeParam,
          ...(o.prompt ? { prompt: o.prompt } : {}),
          ...(o.loginHint ? { login_hint: o.loginHint } : {}),
        })
        .toString();
    },
    authorizationError: (r, redirectUri) => this.authorizationError(r, redirectUri),
    redeemCode: async ({ response, redirectUri, pkce, options: o }) => {
      // openid-client checks state, and `iss` (RFC 9207) against the issuer when the response
      // carries it; a profile without an issuer has nothing to check it against.
      const current = new URL(redirectUri);
      for (const [k, v] of Object.entries(response)) {
        if (v !== undefined && !(k === 'iss' && !this.profile.issuer)) current.searchParams.set(k, v);
      }
      const oc = await this.lib();
      try {
        const r = await oc.authorizationCodeGrant(await this.config(), current, {
          pkceCodeVerifier: pkce.verifier,
          expectedState: pkce.state,
        });
        return this.signedIn(toResponse(r), o.loginHint ?? this.defaultAccount(), o.prompt);
      } catch (e) {
        throw await this.mapError(e, 'login', redirectUri);
      }
    },
  };

  revokeHints(): string[] {
    return [
      `the account or admin pages of the identity provider${this.profile.issuer ? ` (${this.profile.issuer})` : ''}: revoke the grant of client ${this.profile.clientId}`,
    ];
  }
}

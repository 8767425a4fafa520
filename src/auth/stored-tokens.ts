/**
 * What Google and custom providers share: their `token-cache` secret (one JSON object holding
 * {refresh_token, access_token, expires_at, scope, account}), how a token response is merged into
 * it, status, and the refresh and import grants on top of one `redeemRefreshToken`. The adapters
 * (google/, custom/) say how to redeem; the token service stores the result.
 */
import type { Profile } from '../config/schema.js';
import { AuthError, InternalError } from '../errors/index.js';
import { registerSecret } from '../util/redact.js';
import { loadClientSecret } from './client-secret.js';
import type { OauthmailError } from '../errors/index.js';
import { oauthError, type OAuthErrorContext } from './errors/google-errors.js';
import type { AuthorizationResponse } from './loopback.js';
import type { AuthorizationCodeGrant, GrantAdapter, Issued, SignInUi } from './grant.js';
import { retryingFetch } from './http-retry.js';
import type { AuthDeps, LoginOptions, TokenResult, TokenStatus } from './types.js';

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

export abstract class StoredTokenAdapter implements GrantAdapter {
  abstract readonly kind: 'google' | 'custom';
  abstract readonly appOnly: boolean;
  abstract readonly appOnlyLogin: boolean;
  abstract readonly authorizationCode: AuthorizationCodeGrant;
  protected abstract get scopes(): string[];
  /** Redeem a refresh token; the responses to merge, in order (Google may emit several). */
  protected abstract redeemRefreshToken(refreshToken: string): Promise<TokenResponse[]>;
  abstract clientCredentials(text: string | undefined): Promise<Issued>;
  abstract deviceCode(o: LoginOptions, ui: SignInUi): Promise<Issued>;
  abstract revoke(refreshToken: string): Promise<boolean>;
  abstract revokeHints(): string[];

  constructor(
    protected readonly profileName: string,
    protected readonly profile: Profile,
    protected readonly deps: AuthDeps,
  ) {}

  private httpFetch: typeof fetch | undefined;
  /** fetch for the provider's endpoints: the profile's retry policy, one --verbose line per call. */
  protected get http(): typeof fetch {
    return (this.httpFetch ??= retryingFetch({
      retry: this.profile.retry,
      debug: (l) => this.deps.io.debug(l),
    }));
  }

  protected errCtx(extra: Partial<OAuthErrorContext> = {}): OAuthErrorContext {
    return { profile: this.profileName, provider: this.kind, clientId: this.profile.clientId, ...extra };
  }

  private secret: Promise<string | undefined> | undefined;
  /** The client secret, if the profile has one (store, then OAUTHMAIL_CLIENT_SECRET); read once. */
  protected clientSecret(): Promise<string | undefined> {
    return (this.secret ??= loadClientSecret(
      this.deps,
      this.profileName,
      this.profile.clientType === 'secret',
    ));
  }

  /** The error of an authorization response (RFC 6749 §4.1.2.1). */
  protected authorizationError(r: AuthorizationResponse, redirectUri: string): OauthmailError {
    return oauthError(
      { error: r.error, error_description: r.error_description },
      this.errCtx({ redirectUri, during: 'login' }),
    );
  }

  protected defaultAccount(): string | null {
    return this.profile.loginHint ?? this.profile.user ?? null;
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

  protected issued(t: StoredTokens): Issued {
    if (!t.access_token) {
      throw new InternalError('the identity provider returned no access token', { code: 'no_access_token' });
    }
    registerSecret(t.refresh_token);
    registerSecret(t.access_token);
    return { text: JSON.stringify(t), result: result(t, false) };
  }

  /** An interactive sign-in's answer; it replaces what was stored and must carry a refresh token. */
  protected signedIn(r: TokenResponse, account: string | null, prompt?: string): Issued {
    if (!r.refresh_token) {
      throw new AuthError('the identity provider returned no refresh token, so the sign-in would not last', {
        code: 'no_refresh_token',
        hint: this.noRefreshTokenHint(prompt ?? this.profile.prompt),
      });
    }
    return this.issued(this.merge(undefined, r, account));
  }

  /** What gets a refresh token next time, given what this sign-in asked for. */
  private noRefreshTokenHint(prompt: string | undefined): string {
    const n = this.profileName;
    if (this.kind === 'google') return `run: oauthmail login ${n} --prompt consent`;
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

  cachedToken(text: string | undefined, minValiditySeconds: number): TokenResult | undefined {
    const t = parseStored(text);
    const valid =
      !!t?.access_token &&
      (t.expires_at === undefined || t.expires_at - Date.now() > minValiditySeconds * 1000);
    return valid ? result(t, true) : undefined;
  }

  refreshTokenOf(text: string | undefined): string | undefined {
    return parseStored(text)?.refresh_token;
  }

  async status(text: string | undefined): Promise<TokenStatus> {
    const t = parseStored(text);
    const problems: TokenStatus['problems'] = [];
    const signedIn = !!t?.refresh_token;
    if (!signedIn) problems.push({ problem: 'not signed in', fix: `oauthmail login ${this.profileName}` });
    return Promise.resolve({
      signedIn,
      account: t?.account ?? null,
      location: this.deps.store.location,
      storeKind: this.deps.store.kind,
      accessTokenExpiresOn: t?.expires_at ? new Date(t.expires_at) : null,
      scopes: (t?.scope ?? '').split(/\s+/).filter(Boolean),
      hasRefreshToken: signedIn,
      problems,
    });
  }

  /** Redeem `refreshToken` and merge the answers into `prev`. */
  private async redeemInto(prev: StoredTokens, refreshToken: string): Promise<Issued> {
    let next = prev;
    for (const r of await this.redeemRefreshToken(refreshToken)) next = this.merge(next, r);
    return this.issued(next);
  }

  refresh(text: string | undefined, refreshToken: string): Promise<Issued> {
    return this.redeemInto(parseStored(text) ?? { v: 1, refresh_token: refreshToken }, refreshToken);
  }

  importRefreshToken(refreshToken: string): Promise<Issued> {
    return this.redeemInto({ v: 1, refresh_token: refreshToken }, refreshToken);
  }
}

function result(t: StoredTokens, fromCache: boolean): TokenResult {
  return {
    accessToken: t.access_token!,
    expiresOn: t.expires_at ? new Date(t.expires_at) : null,
    scopes: (t.scope ?? '').split(/\s+/).filter(Boolean),
    account: t.account ?? null,
    fromCache,
  };
}

/**
 * The contracts of the token service (token-service.ts):
 *
 * - GrantAdapter: what one identity provider library does (MSAL in microsoft/, openid-client in
 *   custom/, google-auth-library in google/): read its own stored cache format, and redeem each
 *   grant (refresh token, authorization code, device code, client credentials). An adapter never
 *   writes the store, takes the lock or records health: it returns what is to be stored (Issued)
 *   and the token service does the rest, the same way for every provider.
 * - SignInUi: what a sign-in shows a person (the URL, a pasted address, a device code). Declared
 *   here, implemented by the CLI (src/cli/signin/), so that auth prints nothing of its own.
 */
import { AuthError, type OauthmailError } from '../errors/index.js';
import type { AuthorizationResponse } from './loopback.js';
import type { Pkce } from './pkce.js';
import type { LoginOptions, TokenResult, TokenStatus } from './types.js';

/** What a grant produced: the cache text to store (undefined: nothing changed) and the token. */
export interface Issued {
  text: string | undefined;
  result: TokenResult;
  /** Thrown by the token service after the write (Microsoft: an imported token gave no account). */
  failAfterWrite?: OauthmailError;
}

export interface DeviceCodeInfo {
  userCode: string;
  verificationUri: string;
  expiresIn: number;
  message?: string;
}

/** The person-facing side of a sign-in; src/cli/signin/ implements it. */
export interface SignInUi {
  /** Browser sign-in: open the system browser when asked, show the URL, say how long we wait. */
  showSignInUrl(url: string, o: { openBrowser: boolean; timeoutMs: number }): Promise<void>;
  /**
   * `login --paste`: show the URL and what to do, then read the address the browser ended on (or
   * the bare code) from stdin; undefined at end of input or after timeoutMs.
   */
  readPastedRedirect(url: string, o: { redirectUri: string; timeoutMs: number }): Promise<string | undefined>;
  /** Device authorization (RFC 8628 §3.3): the code and where to enter it. */
  showDeviceCode(d: DeviceCodeInfo, profile: string): void;
  /** The provider asked to poll the device-code grant more slowly. */
  slowDown(seconds: number): void;
  /** An https loopback redirect served with oauthmail's own certificate (self-signed.ts). */
  selfSignedCertificate(c: { redirectUri: string; fingerprint: string; dir: string; created: boolean }): void;
  /** A warning before a sign-in starts (e.g. Google scopes SMTP/IMAP do not accept). */
  warn(text: string): void;
}

/** The adapter's part of a browser sign-in (authorize.ts runs the loopback listener or the paste). */
export interface AuthorizationCodeGrant {
  /**
   * Before the loopback listener starts: load what the sign-in needs (so that a missing secret
   * or endpoint fails first) and warn about the request (Google: scopes SMTP/IMAP do not accept).
   */
  prepare?(ui: SignInUi): Promise<void>;
  /** Default host of the loopback redirect (RFC 8252 §8.3: custom providers use 127.0.0.1). */
  readonly loopbackHost?: 'localhost' | '127.0.0.1';
  /** An https://localhost redirect gets oauthmail's own certificate (Microsoft only). */
  readonly loopbackTls: boolean;
  /** Redirect URI of `login --paste` (nothing listens there). */
  readonly pasteRedirectUri: string;
  /** The authorization URL for this sign-in's PKCE, state and nonce. */
  authorizationUrl(a: {
    redirectUri: string;
    responseMode: 'query' | 'form_post';
    pkce: Pkce;
    options: LoginOptions;
  }): Promise<string>;
  /** The error an authorization response carries (the browser shows it, the command exits with it). */
  authorizationError(r: AuthorizationResponse, redirectUri: string): OauthmailError;
  /** Redeem the code (RFC 6749 §4.1.3). */
  redeemCode(a: {
    code: string;
    response: AuthorizationResponse;
    redirectUri: string;
    pkce: Pkce;
    options: LoginOptions;
  }): Promise<Issued>;
}

export interface GrantAdapter {
  readonly kind: 'microsoft' | 'google' | 'custom';
  /** getToken redeems client credentials (or a service-account assertion), never a refresh token. */
  readonly appOnly: boolean;
  /** login uses the client-credentials grant whatever method the command chose. */
  readonly appOnlyLogin: boolean;

  // ---- the stored cache (the adapter's own format in the `token-cache` secret) ----
  /** A cached access token valid for at least minValiditySeconds, or undefined. */
  cachedToken(text: string | undefined, minValiditySeconds: number): TokenResult | undefined;
  /** The refresh token the cache holds for this profile's account. */
  refreshTokenOf(text: string | undefined): string | undefined;
  status(text: string | undefined): Promise<TokenStatus>;

  // ---- grants ----
  /** Redeem the stored refresh token (RFC 6749 §6); `text` is the cache read under the lock. */
  refresh(text: string | undefined, refreshToken: string): Promise<Issued>;
  /** App-only token; `text` is the current cache (undefined for a sign-in, which replaces it). */
  clientCredentials(text: string | undefined): Promise<Issued>;
  deviceCode(o: LoginOptions, ui: SignInUi): Promise<Issued>;
  readonly authorizationCode: AuthorizationCodeGrant;
  /** Checks before a refresh token from another tool is redeemed (throws to refuse). */
  assertImportable?(): void;
  importRefreshToken(refreshToken: string): Promise<Issued>;
  /** RFC 7009 revocation of the stored refresh token; false when no endpoint is known. */
  revoke?(refreshToken: string): Promise<boolean>;
  revokeHints(): string[];
}

/** The refresh token (or the account) is missing: a sign-in is needed. */
export function notSignedIn(profileName: string): AuthError {
  return new AuthError(`profile ${profileName} is not signed in`, {
    code: 'not_signed_in',
    hint: `run: oauthmail login ${profileName}`,
  });
}

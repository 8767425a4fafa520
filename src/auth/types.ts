/**
 * The provider-neutral contract between the commands (login, token, status, logout, import,
 * export), the mail code, and the token service (token-service.ts), which serves every provider
 * (Microsoft through MSAL, Google, standards-based providers through openid-client).
 */
import type { Readable } from 'node:stream';
import type { LockFn } from '../config/store.js';
import type { SecretStore } from '../secrets/types.js';
import type { SignInUi } from './grant.js';

/**
 * The terminal as auth sees it: where sign-in prompts and progress go (stderr, redacted), debug
 * lines, and stdin for a pasted redirect. Declared here and implemented by the CLI (src/cli/io.ts)
 * so that auth does not import the CLI.
 */
export interface AuthIo {
  readonly stdin: Readable & { isTTY?: boolean };
  readonly verbose: boolean;
  /** Talk on stderr (redacted). */
  err(text: string): void;
  /** A line on stderr with --verbose only. */
  debug(text: string): void;
}

/** What a provider needs from the CLI; injected so tests and other front ends can build it. */
export interface AuthDeps {
  io: AuthIo;
  env: NodeJS.ProcessEnv;
  /** Cross-process lock (Context.lock): `token-<profile>` guards the token cache. */
  lock: LockFn;
  /** The profile's secret store (token cache, client secret, certificate). */
  store: SecretStore;
  /** What a sign-in shows a person (src/cli/signin/); needed by `login` only. */
  ui?: SignInUi;
}

export type LoginMethod = 'browser' | 'device' | 'client-credentials';

export interface LoginOptions {
  /** Chosen by the command from flags, the profile's flow and the terminal. */
  method: LoginMethod;
  prompt?: 'select_account' | 'login' | 'consent' | 'none';
  loginHint?: string;
  domainHint?: string;
  /** Browser flow: open the system browser (false = print the URL and wait). */
  openBrowser: boolean;
  /** Give up waiting for the user after this long (browser redirect or device code). */
  timeoutMs: number;
  /**
   * Browser flow without a loopback listener (remote machines): print the URL, then read the
   * final redirect URL (or the bare code) from stdin. State and PKCE are still checked.
   */
  paste?: boolean;
}

/** Seconds a cached access token must still be valid for to be handed out (`token --min-validity`). */
export const DEFAULT_MIN_VALIDITY = 300;

export interface GetTokenOptions {
  /** A cached token is used only if it is valid for at least this long (default DEFAULT_MIN_VALIDITY). */
  minValiditySeconds?: number;
  /** Redeem the refresh token (or client credentials) even if the cached token is valid. */
  forceRefresh?: boolean;
}

export interface TokenResult {
  accessToken: string;
  expiresOn: Date | null;
  scopes: string[];
  /** Signed-in account (UPN) or null for app-only tokens. */
  account: string | null;
  /** True when the token came from the cache without a call to the identity provider. */
  fromCache: boolean;
}

export interface TokenStatus {
  signedIn: boolean;
  account: string | null;
  /** Where the tokens live, e.g. "keychain (Secret Service)" or a file path. */
  location: string;
  storeKind: string;
  accessTokenExpiresOn: Date | null;
  scopes: string[];
  hasRefreshToken: boolean;
  /** Problems and the command that fixes each. */
  problems: Array<{ problem: string; fix: string }>;
}

/** The common token-file shape other tools read and write ("refresh token file"). */
export interface TokenFile {
  access_token?: string;
  refresh_token?: string;
  expires_in?: number;
  token_type?: string;
  scope?: string;
}

export interface TokenProvider {
  readonly profileName: string;
  /** Interactive or app-only sign-in; stores the tokens. */
  login(options: LoginOptions): Promise<TokenResult>;
  /** Silent only: cache, else refresh under the lock; never prompts (AuthError exit 4 instead). */
  getToken(options?: GetTokenOptions): Promise<TokenResult>;
  /** Remove stored tokens; true if something was removed. */
  logout(): Promise<boolean>;
  status(): Promise<TokenStatus>;
  /** Redeem a refresh token from another tool and store the result. */
  importRefreshToken(file: TokenFile): Promise<TokenResult>;
  /** The current tokens in the common file shape (refreshes first if the access token is stale). */
  exportTokens(): Promise<TokenFile>;
  /** Where the user can revoke the grant, for `logout`. */
  revokeHints(): string[];
  /**
   * Revoke the stored refresh token at the provider (RFC 7009), for `logout`: 'revoked', or
   * 'nothing' when no refresh token is stored or no revocation endpoint is known; throws when the
   * provider could not be told (the caller then keeps the tokens). Microsoft has no endpoint.
   */
  revokeAtProvider?(): Promise<'revoked' | 'nothing'>;
}

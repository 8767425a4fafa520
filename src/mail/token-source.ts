/**
 * What the mail code needs from the auth code: the SASL user and a way to get an access token,
 * forcing a refresh when a server refused one that looked valid. The CLI builds one per profile
 * (Context.tokenSource) from the profile's TokenProvider; tests can build one from any token.
 */
import type { Provider } from '../config/schema.js';

export interface TokenSource {
  /** The SASL user (the mailbox: may be a shared mailbox, not the signed-in user). */
  readonly user: string;
  /** The profile's name and provider, for hints that name the fix (`oauthmail login work`). */
  readonly profile?: string;
  readonly provider?: Provider;
  /**
   * A valid access token. With forceRefresh, a new one from the identity provider even if the
   * cached one has not expired (used once after a server refused the cached one).
   */
  getAccessToken(opts?: { forceRefresh?: boolean }): Promise<string>;
}

/** A source that always hands out the same token (tests, `--access-token-stdin` style hand-offs). */
export function staticTokenSource(user: string, token: string): TokenSource {
  return { user, getAccessToken: () => Promise.resolve(token) };
}

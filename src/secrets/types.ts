/**
 * Secret storage. A secret is addressed by (profile, kind); the store decides where it lives.
 *
 * Kinds:
 *   client-secret    the app registration's client secret
 *   certificate      PEM private key (+ certificate) of a confidential client
 *   service-account  a Google service-account JSON key
 *   token-cache      the serialized token cache (MSAL cache JSON, or our own JSON for Google/custom)
 */
export type SecretKind = 'client-secret' | 'certificate' | 'service-account' | 'token-cache';

export const SECRET_KINDS: readonly SecretKind[] = [
  'client-secret',
  'certificate',
  'service-account',
  'token-cache',
];

export type StoreKind = 'keychain' | 'file' | 'memory';

/**
 * The directories the stores and locks use: the part of config's Paths (src/config/paths.ts) that
 * secrets needs, declared here so that secrets does not import config (config imports secrets).
 */
export interface StorePaths {
  dataDir: string;
  secretsDir: string;
  locksDir: string;
}

export interface SecretStore {
  readonly kind: StoreKind;
  /** Human-readable place, e.g. "keychain (Secret Service)" or "/home/u/.local/share/oauthmail/secrets". */
  readonly location: string;
  get(profile: string, kind: SecretKind): Promise<string | undefined>;
  set(profile: string, kind: SecretKind, value: string): Promise<void>;
  /** Returns true if something was deleted. */
  delete(profile: string, kind: SecretKind): Promise<boolean>;
  /**
   * Optional: do now what a following set() of this secret would otherwise do first (derive the
   * encryption key, load the keychain module, clear leftovers), so that the set itself is short.
   * A token refresh calls it before its request (the new refresh token exists only in memory from
   * the provider's answer until the set is done). Call it under the lock that serializes the
   * secret's writes (`token-<profile>`), held until the set: what it checked must still hold.
   */
  prepare?(profile: string, kind: SecretKind): Promise<void>;
  /**
   * Optional: a synchronous keeper for the refresh token that will replace `old` in the profile's
   * token cache (src/secrets/rescue.ts, the rescue file; src/util/critical.ts armRescue). Call it
   * before the refresh request.
   */
  rescuer?(profile: string, old: string): (next: string) => void;
}

/**
 * The dependencies a command gets: I/O, paths, the config store, profile operations, secret
 * stores and the cross-process lock. Built once per run by main(); tests build their own.
 * Heavy or optional modules (the keychain, MSAL...) are imported only when first used.
 */
import { resolvePaths, type Paths } from '../config/paths.js';
import { Profiles } from '../config/profiles.js';
import type { Profile } from '../config/schema.js';
import { ConfigStore, type LockFn } from '../config/store.js';
import type { SecretStore } from '../secrets/types.js';
import type { TokenSource } from '../mail/token-source.js';
import { ConfigError } from '../errors/index.js';
import type { Io } from './io.js';

export interface GlobalOptions {
  profile?: string;
  json?: boolean;
  verbose?: boolean;
  input?: boolean;
}

export class Context {
  readonly paths: Paths;
  readonly config: ConfigStore;
  readonly profiles: Profiles;
  private stores = new Map<string, Promise<SecretStore>>();

  constructor(
    readonly io: Io,
    readonly env: NodeJS.ProcessEnv,
  ) {
    this.paths = resolvePaths(env);
    this.config = new ConfigStore(this.paths, this.lock);
    this.profiles = new Profiles(this.config, (p) => this.secretsFor(p));
  }

  /** Cross-process lock on `name` (e.g. "config", "token-work"). */
  readonly lock: LockFn = async (name, fn) => {
    const { withLock } = await import('../secrets/lock.js');
    return withLock(this.paths, name, fn);
  };

  /**
   * Resolve a profile (explicit name, OAUTHMAIL_PROFILE, default) and the token source the mail
   * code uses for it: SASL user = the profile's mailbox user, tokens from its TokenProvider.
   */
  async tokenSource(explicitName?: string): Promise<{ name: string; profile: Profile; source: TokenSource }> {
    const { resolveProfileName } = await import('../config/store.js');
    const config = await this.config.load();
    const { name, profile } = resolveProfileName(config, explicitName, this.env);
    if (!profile.user) {
      throw new ConfigError(`profile ${name} has no mailbox user`, {
        code: 'no_user',
        hint: `set it: oauthmail profile edit ${name} --set user=you@example.com`,
      });
    }
    const { tokenProviderFor } = await import('../auth/index.js');
    const provider = await tokenProviderFor(this, name, profile);
    const user = profile.user;
    return {
      name,
      profile,
      source: {
        user,
        profile: name,
        provider: profile.provider,
        getAccessToken: async (opts) =>
          (await provider.getToken({ forceRefresh: !!opts?.forceRefresh })).accessToken,
      },
    };
  }

  /** The secret store a profile's `storage` setting selects (opened once per run). */
  secretsFor(profile: Pick<Profile, 'storage'>): Promise<SecretStore> {
    const storage = profile.storage;
    let s = this.stores.get(storage);
    if (!s) {
      s = import('../secrets/open.js').then(({ openSecretStore }) =>
        openSecretStore({ storage, paths: this.paths, env: this.env, warn: (m: string) => this.io.warn(m) }),
      );
      this.stores.set(storage, s);
    }
    return s;
  }
}

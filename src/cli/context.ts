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

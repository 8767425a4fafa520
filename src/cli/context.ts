/**
 * The dependencies a command gets: I/O, the environment, a clock, the run's interrupt (and its
 * AbortSignal), paths, the config store, profile operations, secret stores and the
 * cross-process lock. Built once per run by main(); tests build their own (Context.forTest).
 * Heavy or optional modules (the keychain, MSAL...) are imported only when first used.
 */
import { resolvePaths, type Paths } from '../config/paths.js';
import { Profiles } from '../config/profiles.js';
import type { Profile } from '../config/schema.js';
import { ConfigStore, type LockFn } from '../config/store.js';
import type { SecretStore } from '../secrets/types.js';
import type { TokenSource } from '../mail/token-source.js';
import { ConfigError } from '../errors/index.js';
import { Io } from './io.js';
import { TerminalSignIn } from './signin/index.js';
import { Interrupt } from '../util/interrupt.js';

export interface GlobalOptions {
  profile?: string;
  json?: boolean;
  verbose?: boolean;
  input?: boolean;
}

/** Time, for commands (tests pass their own). */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export class Context {
  readonly paths: Paths;
  readonly config: ConfigStore;
  readonly profiles: Profiles;
  /** What a sign-in shows on the terminal (auth's SignInUi). */
  readonly signIn: TerminalSignIn;
  private stores = new Map<string, Promise<SecretStore>>();

  constructor(
    readonly io: Io,
    readonly env: NodeJS.ProcessEnv,
    /** The run's SIGINT/SIGTERM rule (util/interrupt.ts); commands claim it to stop in order. */
    readonly interrupt: Interrupt = new Interrupt({
      exitNow: () => undefined,
      unclaimed: () => undefined,
    }),
    readonly clock: Clock = systemClock,
  ) {
    this.signIn = new TerminalSignIn(io, env);
    this.paths = resolvePaths(env);
    this.config = new ConfigStore(this.paths, this.lock);
    this.profiles = new Profiles(this.config, (p) => this.secretsFor(p));
  }

  /** Aborted when the user asked the run to stop (a SIGINT/SIGTERM a command claimed). */
  get signal(): AbortSignal {
    return this.interrupt.signal;
  }

  /** A context on memory streams (Io.Test) for in-process tests; `interrupt.deliver` plays a signal. */
  static forTest(env: NodeJS.ProcessEnv, o: { stdin?: string; tty?: boolean; clock?: Clock } = {}) {
    const t = Io.Test({ env, ...(o.stdin !== undefined ? { stdin: o.stdin } : {}), tty: !!o.tty });
    const did: string[] = [];
    const interrupt = new Interrupt(
      { exitNow: (c) => did.push(`exit ${c}`), unclaimed: (s) => did.push(`default ${s}`) },
      (l) => t.io.err(l),
    );
    return { ctx: new Context(t.io, env, interrupt, o.clock ?? systemClock), ...t, interruptActions: did };
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
  async tokenSource(
    explicitName?: string,
    /** The profile already resolved from the config this run read (the config is not read again). */
    resolved?: { name: string; profile: Profile },
  ): Promise<{ name: string; profile: Profile; source: TokenSource }> {
    const { name, profile } =
      resolved ??
      (await import('../config/store.js')).resolveProfileName(
        await this.config.load(),
        explicitName,
        this.env,
      );
    if (!profile.user) {
      throw new ConfigError(`profile ${name} has no mailbox user`, {
        code: 'no_user',
        hint: `set it: oauthmail profile edit ${name} --set user=you@example.com`,
      });
    }
    const { tokenProviderFor } = await import('../auth/index.js');
    const provider = await tokenProviderFor(this, name, profile).catch(async (e: unknown) => {
      throw (await this.keychainExplains(name, profile, e)) ?? e;
    });
    const user = profile.user;
    return {
      name,
      profile,
      source: {
        user,
        profile: name,
        provider: profile.provider,
        getAccessToken: async (opts) => {
          try {
            return (await provider.getToken({ forceRefresh: !!opts?.forceRefresh })).accessToken;
          } catch (e) {
            throw (await this.keychainExplains(name, profile, e)) ?? e;
          }
        },
      },
    };
  }

  /**
   * "Not signed in" (or "keychain unavailable") where the truth is "signed in, in a keychain this
   * session cannot reach": storage keychain without one, or storage auto that fell back to the file
   * store for a profile that was signed in (token health says when) and has no tokens in the file.
   * Returns the error to throw instead (exit 3, with the cron set-up), or undefined.
   */
  async keychainExplains(name: string, profile: Profile, e: unknown): Promise<Error | undefined> {
    const code = (e as { code?: string })?.code;
    if (code !== 'not_signed_in' && code !== 'keychain_unavailable') return undefined;
    const { KeychainUnreachableError, describeUnavailable } = await import('../secrets/open.js');
    if (code === 'keychain_unavailable') {
      const reason = (e as { reason?: string }).reason;
      return reason ? new KeychainUnreachableError(reason, (e as Error).cause, name) : undefined;
    }
    if (profile.storage !== 'auto' && profile.storage !== 'keychain') return undefined;
    const store = await this.secretsFor(profile).catch(() => undefined);
    if (!store || store.kind !== 'file') return undefined;
    const { readHealth } = await import('../auth/health.js');
    const rec = (await readHealth(this.env)).profiles[name];
    if (!rec?.obtainedAt) return undefined;
    if ((await store.get(name, 'token-cache').catch(() => 'unreadable')) !== undefined) return undefined;
    const { KeychainStore } = await import('../secrets/keychain.js');
    const probe = await new KeychainStore({ env: this.env }).probe();
    if (probe.ok) return undefined;
    return new KeychainUnreachableError(
      `${describeUnavailable(probe, this.env)}; profile ${name} was signed in on ${rec.obtainedAt} and its tokens are not in the file store, so they are in the keychain, which this session cannot reach (it is not a missing sign-in)`,
      e,
      name,
    );
  }

  /** The secret store a profile's `storage` setting selects (opened once per run). */
  secretsFor(profile: Pick<Profile, 'storage'>): Promise<SecretStore> {
    const storage = profile.storage;
    let s = this.stores.get(storage);
    if (!s) {
      s = import('../secrets/open.js').then(({ openSecretStore }) =>
        openSecretStore({
          storage,
          paths: this.paths,
          env: this.env,
          warn: (m: string) => this.io.warn(m),
          // keychain items are keyed per config folder; older ones move here on first use
          namespace: () => this.config.id(),
          moveLock: (fn) => this.lock('keychain-move', fn),
        }),
      );
      this.stores.set(storage, s);
    }
    return s;
  }
}

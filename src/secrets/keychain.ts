/**
 * OS keychain store through keytar (Secret Service on Linux, Keychain on macOS, Credential
 * Manager on Windows). Service `oauthmail`, account `<config id>/<profile>/<kind>`: the keychain
 * is one per user, config folders are many (a test config beside the real one, one per job), and
 * each must keep its own sign-ins. Items from before configs had an ID (`<profile>/<kind>`) move
 * to the first config that uses them.
 *
 * keytar is an optionalDependency and is imported lazily: a missing or unloadable module means
 * "keychain unavailable", never a crash. Every keytar call runs under a timeout (default
 * 3000 ms, OAUTHMAIL_KEYCHAIN_TIMEOUT_MS overrides) because libsecret can block for the D-Bus
 * default of 25 s (e.g. when HOME does not exist, the activated gnome-keyring cannot start).
 *
 * keytar's native calls cannot be cancelled. A pending one keeps Node's event loop alive until it
 * settles, and process.exit() does not help either: Node joins the libuv threadpool threads on
 * exit (measured here: process.exit() called 1 s in returns to the shell at 25 s; with a bus
 * peer that never answers the D-Bus handshake, never). So:
 *   - the one known cause of the 25 s hang, a HOME that does not exist (gnome-keyring, started by
 *     D-Bus activation, cannot create its folders), is checked first and keytar is not called;
 *   - a session bus that accepts connections but never answers (the case that held the process
 *     for ever) is caught before keytar is called: our own D-Bus client (./dbus.ts) connects,
 *     authenticates and says Hello on a socket of its own, under the timeout;
 *   - a bus that answers but whose Secret Service activation never completes (the other case
 *     that held the process ~25 s) is caught the same way: before keytar is loaded, our own D-Bus
 *     client (./dbus.ts, ./secret-service.ts) asks whether the Secret Service runs or can be
 *     started, under the timeout;
 *   - after any other timeout pendingKeychainCalls() is > 0, and only a signal ends the process
 *     at once (the CLI decides; see the note on pendingKeychainCalls).
 * Reads on Linux do not use keytar at all: our client looks the item up the way keytar's
 * getPassword does (same attributes) and reads it over a plain Secret Service session on the
 * private session bus. That is as fast as keytar's call, saves loading the native module and
 * its probe call (the `token` start-up path), answers "locked" instead of "nothing stored" for
 * a locked keyring, and can be abandoned at the timeout like any socket. Writes and deletes go
 * the same way (the write that ends a token refresh is then one round trip on an open
 * connection); keytar does them when ours cannot: a locked keyring (its prompt), or any trouble.
 */
import { existsSync } from 'node:fs';
import { registerSecret } from '../util/redact.js';
import { assertSafeName } from './file.js';
import { SplitStore, defaultSplitLimit, type RawBackend } from './split.js';
import type { SecretKind, SecretStore } from './types.js';

export const KEYCHAIN_SERVICE = 'oauthmail';
import {
  KeychainUnavailableError,
  keychainTimeoutMs,
  loadKeytar,
  message,
  withTimeout,
  type KeytarLike,
} from './keytar.js';

export {
  DEFAULT_KEYCHAIN_TIMEOUT_MS,
  KEYCHAIN_UNAVAILABLE_HINT,
  KeychainUnavailableError,
  keychainTimeoutMs,
  pendingKeychainCalls,
  type KeytarLike,
} from './keytar.js';

export interface KeychainStoreOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides OAUTHMAIL_KEYCHAIN_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Per-entry limit for the splitting layer (default: 2,560 bytes on Windows). */
  splitLimitBytes?: number;
  /** For tests: a keytar stand-in (then reads use it too, not the D-Bus reader). */
  loadKeytar?: () => Promise<KeytarLike>;
  platform?: NodeJS.Platform;
  /**
   * The config's ID (Config.id), which keys the items per config folder: account
   * `<id>/<profile>/<kind>`. Without one, the account is `<profile>/<kind>` (before 0.x every
   * config shared those: see moveLock).
   */
  namespace?: string | (() => Promise<string | undefined>);
  /**
   * Items stored before the config had an ID (`<profile>/<kind>`) are moved to the config's own
   * account on first use, under this lock (the first config that uses the name claims them).
   * Without it, such items are not looked at.
   */
  moveLock?: <T>(fn: () => Promise<T>) => Promise<T>;
}

export type ProbeResult =
  { ok: true; ms: number } | { ok: false; ms: number; reason: string; error: KeychainUnavailableError };

export class KeychainStore implements SecretStore {
  readonly kind = 'keychain' as const;
  readonly location: string;
  readonly timeoutMs: number;
  private readonly split: SplitStore;
  private readonly load: () => Promise<KeytarLike>;
  private keytar: Promise<KeytarLike> | undefined;
  private readonly platform: NodeJS.Platform;
  /** Linux with a session bus: probe and read over our own D-Bus client (see the note at the top). */
  private readonly ownReader: boolean;
  private prechecked: Promise<void> | undefined;
  /** The connection the precheck opened, kept (unref'd: idle, it does not hold the process) for reads. */
  private bus: import('./dbus.js').DBusConnection | undefined;

  private readonly namespaceOption: KeychainStoreOptions['namespace'];
  private namespace: Promise<string | undefined> | undefined;
  private readonly moveLock: KeychainStoreOptions['moveLock'];

  constructor(options: KeychainStoreOptions = {}) {
    this.namespaceOption = options.namespace;
    this.moveLock = options.moveLock;
    const platform = options.platform ?? process.platform;
    this.platform = platform;
    this.timeoutMs = options.timeoutMs ?? keychainTimeoutMs(options.env ?? process.env);
    this.load = options.loadKeytar ?? loadKeytar;
    this.ownReader = !options.loadKeytar && isSecretServicePlatform(platform);
    this.location =
      platform === 'darwin'
        ? 'keychain (macOS Keychain)'
        : platform === 'win32'
          ? 'keychain (Windows Credential Manager)'
          : 'keychain (Secret Service)';
    this.split = new SplitStore(this.backend(), {
      limitBytes: options.splitLimitBytes ?? defaultSplitLimit(platform),
    });
  }

  private kt(): Promise<KeytarLike> {
    this.keytar ??= this.precheck()
      .then(() => this.load())
      .catch((e: unknown) => {
        throw e instanceof KeychainUnavailableError ? e : new KeychainUnavailableError(message(e), e);
      });
    return this.keytar;
  }

  /**
   * Before keytar is called (its calls cannot be cancelled), on Linux-like systems: HOME must exist
   * (gnome-keyring, started by D-Bus activation, cannot run without it, and libsecret then waits
   * the 25 s D-Bus timeout), and the Secret Service must run or start within the timeout, asked
   * over our own connection. keytar reads the real process environment, so this checks process.env.
   */
  private precheck(): Promise<void> {
    this.prechecked ??= (async () => {
      if (!isSecretServicePlatform(this.platform)) return;
      const home = process.env.HOME;
      if (home && !existsSync(home)) {
        throw new KeychainUnavailableError(`HOME (${home}) does not exist, so no keyring can start`);
      }
      const address = process.env.DBUS_SESSION_BUS_ADDRESS;
      if (!address) return; // keytar says so in its own words, at once
      const { openSecretService } = await import('./secret-service.js');
      const r = await openSecretService(address, this.timeoutMs);
      if (!r.ok) throw new KeychainUnavailableError(r.reason);
      if (this.ownReader) this.bus = r.conn.unref();
      else r.conn.close();
    })();
    return this.prechecked;
  }

  /**
   * One read over our own D-Bus client, on the precheck's connection: the same item
   * keytar.getPassword would return.
   */
  private async readOwn(account: string): Promise<string | undefined> {
    await this.precheck();
    const { lookupOn, keytarAttributes } = await import('./secret-service.js');
    const r = await lookupOn(this.bus!, keytarAttributes(KEYCHAIN_SERVICE, account), this.timeoutMs);
    if (r.status === 'found') return r.value;
    if (r.status === 'absent') return undefined;
    if (r.status === 'locked')
      throw new KeychainUnavailableError(
        'the keyring is locked and cannot be unlocked from here (unlock it in the desktop session, or with gnome-keyring-daemon --unlock)',
      );
    throw new KeychainUnavailableError(r.reason);
  }

  /**
   * A write over our own D-Bus client, as keytar.setPassword would store it: one round trip on
   * the open connection instead of loading keytar and libsecret opening its own (the write that
   * ends a token refresh must be quick, see SecretStore.prepare). False: keytar should do it (a
   * locked keyring, whose prompt keytar handles, or any trouble, which it reports in its words).
   */
  private async writeOwn(account: string, value: string): Promise<boolean> {
    if (!this.ownReader || !process.env.DBUS_SESSION_BUS_ADDRESS) return false;
    await this.precheck();
    const { storeOn, keytarAttributes } = await import('./secret-service.js');
    const attrs = keytarAttributes(KEYCHAIN_SERVICE, account);
    const r = await storeOn(this.bus!, attrs, `${KEYCHAIN_SERVICE}/${account}`, value, this.timeoutMs);
    return r.status === 'stored';
  }

  /** A delete over our own D-Bus client (see writeOwn); undefined: keytar should do it. */
  private async deleteOwn(account: string): Promise<boolean | undefined> {
    if (!this.ownReader || !process.env.DBUS_SESSION_BUS_ADDRESS) return undefined;
    await this.precheck();
    const { deleteOn, keytarAttributes } = await import('./secret-service.js');
    const r = await deleteOn(this.bus!, keytarAttributes(KEYCHAIN_SERVICE, account), this.timeoutMs);
    return r.status === 'deleted' ? true : r.status === 'absent' ? false : undefined;
  }

  private backend(): RawBackend {
    const ms = () => this.timeoutMs;
    return {
      get: async (account) => {
        if (this.ownReader && process.env.DBUS_SESSION_BUS_ADDRESS) return this.readOwn(account);
        const k = await this.kt();
        const v = await withTimeout('read', ms(), () => k.getPassword(KEYCHAIN_SERVICE, account));
        return v ?? undefined;
      },
      set: async (account, value) => {
        if (await this.writeOwn(account, value)) return;
        const k = await this.kt();
        await withTimeout('write', ms(), () => k.setPassword(KEYCHAIN_SERVICE, account, value));
      },
      delete: async (account) => {
        const own = await this.deleteOwn(account);
        if (own !== undefined) return own;
        const k = await this.kt();
        return withTimeout('delete', ms(), () => k.deletePassword(KEYCHAIN_SERVICE, account));
      },
    };
  }

  /**
   * A cheap check that the keychain answers: a lookup of an account that never exists, under the
   * timeout. (Not findCredentials: that would pull every stored secret into memory.)
   */
  async probe(): Promise<ProbeResult> {
    const t0 = performance.now();
    try {
      if (this.ownReader && process.env.DBUS_SESSION_BUS_ADDRESS) {
        // the Secret Service runs (or started) and answers: enough to read; keytar loads on a write
        await this.precheck();
        return { ok: true, ms: performance.now() - t0 };
      }
      const k = await this.kt();
      await withTimeout('probe', this.timeoutMs, () => k.getPassword(KEYCHAIN_SERVICE, '.probe'));
      return { ok: true, ms: performance.now() - t0 };
    } catch (e) {
      const error = e instanceof KeychainUnavailableError ? e : new KeychainUnavailableError(message(e), e);
      return { ok: false, ms: performance.now() - t0, reason: error.reason, error };
    }
  }

  private ns(): Promise<string | undefined> {
    const o = this.namespaceOption;
    this.namespace ??= typeof o === 'function' ? o() : Promise.resolve(o);
    return this.namespace;
  }

  async get(profile: string, kind: SecretKind): Promise<string | undefined> {
    const ns = await this.ns();
    const own = account(ns, profile, kind);
    let v = await this.split.get(own);
    if (v === undefined && ns !== undefined && this.moveLock) {
      const legacy = account(undefined, profile, kind);
      if ((await this.split.get(legacy)) !== undefined) {
        // under the lock, looked at again: a concurrent process may have moved it (and a refresh
        // may have replaced it since), and the config's own item always wins
        v = await this.moveLock(async () => {
          const now = await this.split.get(own);
          if (now !== undefined) return now;
          const old = await this.split.get(legacy);
          if (old === undefined) return undefined;
          await this.split.set(own, old);
          await this.split.delete(legacy);
          return old;
        });
      }
    }
    registerSecret(v);
    return v;
  }

  async set(profile: string, kind: SecretKind, value: string): Promise<void> {
    registerSecret(value);
    await this.split.set(account(await this.ns(), profile, kind), value);
  }

  async delete(profile: string, kind: SecretKind): Promise<boolean> {
    const ns = await this.ns();
    const own = await this.split.delete(account(ns, profile, kind));
    if (ns === undefined || !this.moveLock) return own;
    // an item from before the config had an ID would otherwise be moved back on the next read
    const legacy = await this.moveLock(() => this.split.delete(account(undefined, profile, kind)));
    return own || legacy;
  }

  /**
   * Before a refresh's request: open our D-Bus connection (elsewhere: load keytar and let it open
   * its session; the first write of a process otherwise pays for that), and count the chunks the
   * write replaces.
   */
  async prepare(profile: string, kind: SecretKind): Promise<void> {
    if (this.ownReader && process.env.DBUS_SESSION_BUS_ADDRESS) await this.precheck();
    else {
      const k = await this.kt();
      await withTimeout('prepare', this.timeoutMs, () => k.getPassword(KEYCHAIN_SERVICE, '.probe'));
    }
    await this.split.prepare(account(await this.ns(), profile, kind));
  }
}

function isSecretServicePlatform(p: NodeJS.Platform): boolean {
  return p === 'linux' || p === 'freebsd' || p === 'openbsd';
}

function account(namespace: string | undefined, profile: string, kind: SecretKind): string {
  assertSafeName(profile, 'profile name');
  assertSafeName(kind, 'secret kind');
  // a profile name has no "/", so `<id>/<profile>/<kind>` never reads as an older `<profile>/<kind>`
  return namespace === undefined ? `${profile}/${kind}` : `${namespace}/${profile}/${kind}`;
}

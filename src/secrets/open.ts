/**
 * Opening the secret store a profile's `storage` setting selects.
 *
 *   keychain  the OS keychain, or KeychainUnavailableError (exit 1, code keychain_unavailable)
 *             naming the reason and the fix;
 *   file      the file store under secretsDir (encrypted when OAUTHMAIL_PASSPHRASE is set);
 *   auto      the keychain when it answers a probe in time, else the file store plus one
 *             warning saying where the secrets went and why.
 *
 * The fallback warning is shown once per process, and not on every cron run either: the text
 * last shown is kept in `<dataDir>/keychain-fallback-warned`, and the warning comes back only
 * when it would say something different (another reason, another place). When the keychain
 * works again the marker is removed, so a later fallback is announced again.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Paths } from '../config/paths.js';
import { atomicWriteFile, readFileIfExists } from '../util/fs.js';
import { FileSecretStore } from './file.js';
import {
  KeychainStore,
  KeychainUnavailableError,
  type KeychainStoreOptions,
  type ProbeResult,
} from './keychain.js';
import type { SecretKind, SecretStore, StoreKind } from './types.js';

export type StorageMode = 'auto' | 'keychain' | 'file';

export interface OpenSecretStoreOptions {
  storage: StorageMode;
  paths: Paths;
  env?: NodeJS.ProcessEnv;
  /** Prints a warning on stderr. Called at most once per process for the keychain fallback. */
  warn?: (message: string) => void;
  /** For tests: a prepared keychain store. */
  keychain?: KeychainStore;
  /** The config's ID, which keys its keychain items (KeychainStoreOptions.namespace). */
  namespace?: KeychainStoreOptions['namespace'];
  /** The lock under which older items are moved to the config's own (KeychainStoreOptions.moveLock). */
  moveLock?: KeychainStoreOptions['moveLock'];
}

export const FALLBACK_MARKER = 'keychain-fallback-warned';

const shownThisProcess = new Set<string>();

/** A reason for the warning, in words a user can act on. */
export function describeUnavailable(
  probe: Extract<ProbeResult, { ok: false }>,
  env: NodeJS.ProcessEnv,
): string {
  if (process.platform === 'linux' && !env.DBUS_SESSION_BUS_ADDRESS && !probe.reason.includes('keytar')) {
    return 'no Secret Service on D-Bus (DBUS_SESSION_BUS_ADDRESS is not set)';
  }
  if (
    probe.reason.includes('keytar') ||
    probe.reason.includes('did not answer') ||
    probe.reason.startsWith('HOME')
  ) {
    return probe.reason;
  }
  return process.platform === 'linux'
    ? `no Secret Service on D-Bus (${probe.reason})`
    : `no keychain (${probe.reason})`;
}

export function fileStore(paths: Paths, env: NodeJS.ProcessEnv): FileSecretStore {
  return new FileSecretStore({ secretsDir: paths.secretsDir, passphrase: env.OAUTHMAIL_PASSPHRASE });
}

export async function openSecretStore(options: OpenSecretStoreOptions): Promise<SecretStore> {
  const env = options.env ?? process.env;
  const { paths } = options;
  if (options.storage === 'file') return fileStore(paths, env);

  const keychain =
    options.keychain ?? new KeychainStore({ env, namespace: options.namespace, moveLock: options.moveLock });
  const probe = await keychain.probe();
  if (options.storage === 'keychain') {
    if (!probe.ok) throw new KeychainUnavailableError(describeUnavailable(probe, env), probe.error);
    return keychain;
  }

  const marker = path.join(paths.dataDir, FALLBACK_MARKER);
  if (probe.ok) {
    await fsp.rm(marker, { force: true }).catch(() => undefined);
    return keychain;
  }

  const store = fileStore(paths, env);
  const message =
    `${describeUnavailable(probe, env)}; storing secrets in ${paths.secretsDir} (mode 0600` +
    (store.encrypted
      ? ', encrypted with OAUTHMAIL_PASSPHRASE).'
      : '). Set OAUTHMAIL_PASSPHRASE to encrypt them.');
  if (options.warn && !shownThisProcess.has(message)) {
    shownThisProcess.add(message);
    const last = await readFileIfExists(marker).catch(() => undefined);
    if (last !== message) {
      options.warn(message);
      // best effort: a read-only data folder only means the warning shows again next run
      await atomicWriteFile(marker, message, 0o600).catch(() => undefined);
    }
  }
  return store;
}

export interface SecretLocation {
  kind: StoreKind;
  location: string;
  store: SecretStore;
}

/**
 * Where a secret is, wherever it is: the keychain (if it answers) and the file store are both
 * checked, in that order, so a profile whose storage changed can still be found (and moved).
 * Existence only: an encrypted file is reported without being decrypted.
 */
export async function locateSecret(
  options: {
    paths: Paths;
    env?: NodeJS.ProcessEnv;
    keychain?: KeychainStore;
    namespace?: KeychainStoreOptions['namespace'];
  },
  profile: string,
  kind: SecretKind,
): Promise<SecretLocation[]> {
  const env = options.env ?? process.env;
  const found: SecretLocation[] = [];
  const keychain = options.keychain ?? new KeychainStore({ env, namespace: options.namespace });
  if ((await keychain.probe()).ok && (await keychain.get(profile, kind)) !== undefined) {
    found.push({ kind: 'keychain', location: keychain.location, store: keychain });
  }
  const file = fileStore(options.paths, env);
  if (await file.has(profile, kind)) found.push({ kind: 'file', location: file.location, store: file });
  return found;
}

/** For tests: forget which warnings this process has shown. */
export function resetFallbackWarnings(): void {
  shownThisProcess.clear();
}

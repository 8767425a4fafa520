/**
 * Opening the secret store a profile's `storage` setting selects.
 *
 *   keychain  the OS keychain, or KeychainUnreachableError (exit 3, code keychain_unavailable)
 *             naming the reason and the fix (for cron: the file store and a passphrase file);
 *   file      the file store under secretsDir (encrypted when OAUTHMAIL_PASSPHRASE is set);
 *   auto      the keychain when it answers a probe in time, else the file store plus one
 *             warning saying where the secrets went and why.
 *
 * The fallback warning is shown once per process, and not on every cron run either: the text
 * last shown is kept in `<dataDir>/keychain-fallback-warned`, and the warning comes back only
 * when it would say something different (another reason, another place). When the keychain
 * works again the marker is removed, so a later fallback is announced again.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { ConfigError } from '../errors/index.js';
import path from 'node:path';
import { atomicWriteFile, readFileIfExists } from '../util/fs.js';
import { FileSecretStore } from './file.js';
import { KeychainStore, type KeychainStoreOptions, type ProbeResult } from './keychain.js';
import type { SecretKind, SecretStore, StoreKind, StorePaths } from './types.js';
import { withRescue, type RescuingStore } from './rescue.js';

export type StorageMode = 'auto' | 'keychain' | 'file';

export interface OpenSecretStoreOptions {
  storage: StorageMode;
  paths: StorePaths;
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

/** What a cron job or a systemd unit should do instead of the keychain. */
export const CRON_STORAGE_HINT =
  'this session (cron, a systemd service, ssh without a desktop session) cannot reach the keychain. ' +
  'For a job like that keep the secrets in a file: oauthmail profile edit NAME --set storage=file, put a passphrase ' +
  'in a file only that account can read and set OAUTHMAIL_PASSPHRASE_FILE to it, then run oauthmail login NAME once ' +
  'as that account (--storage file also works for profile add); or start a Secret Service in this session';

/**
 * The profile's secrets are in the keychain and this session cannot reach it. A configuration
 * matter (exit 3), not a missing sign-in: logging in again would only write to the keychain again.
 */
export class KeychainUnreachableError extends ConfigError {
  readonly reason: string;
  constructor(reason: string, cause?: unknown, profile?: string) {
    super(`the keychain is unavailable: ${reason}.`, {
      code: 'keychain_unavailable',
      hint: profile ? CRON_STORAGE_HINT.replaceAll('NAME', profile) : CRON_STORAGE_HINT,
      cause,
    });
    this.reason = reason;
  }
}

export function fileStore(paths: StorePaths, env: NodeJS.ProcessEnv): FileSecretStore {
  return new FileSecretStore({ secretsDir: paths.secretsDir, passphrase: passphraseFrom(env) });
}

/** The systemd credential name (LoadCredential=oauthmail-passphrase:/etc/oauthmail/passphrase). */
export const CREDENTIAL_NAME = 'oauthmail-passphrase';

/**
 * The file-store passphrase: OAUTHMAIL_PASSPHRASE, else the file OAUTHMAIL_PASSPHRASE_FILE names,
 * else systemd's credential $CREDENTIALS_DIRECTORY/oauthmail-passphrase, so that a crontab or a
 * unit file never holds the passphrase itself. One trailing newline is not part of it.
 */
export function passphraseFrom(env: NodeJS.ProcessEnv): string | undefined {
  if (env.OAUTHMAIL_PASSPHRASE) return env.OAUTHMAIL_PASSPHRASE;
  const file =
    env.OAUTHMAIL_PASSPHRASE_FILE ||
    (env.CREDENTIALS_DIRECTORY ? path.join(env.CREDENTIALS_DIRECTORY, CREDENTIAL_NAME) : undefined);
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (!env.OAUTHMAIL_PASSPHRASE_FILE && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(
      `cannot read the passphrase file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        code: 'passphrase_file',
        hint: 'check OAUTHMAIL_PASSPHRASE_FILE (a file only this account can read, mode 0600)',
        cause: e,
      },
    );
  }
  const pass = text.replace(/\r?\n$/, '');
  if (!pass) {
    throw new ConfigError(`the passphrase file ${file} is empty`, {
      code: 'passphrase_file',
      hint: 'write the passphrase into it (one line), or unset OAUTHMAIL_PASSPHRASE_FILE',
    });
  }
  return pass;
}

export async function openSecretStore(options: OpenSecretStoreOptions): Promise<RescuingStore> {
  return withRescue(await openStore(options), options.paths);
}

async function openStore(options: OpenSecretStoreOptions): Promise<SecretStore> {
  const env = options.env ?? process.env;
  const { paths } = options;
  if (options.storage === 'file') return fileStore(paths, env);

  const keychain =
    options.keychain ?? new KeychainStore({ env, namespace: options.namespace, moveLock: options.moveLock });
  const probe = await keychain.probe();
  if (options.storage === 'keychain') {
    if (!probe.ok) throw new KeychainUnreachableError(describeUnavailable(probe, env), probe.error);
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
    paths: StorePaths;
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

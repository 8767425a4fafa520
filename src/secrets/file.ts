/**
 * File store: one file per profile and kind, `<secretsDir>/<profile>/<kind>`, mode 0600 in
 * 0700 folders, written atomically.
 *
 * Why one file per kind rather than one JSON per profile: the token cache is rewritten on every
 * refresh, and a separate file means such a write can never damage the client secret or the
 * certificate next to it; each file also carries its own salt and IV, and `profile show` can
 * tell which secrets exist without decrypting anything.
 *
 * With OAUTHMAIL_PASSPHRASE set, a file holds a versioned JSON envelope:
 *   {"oauthmail":"secret","v":2,"alg":"aes-256-gcm","kdf":"scrypt","N":32768,"r":8,"p":1,
 *    "salt":b64(16),"iv":b64(12),"kcv":b64(16),"hc":b64(12),"tag":b64(16),"ct":b64}
 * key || checkKey = scrypt(passphrase, salt, 64, {N, r, p}); kcv = HMAC(checkKey, label) tells a
 * wrong passphrase from a changed file, hc = SHA-256(header) a changed header; the header fields
 * are the GCM additional data, so they cannot be altered without failing authentication.
 * Version 1 files (no kcv/hc, additional data v, alg, kdf, N, r, p) are still read; the next
 * write makes them version 2. Without a passphrase the file holds the value as it is.
 *
 * Permissions: like ssh with a private key, a secret file that group or others can access is
 * refused (secret_file_insecure, with the chmod that fixes it), because a secret that others could
 * read must be treated as leaked, and one that others could write could have been replaced.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ConfigError, UsageError } from '../errors/index.js';
import { atomicWriteFile, ensurePrivateDir, removeStaleTemps } from '../util/fs.js';
import { registerSecret } from '../util/redact.js';
import type { SecretKind, SecretStore } from './types.js';
import {
  SCRYPT_DEFAULTS,
  decryptSecret,
  encryptSecret,
  isEncryptedContent,
  scrypt,
  type KdfParams,
} from './envelope.js';

export {
  SCRYPT_DEFAULTS,
  SCRYPT_LIMITS,
  SecretDecryptError,
  SecretFileDamagedError,
  decryptSecret,
  encryptSecret,
  isEncryptedContent,
} from './envelope.js';

/** Reject anything that could escape a folder when used as one path segment. */
export function assertSafeName(name: string, what = 'name'): void {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name === '.' ||
    name === '..' ||
    name.includes('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    name.includes('..')
  ) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(name).replace(/\0/g, '\\0'))}.`, {
      code: 'invalid_name',
      hint: 'Use letters, digits, dots, dashes and underscores; no "/", "\\", ".." or NUL.',
    });
  }
}

export interface FileSecretStoreOptions {
  secretsDir: string;
  /** OAUTHMAIL_PASSPHRASE; when set, new writes are encrypted. */
  passphrase?: string | undefined;
  /** For tests: cheaper scrypt parameters. */
  kdf?: { N: number; r: number; p: number };
}

export class FileSecretStore implements SecretStore {
  readonly kind = 'file' as const;
  readonly location: string;
  readonly encrypted: boolean;
  private readonly dir: string;
  private readonly passphrase: string | undefined;
  private readonly kdf: { N: number; r: number; p: number };

  constructor(options: FileSecretStoreOptions) {
    this.dir = options.secretsDir;
    this.location = options.secretsDir;
    this.passphrase = options.passphrase || undefined;
    this.encrypted = this.passphrase !== undefined;
    this.kdf = options.kdf ?? SCRYPT_DEFAULTS;
    registerSecret(this.passphrase);
  }

  pathFor(profile: string, kind: SecretKind): string {
    assertSafeName(profile, 'profile name');
    assertSafeName(kind, 'secret kind');
    return path.join(this.dir, profile, kind);
  }

  /** Whether a secret file exists (without reading or decrypting it). */
  async has(profile: string, kind: SecretKind): Promise<boolean> {
    try {
      await fsp.lstat(this.pathFor(profile, kind));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  async get(profile: string, kind: SecretKind): Promise<string | undefined> {
    const file = this.pathFor(profile, kind);
    const content = await this.readChecked(file);
    if (content === undefined) return undefined;
    const value = isEncryptedContent(content)
      ? await decryptSecret(content, this.passphrase, file, this.keyFor)
      : content;
    registerSecret(value);
    return value;
  }

  async set(profile: string, kind: SecretKind, value: string): Promise<void> {
    registerSecret(value);
    const file = this.pathFor(profile, kind);
    // prepared (under the lock that serializes this secret's writes): checked and made ready then
    if (!this.prepared.delete(file)) {
      await this.checkReplaceable(file);
      await ensurePrivateDir(this.dir);
      await ensurePrivateDir(path.dirname(file));
    }
    let data = value;
    if (this.passphrase) {
      const derived = this.fresh.get(file) ?? (await this.freshKey());
      this.fresh.delete(file);
      data = await encryptSecret(value, this.passphrase, this.kdf, derived);
    }
    await atomicWriteFile(file, data, 0o600, { dirReady: true, removeStaleTemps: true });
  }

  /**
   * Everything a following set() of this secret would do before writing: the folders, the check
   * that an existing encrypted file is ours, and the derivation of the new file's key (scrypt,
   * the slow part). A token refresh calls it before its request, so that the provider's answer
   * is on disk within milliseconds (a process killed in between loses a rotated refresh token).
   */
  async prepare(profile: string, kind: SecretKind): Promise<void> {
    const file = this.pathFor(profile, kind);
    await ensurePrivateDir(this.dir);
    await ensurePrivateDir(path.dirname(file));
    await this.checkReplaceable(file);
    if (this.passphrase && !this.fresh.has(file)) this.fresh.set(file, await this.freshKey());
    this.prepared.add(file);
  }

  /** Derived keys by salt and parameters: a read and the check before the write share one scrypt run. */
  private readonly keys = new Map<string, Promise<Buffer>>();
  /** The salt and key of a file's next write, derived by prepare() (each write has a fresh salt and IV). */
  private readonly fresh = new Map<string, { salt: Buffer; key: Buffer }>();
  private readonly prepared = new Set<string>();

  private readonly keyFor = (e: KdfParams, passphrase: string): Promise<Buffer> => {
    const id = `${e.salt}/${e.N}/${e.r}/${e.p}`;
    let k = this.keys.get(id);
    if (!k) {
      k = scrypt(passphrase, Buffer.from(e.salt, 'base64'), e);
      this.keys.set(id, k);
      k.catch(() => this.keys.delete(id));
    }
    return k;
  };

  private async freshKey(): Promise<{ salt: Buffer; key: Buffer }> {
    const salt = randomBytes(16);
    return { salt, key: await scrypt(this.passphrase!, salt, this.kdf) };
  }

  /**
   * Never replace an encrypted file we cannot decrypt: with a wrong passphrase that would
   * silently re-key it, and without one it would downgrade it to plain text. (After a read of
   * the file in this process, the check costs no scrypt run: the key is remembered.)
   */
  private async checkReplaceable(file: string): Promise<void> {
    const existing = await this.readChecked(file);
    if (existing !== undefined && isEncryptedContent(existing))
      await decryptSecret(existing, this.passphrase, file, this.keyFor);
  }

  async delete(profile: string, kind: SecretKind): Promise<boolean> {
    const file = this.pathFor(profile, kind);
    // a temp file a crashed write left holds the secret too (logout must not leave it)
    await removeStaleTemps(file);
    try {
      await fsp.unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await fsp.rmdir(path.dirname(file)).catch(() => undefined);
      return false;
    }
    // drop the profile folder when it is empty; ENOTEMPTY just means other kinds remain
    await fsp.rmdir(path.dirname(file)).catch(() => undefined);
    return true;
  }

  private async readChecked(file: string): Promise<string | undefined> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      if (process.platform !== 'win32') {
        const st = await fh.stat();
        if ((st.mode & 0o077) !== 0) {
          throw new ConfigError(
            `the secret file ${file} is accessible by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); refusing to use it.`,
            {
              code: 'secret_file_insecure',
              hint: `Run: chmod 600 ${file}  (and treat the secret as leaked if others could read it).`,
            },
          );
        }
      }
      return await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  }
}

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
 *   {"oauthmail":"secret","v":1,"alg":"aes-256-gcm","kdf":"scrypt","N":32768,"r":8,"p":1,
 *    "salt":b64(16),"iv":b64(12),"tag":b64(16),"ct":b64}
 * key = scrypt(passphrase, salt, 32, {N, r, p}); the header fields (v, alg, kdf, N, r, p) are the
 * GCM additional data, so they cannot be altered without failing authentication. Without a
 * passphrase the file holds the value as it is.
 *
 * Permissions: like ssh with a private key, a secret file that group or others can access is
 * refused (secret_file_insecure, with the chmod that fixes it), because a secret that others could
 * read must be treated as leaked, and one that others could write could have been replaced.
 */
import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  scrypt as scryptCb,
  type ScryptOptions,
} from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ConfigError, UsageError } from '../errors/index.js';
import { atomicWriteFile, ensurePrivateDir } from '../util/fs.js';
import { registerSecret } from '../util/redact.js';
import type { SecretKind, SecretStore } from './types.js';

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

export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1 } as const;

interface Envelope {
  oauthmail: 'secret';
  v: 1;
  alg: 'aes-256-gcm';
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  iv: string;
  tag: string;
  ct: string;
}

const ENVELOPE_START = '{"oauthmail":"secret"';

function scrypt(pass: string, salt: Buffer, o: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 256 * o.N * o.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scryptCb(pass, salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function aad(e: Pick<Envelope, 'v' | 'alg' | 'kdf' | 'N' | 'r' | 'p'>): Buffer {
  return Buffer.from(JSON.stringify([e.v, e.alg, e.kdf, e.N, e.r, e.p]), 'utf8');
}

export async function encryptSecret(
  plaintext: string,
  passphrase: string,
  kdf: { N: number; r: number; p: number } = SCRYPT_DEFAULTS,
  derived?: { salt: Buffer; key: Buffer },
): Promise<string> {
  const salt = derived?.salt ?? randomBytes(16);
  const key = derived?.key ?? (await scrypt(passphrase, salt, kdf));
  // `derived`: a salt and key made ahead (FileSecretStore.prepare), never used for two writes
  const iv = randomBytes(12);
  const head = {
    v: 1 as const,
    alg: 'aes-256-gcm' as const,
    kdf: 'scrypt' as const,
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
  };
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(head));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const env: Envelope = {
    oauthmail: 'secret',
    ...head,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ct: ct.toString('base64'),
  };
  return JSON.stringify(env) + '\n';
}

export function isEncryptedContent(content: string): boolean {
  return content.startsWith(ENVELOPE_START);
}

export class SecretDecryptError extends ConfigError {
  constructor(file: string, cause?: unknown) {
    super(`cannot decrypt ${file}: wrong or missing OAUTHMAIL_PASSPHRASE.`, {
      code: 'secret_decrypt_failed',
      hint: 'Set OAUTHMAIL_PASSPHRASE to the passphrase the file was written with, or remove the secret and sign in again.',
      cause,
    });
  }
}

/** Decrypt an envelope; a wrong or missing passphrase or a damaged file throws, never returns garbage. */
export async function decryptSecret(
  content: string,
  passphrase: string | undefined,
  file: string,
  keyFor: (e: KdfParams, passphrase: string) => Promise<Buffer> = (e, pass) =>
    scrypt(pass, Buffer.from(e.salt, 'base64'), e),
): Promise<string> {
  const e = parseEnvelope(content, file);
  if (!passphrase) throw new SecretDecryptError(file);
  checkKdfBounds(e, file);
  try {
    const key = await keyFor(e, passphrase);
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(e.iv, 'base64'));
    d.setAAD(aad(e));
    d.setAuthTag(Buffer.from(e.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(e.ct, 'base64')), d.final()]).toString('utf8');
  } catch (cause) {
    throw new SecretDecryptError(file, cause);
  }
}

type KdfParams = Pick<Envelope, 'N' | 'r' | 'p' | 'salt'>;

function parseEnvelope(content: string, file: string): Envelope {
  let e: Envelope;
  try {
    e = JSON.parse(content) as Envelope;
  } catch (cause) {
    throw new ConfigError(`the secret file ${file} is damaged (its header is not valid JSON).`, {
      code: 'secret_file_corrupt',
      hint: 'Remove the file and sign in again (or store the secret again).',
      cause,
    });
  }
  if (e.v !== 1 || e.alg !== 'aes-256-gcm' || e.kdf !== 'scrypt') {
    throw new ConfigError(`the secret file ${file} uses an unknown format (v=${String(e.v)}).`, {
      code: 'secret_file_unsupported',
      hint: 'Upgrade oauthmail, or remove the file and sign in again.',
    });
  }
  return e;
}

/** Bound the KDF cost a file can ask for, so that a planted file cannot exhaust memory. */
function checkKdfBounds(e: Envelope, file: string): void {
  if (![e.N, e.r, e.p].every(Number.isSafeInteger) || e.N > 1 << 20 || e.r > 32 || e.p > 16) {
    throw new ConfigError(`the secret file ${file} asks for unreasonable scrypt parameters.`, {
      code: 'secret_file_corrupt',
      hint: 'Remove the file and sign in again (or store the secret again).',
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
    await atomicWriteFile(file, data, 0o600, { dirReady: true });
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
    try {
      await fsp.unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
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

/**
 * The encrypted secret file format (the file store's envelope): AES-256-GCM with a key scrypt
 * derives from OAUTHMAIL_PASSPHRASE, a key check that tells a wrong passphrase from a changed file,
 * and a header checksum. Split from file.ts (the store itself).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  scrypt as scryptCb,
  type ScryptOptions,
} from 'node:crypto';
import { ConfigError } from '../errors/index.js';

export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1 } as const;
/**
 * The most a file may ask for: twice the defaults' N, their r and p (64 MiB, about 0.4 s here
 * against 32 MiB and 0.19 s), so a planted or damaged file cannot make a read cost 25 s and 4 GB
 * (N=2^20, r=32). Files are written with the defaults; tests write cheaper ones.
 */
export const SCRYPT_LIMITS = { N: 1 << 16, r: 8, p: 1 } as const;

interface Envelope {
  oauthmail: 'secret';
  v: 1 | 2;
  alg: 'aes-256-gcm';
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  iv: string;
  /** v2: key check, HMAC-SHA256(check key, KCV_LABEL), 16 bytes. */
  kcv?: string;
  /** v2: header check, SHA-256 of the header, 12 bytes. */
  hc?: string;
  tag: string;
  ct: string;
}

const ENVELOPE_START = '{"oauthmail":"secret"';
const KCV_LABEL = 'oauthmail key check v2';
const KDF_BYTES = 64;

/** 64 bytes: the AES key, then the key-check key (v2); v1 used the first 32 as the key. */
export function scrypt(pass: string, salt: Buffer, o: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 256 * o.N * o.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scryptCb(pass, salt, KDF_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

type Header = Pick<Envelope, 'v' | 'alg' | 'kdf' | 'N' | 'r' | 'p' | 'salt' | 'iv' | 'kcv'>;

/** The GCM additional data: v1 bound the KDF parameters, v2 binds the whole header. */
function aad(e: Header): Buffer {
  const fields =
    e.v === 1 ? [e.v, e.alg, e.kdf, e.N, e.r, e.p] : [e.v, e.alg, e.kdf, e.N, e.r, e.p, e.salt, e.iv, e.kcv];
  return Buffer.from(JSON.stringify(fields), 'utf8');
}

const headerCheck = (e: Header) =>
  createHash('sha256').update(aad(e)).digest().subarray(0, 12).toString('base64');
const keyCheck = (checkKey: Buffer) =>
  createHmac('sha256', checkKey).update(KCV_LABEL).digest().subarray(0, 16).toString('base64');

/*
 * Telling a wrong passphrase from a changed file: AES-GCM fails the same way for both (the tag
 * does not match). So v2 files carry a key check (kcv), computed from a second key that scrypt
 * derives next to the AES key: when it matches, the passphrase is right and a failing tag means
 * the ciphertext was changed. A changed header (salt, IV, parameters) would change the derived
 * keys and look like a wrong passphrase, so the header carries a plain checksum (hc) as well.
 * hc is unkeyed: it catches damage and edits, not forgery (the GCM tag, with the whole header as
 * additional data, does that).
 */
export async function encryptSecret(
  plaintext: string,
  passphrase: string,
  kdf: { N: number; r: number; p: number } = SCRYPT_DEFAULTS,
  derived?: { salt: Buffer; key: Buffer },
): Promise<string> {
  // `derived`: a salt and keys made ahead (FileSecretStore.prepare), never used for two writes
  const salt = derived?.salt ?? randomBytes(16);
  const iv = randomBytes(12);
  const keys = derived?.key ?? (await scrypt(passphrase, salt, kdf));
  const head: Header = {
    v: 2,
    alg: 'aes-256-gcm',
    kdf: 'scrypt',
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    kcv: keyCheck(keys.subarray(32)),
  };
  const cipher = createCipheriv('aes-256-gcm', keys.subarray(0, 32), iv);
  cipher.setAAD(aad(head));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const env: Envelope = {
    oauthmail: 'secret',
    ...head,
    hc: headerCheck(head),
    tag: cipher.getAuthTag().toString('base64'),
    ct: ct.toString('base64'),
  };
  return JSON.stringify(env) + '\n';
}

export function isEncryptedContent(content: string): boolean {
  return content.startsWith(ENVELOPE_START);
}

export class SecretDecryptError extends ConfigError {
  constructor(file: string, why: 'missing' | 'wrong' | 'wrong-or-changed', cause?: unknown) {
    const reason = {
      missing: 'it is encrypted and OAUTHMAIL_PASSPHRASE is not set',
      wrong: 'wrong OAUTHMAIL_PASSPHRASE',
      'wrong-or-changed': 'wrong OAUTHMAIL_PASSPHRASE, or the file was changed',
    }[why];
    super(`cannot decrypt ${file}: ${reason}.`, {
      code: 'secret_decrypt_failed',
      hint: 'Set OAUTHMAIL_PASSPHRASE to the passphrase the file was written with, or remove the secret and sign in again.',
      cause,
    });
  }
}

/** The file is not what oauthmail wrote (whatever the passphrase): say so, never "wrong passphrase". */
export class SecretFileDamagedError extends ConfigError {
  constructor(file: string, what: string, cause?: unknown) {
    super(`the secret file ${file} is damaged (${what}).`, {
      code: 'secret_file_corrupt',
      hint: 'Remove the file and sign in again (or store the secret again); restore it from a backup if you have one.',
      cause,
    });
  }
}

/** Strict base64 of exactly `len` bytes (Buffer.from would skip bad characters silently). */
function b64(v: unknown, len?: number): Buffer | undefined {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) return undefined;
  const b = Buffer.from(v, 'base64');
  return len === undefined || b.length === len ? b : undefined;
}

/** Check an envelope's shape and cost before any scrypt; throws SecretFileDamagedError. */
function parseEnvelope(content: string, file: string) {
  let e: Envelope;
  try {
    e = JSON.parse(content) as Envelope;
  } catch (cause) {
    throw new SecretFileDamagedError(file, 'it is not valid JSON', cause);
  }
  if (typeof e !== 'object' || e === null) throw new SecretFileDamagedError(file, 'it is not a JSON object');
  if ((e.v !== 1 && e.v !== 2) || e.alg !== 'aes-256-gcm' || e.kdf !== 'scrypt') {
    throw new ConfigError(`the secret file ${file} uses an unknown format (v=${String(e.v)}).`, {
      code: 'secret_file_unsupported',
      hint: 'Upgrade oauthmail, or remove the file and sign in again.',
    });
  }
  const { N, r, p } = e;
  if (![N, r, p].every((x) => Number.isSafeInteger(x) && x >= 1) || N < 2 || (N & (N - 1)) !== 0)
    throw new SecretFileDamagedError(file, 'its scrypt parameters are not valid');
  // bound the KDF cost a file can ask for, so a planted or damaged file cannot exhaust memory
  if (N > SCRYPT_LIMITS.N || r > SCRYPT_LIMITS.r || p > SCRYPT_LIMITS.p)
    throw new SecretFileDamagedError(
      file,
      `it asks for scrypt N=${N}, r=${r}, p=${p}, above oauthmail's limit N=${SCRYPT_LIMITS.N}, r=${SCRYPT_LIMITS.r}, p=${SCRYPT_LIMITS.p}`,
    );
  const salt = b64(e.salt, 16);
  const iv = b64(e.iv, 12);
  const tag = b64(e.tag, 16);
  const ct = b64(e.ct);
  if (!salt || !iv || !tag || !ct)
    throw new SecretFileDamagedError(file, 'its salt, IV, tag or ciphertext is not valid');
  if (e.v === 2) {
    if (!b64(e.kcv, 16) || typeof e.hc !== 'string')
      throw new SecretFileDamagedError(file, 'its key check is missing');
    if (e.hc !== headerCheck(e)) throw new SecretFileDamagedError(file, 'its header was changed');
  }
  return { e, salt, iv, tag, ct };
}

/**
 * Decrypt an envelope; a wrong or missing passphrase or a damaged file throws, never returns
 * garbage. A damaged file is reported as damaged (secret_file_corrupt) also when no passphrase
 * is set; with the right passphrase, a changed ciphertext is reported as damaged too (v2).
 */
export async function decryptSecret(
  content: string,
  passphrase: string | undefined,
  file: string,
  keyFor: (e: KdfParams, passphrase: string) => Promise<Buffer> = (e, pass) =>
    scrypt(pass, Buffer.from(e.salt, 'base64'), e),
): Promise<string> {
  const { e, iv, tag, ct } = parseEnvelope(content, file);
  if (!passphrase) throw new SecretDecryptError(file, 'missing');
  const keys = await keyFor(e, passphrase);
  if (e.v === 2 && keyCheck(keys.subarray(32)) !== e.kcv) throw new SecretDecryptError(file, 'wrong');
  try {
    const d = createDecipheriv('aes-256-gcm', keys.subarray(0, 32), iv);
    d.setAAD(aad(e));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]).toString('utf8');
  } catch (cause) {
    // v2: the key check passed, so the passphrase is right and the contents were changed
    if (e.v === 2)
      throw new SecretFileDamagedError(file, 'its contents were changed after it was written', cause);
    throw new SecretDecryptError(file, 'wrong-or-changed', cause);
  }
}

export type KdfParams = Pick<Envelope, 'N' | 'r' | 'p' | 'salt'>;

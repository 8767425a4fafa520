/**
 * Device passwords: generated here (20 letters and digits, ~119 bits: short enough for a
 * printer's settings page), shown once, and stored only as a scrypt hash (RFC 7914) in the form
 * `scrypt$N$r$p$salt$hash` (base64url), checked in constant time.
 */
import { createHmac, randomBytes, randomInt, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;
/** Limits on parameters read from the file: a hand-edited N of 2^30 must not eat the memory. */
const MAX_N = 1 << 17;

export function generatePassword(length = 20): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

function scrypt(
  password: string,
  salt: Buffer,
  n: number,
  r: number,
  p: number,
  len: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(
      password.normalize('NFC'),
      salt,
      len,
      { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 },
      (e, k) => (e ? reject(e) : resolve(k)),
    ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, N, R, P, KEYLEN);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!(n > 1 && n <= MAX_N && (n & (n - 1)) === 0 && r > 0 && r <= 32 && p > 0 && p <= 16)) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const want = Buffer.from(parts[5]!, 'base64url');
  if (want.length < 16) return false;
  const got = await scrypt(password, salt, n, r, p, want.length);
  return timingSafeEqual(got, want);
}

/**
 * A device logs in on every connection; scrypt costs ~50 ms quiet (far more on a busy machine).
 * A password that passed once is remembered for this process as an HMAC under a random key (never
 * written anywhere), tied to the stored hash: a new password (passwd + SIGHUP) drops it.
 */
export class VerifiedPasswords {
  private readonly key = randomBytes(32);
  private readonly seen = new Map<string, { hash: string; mac: Buffer }>();

  private mac(user: string, password: string): Buffer {
    return createHmac('sha256', this.key).update(`${user}\0${password}`).digest();
  }

  async verify(user: string, password: string, stored: string): Promise<boolean> {
    const hit = this.seen.get(user);
    if (hit && hit.hash === stored && timingSafeEqual(hit.mac, this.mac(user, password))) return true;
    const ok = await verifyPassword(password, stored);
    if (ok) this.seen.set(user, { hash: stored, mac: this.mac(user, password) });
    return ok;
  }
}

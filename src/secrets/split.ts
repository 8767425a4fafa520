/**
 * Splitting layer over a keychain-like backend that limits the size of one entry.
 *
 * Windows Credential Manager holds at most 2,560 bytes per credential blob
 * (CRED_MAX_CREDENTIAL_BLOB_SIZE = 5 * 512; keytar stores the UTF-8 bytes), and a serialized
 * MSAL cache is larger than that. A value over the limit is stored as chunks `<account>#1..N`
 * plus a head entry `<account>` holding a manifest `oauthmail-split:v1:N:<sha256 hex>`.
 *
 * Write order is chunks first, head last, so a reader that follows the head finds a complete
 * set; the head carries the count and the SHA-256 of the whole value, so a read that races a
 * writer (chunks replaced in place under an old head) is detected rather than returned as a
 * spliced value. Token-cache writes also hold the cross-process lock (lock.ts), which keeps
 * that race out of normal operation; the hash check plus a short retry covers readers that
 * don't take the lock.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { InternalError } from '../errors/index.js';

/** Minimal key/value backend: one secret per account, as keytar offers under one service. */
export interface RawBackend {
  get(account: string): Promise<string | undefined>;
  set(account: string, value: string): Promise<void>;
  /** Returns true if something was deleted. */
  delete(account: string): Promise<boolean>;
}

export const WINDOWS_CREDENTIAL_LIMIT_BYTES = 2560;
/** Elsewhere (Secret Service, macOS Keychain) there is no practical limit; still bound it. */
export const DEFAULT_LIMIT_BYTES_ELSEWHERE = 1024 * 1024;

export function defaultSplitLimit(platform: NodeJS.Platform = process.platform): number {
  return platform === 'win32' ? WINDOWS_CREDENTIAL_LIMIT_BYTES : DEFAULT_LIMIT_BYTES_ELSEWHERE;
}

const MANIFEST_PREFIX = 'oauthmail-split:v1:';
const MANIFEST_RE = /^oauthmail-split:v1:(\d{1,6}):([0-9a-f]{64})$/;

export interface SplitOptions {
  /** Largest entry, in UTF-8 bytes, the backend accepts. */
  limitBytes?: number;
  /** How many times a read retries when the chunks don't match the head (a concurrent writer). */
  readRetries?: number;
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** Cut a string into pieces of at most `limit` UTF-8 bytes, never inside a code point. */
export function chunkUtf8(value: string, limit: number): string[] {
  const out: string[] = [];
  let cur = '';
  let curBytes = 0;
  for (const ch of value) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (curBytes + b > limit) {
      out.push(cur);
      cur = '';
      curBytes = 0;
    }
    cur += ch;
    curBytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export class SplitStore {
  readonly limitBytes: number;
  private readonly readRetries: number;

  constructor(
    private readonly backend: RawBackend,
    options: SplitOptions = {},
  ) {
    this.limitBytes = options.limitBytes ?? defaultSplitLimit();
    // the manifest itself (~90 bytes) must fit in one entry, and a chunk must hold any code point
    if (!Number.isInteger(this.limitBytes) || this.limitBytes < 128) {
      throw new InternalError(`split limit ${this.limitBytes} is too small (minimum 128 bytes).`, {
        code: 'internal',
      });
    }
    this.readRetries = options.readRetries ?? 3;
  }

  async get(account: string): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      const head = await this.backend.get(account);
      if (head === undefined) return undefined;
      const m = MANIFEST_RE.exec(head);
      if (!m) {
        if (head.startsWith(MANIFEST_PREFIX)) throw corrupt(account, 'its head entry is malformed');
        return head;
      }
      const n = Number(m[1]);
      const hash = m[2];
      const parts: string[] = [];
      let missing = false;
      for (let i = 1; i <= n; i++) {
        const part = await this.backend.get(`${account}#${i}`);
        if (part === undefined) {
          missing = true;
          break;
        }
        parts.push(part);
      }
      const value = parts.join('');
      if (!missing && sha256(value) === hash) return value;
      if (attempt >= this.readRetries) {
        throw corrupt(account, missing ? 'a chunk is missing' : 'the chunks do not match the checksum');
      }
      await sleep(50 * (attempt + 1));
    }
  }

  /**
   * Before a set() of `account` that must be quick (a token refresh, see SecretStore.prepare):
   * count the chunks the current head names and clear the leftovers of an interrupted write
   * beyond them (no head refers to those), so that the set is the writes and nothing more.
   */
  async prepare(account: string): Promise<void> {
    const oldCount = await this.chunkCount(account);
    await this.deleteChunksFrom(account, oldCount + 1, oldCount);
    this.prepared.set(account, oldCount);
  }

  private readonly prepared = new Map<string, number>();

  async set(account: string, value: string): Promise<void> {
    const known = this.prepared.get(account);
    this.prepared.delete(account);
    const oldCount = known ?? (await this.chunkCount(account));
    // A small value is stored as it is, unless it could be mistaken for a manifest (or is empty,
    // which keychains refuse): those go through the split format with 0 or 1 chunk.
    const plainOk = value.length > 0 && !value.startsWith(MANIFEST_PREFIX);
    let newCount = 0;
    if (plainOk && Buffer.byteLength(value, 'utf8') <= this.limitBytes) {
      await this.backend.set(account, value);
    } else {
      const chunks = chunkUtf8(value, this.limitBytes);
      newCount = chunks.length;
      for (let i = 0; i < chunks.length; i++) await this.backend.set(`${account}#${i + 1}`, chunks[i]!);
      await this.backend.set(account, `${MANIFEST_PREFIX}${newCount}:${sha256(value)}`);
    }
    if (known === undefined) await this.deleteChunksFrom(account, newCount + 1, oldCount);
    else for (let i = newCount + 1; i <= oldCount; i++) await this.backend.delete(`${account}#${i}`);
  }

  async delete(account: string): Promise<boolean> {
    const oldCount = await this.chunkCount(account);
    // head first: a reader then sees "absent" instead of a broken set
    const existed = await this.backend.delete(account);
    await this.deleteChunksFrom(account, 1, oldCount);
    return existed;
  }

  /** Number of chunks the current head names (0 for a plain value or none). */
  private async chunkCount(account: string): Promise<number> {
    const head = await this.backend.get(account);
    const m = head === undefined ? null : MANIFEST_RE.exec(head);
    return m ? Number(m[1]) : 0;
  }

  /** Delete chunks from `first` up to at least `knownLast`, and on while more are found (leftovers of a crash). */
  private async deleteChunksFrom(account: string, first: number, knownLast: number): Promise<void> {
    for (let i = first; ; i++) {
      const deleted = await this.backend.delete(`${account}#${i}`);
      if (!deleted && i > knownLast) return;
    }
  }
}

function corrupt(account: string, why: string): InternalError {
  return new InternalError(`the stored secret ${account} is incomplete or corrupt: ${why}.`, {
    code: 'secret_corrupt',
    hint: 'Remove it (oauthmail logout, or oauthmail profile remove) and sign in again.',
  });
}

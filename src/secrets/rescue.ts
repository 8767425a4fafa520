/**
 * The rescue file (issue 12): a rotated refresh token on disk within a fraction of a millisecond
 * of the provider's answer, whatever store the profile uses.
 *
 * A provider that rotates refresh tokens burns the old one when it answers. Until the store has
 * the new one (a keychain round trip over D-Bus: 10-40 ms; an fsynced file: a few ms), it exists
 * only in this process, and SIGKILL there loses the sign-in. So, armed before the request
 * (src/util/critical.ts armRescue), the HTTP layer hands the answer's refresh token to `keep()`,
 * which writes it synchronously (no await, no fsync: a killed process's writes are in the page
 * cache and survive it) next to the data folder. The store's next read of the token cache puts it
 * back in place of the old token, and the store's next write of the token cache removes the file.
 *
 * The file is encrypted (AES-256-GCM) with a key derived (HKDF-SHA256) from the OLD refresh token,
 * which only the store holds: whoever can read the file cannot use it without what the keychain
 * (or the encrypted file store) protects, and no key has to be fetched or derived while the
 * provider's answer waits. The record names the old token by a hash, so it applies only to the
 * cache that holds that token.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdirSync, promises as fsp, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { registerSecret } from '../util/redact.js';
import type { SecretKind, SecretStore, StorePaths } from './types.js';

interface RescueRecord {
  oauthmail: 'rescue';
  v: 1;
  /** which refresh token it replaces: a hash of it */
  id: string;
  salt: string;
  iv: string;
  tag: string;
  ct: string;
}

const INFO = 'oauthmail rescue v1';

const idOf = (old: string) =>
  createHash('sha256').update('oauthmail rescue id\0').update(old).digest('base64url').slice(0, 32);
const keyOf = (old: string, salt: Buffer) => Buffer.from(hkdfSync('sha256', old, salt, INFO, 32));

/** Seal `next` under a key derived from `old` (exported for tests). */
export function sealRescue(old: string, next: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(old, salt), iv);
  const ct = Buffer.concat([cipher.update(next, 'utf8'), cipher.final()]);
  const rec: RescueRecord = {
    oauthmail: 'rescue',
    v: 1,
    id: idOf(old),
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ct: ct.toString('base64'),
  };
  return JSON.stringify(rec) + '\n';
}

function unseal(rec: RescueRecord, old: string): string | undefined {
  try {
    const d = createDecipheriv(
      'aes-256-gcm',
      keyOf(old, Buffer.from(rec.salt, 'base64')),
      Buffer.from(rec.iv, 'base64'),
    );
    d.setAuthTag(Buffer.from(rec.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(rec.ct, 'base64')), d.final()]).toString('utf8');
  } catch {
    return undefined; // damaged: the store's own value stands
  }
}

/**
 * The token cache `text` with the rescued token in place of the one it replaces; `text` itself
 * when the record is not for it (already written, or another sign-in since).
 */
export function applyRescue(text: string, record: string): string {
  let rec: RescueRecord;
  let data: unknown;
  try {
    rec = JSON.parse(record) as RescueRecord;
    data = JSON.parse(text);
  } catch {
    return text;
  }
  if (rec?.oauthmail !== 'rescue' || rec.v !== 1) return text;
  let next: string | undefined;
  let old: string | undefined;
  const visit = (v: unknown): unknown => {
    if (typeof v === 'string') {
      if (old === undefined && idOf(v) === rec.id) {
        next = unseal(rec, v);
        if (next !== undefined) old = v;
      }
      return old !== undefined && v === old ? next : v;
    }
    if (Array.isArray(v)) return v.map(visit);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, visit(x)]));
    return v;
  };
  // two passes: the first finds the old token wherever it is, the second replaces every copy
  visit(data);
  if (old === undefined || next === undefined) return text;
  registerSecret(next);
  return JSON.stringify(visit(data));
}

export interface RescuingStore extends SecretStore {
  /** See SecretStore.rescuer. Never throws: a rescue that cannot be written changes nothing. */
  rescuer(profile: string, old: string): (next: string) => void;
}

/** `store` with the rescue file around its token cache (see the top of this file). */
export function withRescue(store: SecretStore, paths: Pick<StorePaths, 'dataDir'>): RescuingStore {
  const dir = path.join(paths.dataDir, 'rescue');
  const fileOf = (profile: string) => path.join(dir, `${profile}.token-cache`);
  const clear = (profile: string) => rmSync(fileOf(profile), { force: true });
  const isCache = (kind: SecretKind) => kind === 'token-cache';

  const overrides: Partial<RescuingStore> = {
    async get(profile, kind) {
      const text = await store.get(profile, kind);
      if (!isCache(kind) || text === undefined) return text;
      let record: string;
      try {
        record = await fsp.readFile(fileOf(profile), 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return text;
        throw e;
      }
      return applyRescue(text, record);
    },
    async set(profile, kind, value) {
      await store.set(profile, kind, value);
      if (isCache(kind)) clear(profile);
    },
    async delete(profile, kind) {
      const r = await store.delete(profile, kind);
      if (isCache(kind)) clear(profile);
      return r;
    },
    rescuer(profile, old) {
      const file = fileOf(profile);
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
      } catch {
        return () => undefined;
      }
      // the first HKDF and AES-GCM of a process load their code (about 1-2 ms): do it now, not in
      // the window after the answer
      sealRescue(old, old);
      return (next) => {
        const tmp = `${file}.${process.pid}.tmp`;
        try {
          writeFileSync(tmp, sealRescue(old, next), { mode: 0o600 });
          renameSync(tmp, file);
        } catch {
          rmSync(tmp, { force: true });
        }
      };
    },
  };
  return new Proxy(store, {
    get(target, prop) {
      if (typeof prop === 'string' && prop in overrides) return overrides[prop as keyof RescuingStore];
      const v: unknown = Reflect.get(target, prop);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as RescuingStore;
}

/**
 * The relay's own settings file, `relay.json` beside `config.json` (kept apart from the profiles'
 * field table): listeners, TLS files, limits, and the devices (users) with their password hashes,
 * allowlists and sender policies.
 *
 * Like config.json it is read without repair (a file that does not parse is reported with its path
 * and never overwritten) and written atomically (temp + fsync + rename, 0600 in a 0700 folder)
 * under a cross-process lock with the file re-read inside the lock.
 */
import path from 'node:path';
import { ConfigError } from '../errors/index.js';
import { atomicWriteFile, readFileIfExists } from '../util/fs.js';
import { isEmail } from '../config/schema.js';
import { parseAllow } from './addresses.js';

export const RELAY_VERSION = 1;
/** Exchange Online's message size limit (35 MB); Gmail's is 25 MB. */
export const DEFAULT_MAX_SIZE = 35 * 1024 * 1024;
export const DEFAULT_RATE_PER_MINUTE = 120;
export const DEFAULT_LISTEN = ['127.0.0.1:2587', 'tls://127.0.0.1:2465'];

export interface RelayUser {
  name: string;
  /** The profile (mailbox) that sends this device's mail; none: the relay's --profile or default. */
  profile?: string;
  /** scrypt$N$r$p$salt$hash (./password.ts); never the password. */
  hash: string;
  /** Addresses and CIDRs from which this device may send without AUTH (printers). */
  allowFrom?: string[];
  /** Send-As: From addresses the device may use as they are. Without it, From is rewritten. */
  sendAs?: string[];
  maxSize?: number;
  ratePerMinute?: number;
  createdAt: string;
  changedAt?: string;
}

export interface AuthThrottle {
  /** Bad passwords from one address before each further answer is slowed. */
  slowAfter: number;
  /** Bad passwords from one address before it is refused for lockSeconds. */
  lockAfter: number;
  lockSeconds: number;
}

export interface RelayConfig {
  version: 1;
  listen?: string[];
  tls?: { cert: string; key: string };
  maxSize?: number;
  auth?: Partial<AuthThrottle>;
  /** How often the relay tries its queue (seconds). */
  queueEverySeconds?: number;
  /** ADDR:PORT of the loopback /metrics endpoint. */
  metrics?: string;
  users: RelayUser[];
}

export const DEFAULT_THROTTLE: AuthThrottle = { slowAfter: 3, lockAfter: 10, lockSeconds: 900 };

export function relayFile(configDir: string): string {
  return path.join(configDir, 'relay.json');
}

export const USER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

function bad(file: string, what: string): ConfigError {
  return new ConfigError(`cannot read ${file}: ${what}`, {
    code: 'relay_config_invalid',
    hint: `fix the file by hand (it was not changed), or move it away to start afresh`,
  });
}

const posInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** Parse and check relay.json's text; throws a ConfigError naming the file and the field. */
export function parseRelayConfig(text: string, file: string): RelayConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(file, (e as Error).message.split('\n')[0]!.replace(/, "[\s\S]*$/, ''));
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(file, 'not a JSON object');
  const c = raw as Record<string, unknown>;
  if (c.version !== RELAY_VERSION) throw bad(file, `version must be ${RELAY_VERSION}`);
  if (!Array.isArray(c.users)) throw bad(file, 'users must be a list');
  const names = new Set<string>();
  for (const [i, u] of (c.users as Array<Record<string, unknown>>).entries()) {
    const at = `users[${i}]`;
    if (typeof u !== 'object' || u === null) throw bad(file, `${at} must be an object`);
    if (typeof u.name !== 'string' || !USER_NAME_RE.test(u.name)) throw bad(file, `${at}.name is not a name`);
    if (names.has(u.name.toLowerCase())) throw bad(file, `${at}.name ${u.name} appears twice`);
    names.add(u.name.toLowerCase());
    if (typeof u.hash !== 'string' || !u.hash.startsWith('scrypt$'))
      throw bad(file, `${at}.hash is not a scrypt hash`);
    if (u.allowFrom !== undefined) {
      if (!Array.isArray(u.allowFrom)) throw bad(file, `${at}.allowFrom must be a list`);
      try {
        parseAllow(u.allowFrom as string[]);
      } catch (e) {
        throw bad(file, `${at}.allowFrom: ${(e as Error).message}`);
      }
    }
    if (u.sendAs !== undefined) {
      if (!Array.isArray(u.sendAs) || !u.sendAs.every((a) => typeof a === 'string' && isEmail(a)))
        throw bad(file, `${at}.sendAs must be a list of email addresses`);
    }
    for (const k of ['maxSize', 'ratePerMinute'] as const)
      if (u[k] !== undefined && !posInt(u[k])) throw bad(file, `${at}.${k} must be a positive whole number`);
  }
  if (c.maxSize !== undefined && !posInt(c.maxSize))
    throw bad(file, 'maxSize must be a positive whole number');
  if (c.queueEverySeconds !== undefined && !posInt(c.queueEverySeconds))
    throw bad(file, 'queueEverySeconds must be a positive whole number');
  if (c.listen !== undefined && !(Array.isArray(c.listen) && c.listen.every((l) => typeof l === 'string')))
    throw bad(file, 'listen must be a list of ADDR:PORT');
  if (c.auth !== undefined) {
    const a = c.auth as Record<string, unknown>;
    for (const k of ['slowAfter', 'lockAfter', 'lockSeconds'])
      if (a[k] !== undefined && !posInt(a[k])) throw bad(file, `auth.${k} must be a positive whole number`);
  }
  if (c.tls !== undefined) {
    const t = c.tls as Record<string, unknown>;
    if (typeof t.cert !== 'string' || typeof t.key !== 'string')
      throw bad(file, 'tls needs cert and key (file paths)');
  }
  return c as unknown as RelayConfig;
}

export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

export class RelayStore {
  readonly file: string;

  constructor(
    configDir: string,
    private readonly lock: LockFn,
  ) {
    this.file = relayFile(configDir);
  }

  async load(): Promise<RelayConfig> {
    const text = await readFileIfExists(this.file);
    if (text === undefined) return { version: RELAY_VERSION, users: [] };
    return parseRelayConfig(text, this.file);
  }

  /** Change the file under its lock, re-read inside the lock; returns what fn returned. */
  async update<T>(fn: (c: RelayConfig) => T | Promise<T>): Promise<T> {
    return this.lock('relay-config', async () => {
      const c = await this.load();
      const out = await fn(c);
      await atomicWriteFile(this.file, JSON.stringify(c, null, 2) + '\n', 0o600, { removeStaleTemps: true });
      return out;
    });
  }
}

export function findUser(c: RelayConfig, name: string): RelayUser | undefined {
  return c.users.find((u) => u.name.toLowerCase() === name.toLowerCase());
}

export function throttleOf(c: RelayConfig): AuthThrottle {
  return { ...DEFAULT_THROTTLE, ...c.auth };
}

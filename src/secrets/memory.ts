/**
 * In-memory stores for tests: a SecretStore, and a raw keychain-like backend (optionally with a
 * per-entry size limit, to check that the splitting layer never writes an oversized entry).
 */
import { registerSecret } from '../util/redact.js';
import type { RawBackend } from './split.js';
import type { SecretKind, SecretStore } from './types.js';

export class MemorySecretStore implements SecretStore {
  readonly kind = 'memory' as const;
  readonly location = 'memory';
  readonly entries = new Map<string, string>();

  get(profile: string, kind: SecretKind): Promise<string | undefined> {
    const v = this.entries.get(`${profile}/${kind}`);
    registerSecret(v);
    return Promise.resolve(v);
  }

  set(profile: string, kind: SecretKind, value: string): Promise<void> {
    registerSecret(value);
    this.entries.set(`${profile}/${kind}`, value);
    return Promise.resolve();
  }

  delete(profile: string, kind: SecretKind): Promise<boolean> {
    return Promise.resolve(this.entries.delete(`${profile}/${kind}`));
  }
}

export class MemoryBackend implements RawBackend {
  readonly entries = new Map<string, string>();

  /** @param maxBytes refuse entries larger than this many UTF-8 bytes (as Windows does). */
  constructor(private readonly maxBytes = Infinity) {}

  get(account: string): Promise<string | undefined> {
    return Promise.resolve(this.entries.get(account));
  }

  set(account: string, value: string): Promise<void> {
    if (Buffer.byteLength(value, 'utf8') > this.maxBytes) {
      return Promise.reject(new Error(`entry ${account} is larger than ${this.maxBytes} bytes`));
    }
    this.entries.set(account, value);
    return Promise.resolve();
  }

  delete(account: string): Promise<boolean> {
    return Promise.resolve(this.entries.delete(account));
  }
}

import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/secrets/memory.js';
import { SplitStore, chunkUtf8, defaultSplitLimit } from '../../src/secrets/split.js';

const LIMIT = 2560;

function bigValue(bytesAtLeast: number): string {
  // mixed widths: ASCII, 2-byte (é), 3-byte (€, 日), 4-byte (emoji, a surrogate pair in JS)
  const unit = 'token-cache {"a":"é€日本😀"} ';
  let s = '';
  while (Buffer.byteLength(s, 'utf8') < bytesAtLeast) s += unit;
  return s;
}

describe('splitting layer', () => {
  it('defaults to 2,560 bytes on Windows and a large limit elsewhere', () => {
    expect(defaultSplitLimit('win32')).toBe(2560);
    expect(defaultSplitLimit('linux')).toBeGreaterThan(100_000);
  });

  it('chunks never cut a code point and respect the byte limit', () => {
    const v = bigValue(5000);
    const chunks = chunkUtf8(v, 7);
    expect(chunks.join('')).toBe(v);
    for (const c of chunks) {
      expect(Buffer.byteLength(c, 'utf8')).toBeLessThanOrEqual(7);
      expect(c).not.toMatch(/[\uD800-\uDBFF]$/); // no lone high surrogate at the end
    }
  });

  it('stores a 12 KB non-ASCII value as chunks under the limit and reads it back', async () => {
    const backend = new MemoryBackend(LIMIT); // refuses oversized entries, as Windows does
    const store = new SplitStore(backend, { limitBytes: LIMIT });
    const value = bigValue(12 * 1024);
    expect(Buffer.byteLength(value, 'utf8')).toBeGreaterThanOrEqual(12 * 1024);

    await store.set('work/token-cache', value);
    expect(await store.get('work/token-cache')).toBe(value);

    const head = backend.entries.get('work/token-cache')!;
    expect(head).toMatch(/^oauthmail-split:v1:(\d+):[0-9a-f]{64}$/);
    const n = Number(/:v1:(\d+):/.exec(head)![1]);
    expect(n).toBeGreaterThanOrEqual(5);
    for (let i = 1; i <= n; i++) expect(backend.entries.has(`work/token-cache#${i}`)).toBe(true);
    expect(backend.entries.size).toBe(n + 1);
  });

  it('replacing a large value by a small one leaves no chunks behind', async () => {
    const backend = new MemoryBackend(LIMIT);
    const store = new SplitStore(backend, { limitBytes: LIMIT });
    await store.set('work/token-cache', bigValue(12 * 1024));
    await store.set('other/client-secret', 'unrelated-secret');
    await store.set('work/token-cache', 'small');
    expect(await store.get('work/token-cache')).toBe('small');
    expect([...backend.entries.keys()].sort()).toEqual(['other/client-secret', 'work/token-cache']);
  });

  it('shrinking from many chunks to fewer deletes the leftovers', async () => {
    const backend = new MemoryBackend(LIMIT);
    const store = new SplitStore(backend, { limitBytes: LIMIT });
    await store.set('a/token-cache', bigValue(12 * 1024));
    const v2 = bigValue(6 * 1024);
    await store.set('a/token-cache', v2);
    expect(await store.get('a/token-cache')).toBe(v2);
    const n = Number(/:v1:(\d+):/.exec(backend.entries.get('a/token-cache')!)![1]);
    expect(backend.entries.size).toBe(n + 1);
  });

  it('delete removes the head and every chunk', async () => {
    const backend = new MemoryBackend(LIMIT);
    const store = new SplitStore(backend, { limitBytes: LIMIT });
    await store.set('a/token-cache', bigValue(12 * 1024));
    expect(await store.delete('a/token-cache')).toBe(true);
    expect(backend.entries.size).toBe(0);
    expect(await store.get('a/token-cache')).toBeUndefined();
    expect(await store.delete('a/token-cache')).toBe(false);
  });

  it('writes chunks first and the head last', async () => {
    const order: string[] = [];
    const inner = new MemoryBackend(LIMIT);
    const backend = {
      get: (a: string) => inner.get(a),
      delete: (a: string) => inner.delete(a),
      set: async (a: string, v: string) => {
        order.push(a);
        await inner.set(a, v);
      },
    };
    await new SplitStore(backend, { limitBytes: LIMIT }).set('a/token-cache', bigValue(6000));
    expect(order.at(-1)).toBe('a/token-cache');
    expect(order.slice(0, -1).every((a) => a.startsWith('a/token-cache#'))).toBe(true);
  });

  it('detects a missing or altered chunk instead of returning a spliced value', async () => {
    const backend = new MemoryBackend(LIMIT);
    const store = new SplitStore(backend, { limitBytes: LIMIT, readRetries: 0 });
    await store.set('a/token-cache', bigValue(6000));
    backend.entries.set('a/token-cache#2', 'tampered');
    await expect(store.get('a/token-cache')).rejects.toMatchObject({ code: 'secret_corrupt' });
    backend.entries.delete('a/token-cache#2');
    await expect(store.get('a/token-cache')).rejects.toMatchObject({ code: 'secret_corrupt' });
  });

  it('keeps values that look like a manifest, and empty values, unambiguous', async () => {
    const backend = new MemoryBackend(LIMIT);
    const store = new SplitStore(backend, { limitBytes: LIMIT });
    const tricky = 'oauthmail-split:v1:3:' + '0'.repeat(64);
    await store.set('a/client-secret', tricky);
    expect(await store.get('a/client-secret')).toBe(tricky);
    await store.set('a/certificate', '');
    expect(await store.get('a/certificate')).toBe('');
  });
});

import { describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/secrets/memory.js';
import { redact } from '../../src/util/redact.js';

describe('memory store', () => {
  it('stores, reads, replaces and deletes per profile and kind', async () => {
    const s = new MemorySecretStore();
    expect(s.kind).toBe('memory');
    expect(await s.get('work', 'client-secret')).toBeUndefined();
    await s.set('work', 'client-secret', 'first-secret-value');
    await s.set('home', 'client-secret', 'other-secret-value');
    expect(await s.get('work', 'client-secret')).toBe('first-secret-value');
    await s.set('work', 'client-secret', 'second-secret-value');
    expect(await s.get('work', 'client-secret')).toBe('second-secret-value');
    expect(await s.get('work', 'token-cache')).toBeUndefined();
    expect(await s.delete('work', 'client-secret')).toBe(true);
    expect(await s.delete('work', 'client-secret')).toBe(false);
    expect(await s.get('work', 'client-secret')).toBeUndefined();
    expect(await s.get('home', 'client-secret')).toBe('other-secret-value');
  });

  it('registers stored values for redaction', async () => {
    const s = new MemorySecretStore();
    await s.set('work', 'client-secret', 'Zq8~redact-me-please');
    expect(redact('value is Zq8~redact-me-please!')).not.toContain('Zq8~redact-me-please');
  });
});

/**
 * The rescue file (src/secrets/rescue.ts, issue 12): a rotated refresh token handed to the keeper
 * is on disk at once, encrypted; the store's next read of the token cache shows it in place of
 * the old one; the next write or a logout removes the file.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemorySecretStore } from '../../src/secrets/memory.js';
import { withRescue, applyRescue, sealRescue } from '../../src/secrets/rescue.js';
import { armRescue, armStoreRescue, noteProviderAnswer } from '../../src/util/critical.js';

const OLD = 'rt-old-' + 'a'.repeat(40);
const NEW = 'rt-new-' + 'b'.repeat(40);
const msalCache = (rt: string) =>
  JSON.stringify({
    Account: { a: { home_account_id: 'u.t', username: 'ann@example.com' } },
    RefreshToken: { 'u.t-login-refreshtoken-c--': { secret: rt, home_account_id: 'u.t', client_id: 'c' } },
    AccessToken: {},
  });

function setup() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-rescue-'));
  const inner = new MemorySecretStore();
  const store = withRescue(inner, { dataDir });
  return { dataDir, inner, store, rescueDir: path.join(dataDir, 'rescue') };
}

describe('the rescue file', () => {
  it('a kept token is read back in place of the old one until the store is written', async () => {
    const { inner, store, rescueDir } = setup();
    await store.set('work', 'token-cache', msalCache(OLD));
    const keep = store.rescuer('work', OLD);
    keep(NEW); // the provider answered; the process dies before the store write
    const files = readdirSync(rescueDir);
    expect(files).toEqual(['work.token-cache']);
    const raw = readFileSync(path.join(rescueDir, files[0]!), 'utf8');
    // encrypted: neither token is in the file
    expect(raw).not.toContain(NEW);
    expect(raw).not.toContain(OLD);
    expect(statSync(path.join(rescueDir, files[0]!)).mode & 0o777).toBe(0o600);
    // the next run reads the cache: the new token is in place, the old one gone
    const read = await store.get('work', 'token-cache');
    expect(read).toContain(NEW);
    expect(read).not.toContain(OLD);
    expect(JSON.parse(read!).Account.a.username).toBe('ann@example.com');
    // the inner store still has the old text until a write
    expect(inner.entries.get('work/token-cache')).toContain(OLD);
    await store.set('work', 'token-cache', read!);
    expect(readdirSync(rescueDir)).toEqual([]);
  });

  it('applies only to the cache that holds the token it replaces', async () => {
    const { store } = setup();
    await store.set('work', 'token-cache', JSON.stringify({ refresh_token: 'someone-else' }));
    store.rescuer('work', OLD)(NEW);
    expect(await store.get('work', 'token-cache')).toBe(JSON.stringify({ refresh_token: 'someone-else' }));
    expect(applyRescue('{"refresh_token":"x"}', 'not json')).toBe('{"refresh_token":"x"}');
    // damaged ciphertext: the store's value stands
    const sealed = JSON.parse(sealRescue(OLD, NEW)) as { ct: string };
    sealed.ct = Buffer.from('garbage').toString('base64');
    const text = JSON.stringify({ refresh_token: OLD });
    expect(applyRescue(text, JSON.stringify(sealed))).toBe(text);
  });

  it('a logout removes it', async () => {
    const { store, rescueDir } = setup();
    await store.set('work', 'token-cache', JSON.stringify({ refresh_token: OLD }));
    store.rescuer('work', OLD)(NEW);
    expect(await store.delete('work', 'token-cache')).toBe(true);
    expect(readdirSync(rescueDir)).toEqual([]);
    expect(await store.get('work', 'token-cache')).toBeUndefined();
  });

  it('the HTTP layer hands the answer of the armed refresh, and only that one, to the keeper', async () => {
    const { store } = setup();
    await store.set('work', 'token-cache', JSON.stringify({ refresh_token: OLD, access_token: 'at1' }));
    const disarm = armStoreRescue(store, 'work', OLD);
    const other: string[] = [];
    const disarmOther = armRescue('another-profile-token', (n) => other.push(n));
    // an answer to another request (another profile's refresh, an error) changes nothing
    noteProviderAnswer(
      `grant_type=refresh_token&refresh_token=unrelated`,
      JSON.stringify({ refresh_token: 'x' }),
    );
    noteProviderAnswer(
      new URLSearchParams({ grant_type: 'refresh_token', refresh_token: OLD }).toString(),
      JSON.stringify({ error: 'invalid_grant' }),
    );
    expect(await store.get('work', 'token-cache')).toContain(OLD);
    noteProviderAnswer(
      new URLSearchParams({ grant_type: 'refresh_token', refresh_token: OLD, client_id: 'c' }).toString(),
      JSON.stringify({ access_token: 'at2', refresh_token: NEW, expires_in: 3600 }),
    );
    disarm();
    disarmOther();
    expect(other).toEqual([]);
    const read = JSON.parse((await store.get('work', 'token-cache'))!) as Record<string, string>;
    expect(read.refresh_token).toBe(NEW);
    // disarmed: a later answer is not kept
    noteProviderAnswer(
      new URLSearchParams({ refresh_token: NEW }).toString(),
      JSON.stringify({ refresh_token: 'later' }),
    );
    expect(JSON.parse((await store.get('work', 'token-cache'))!).refresh_token).toBe(NEW);
  });
});

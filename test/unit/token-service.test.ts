/**
 * The token service (src/auth/token-service.ts) in-process, with a scripted grant adapter and the
 * memory store: the one refresh path (cache, lock, re-read, refresh, write inside the lock, health)
 * and sign-ins stored under the lock, for whatever provider the adapter stands for.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Profile } from '../../src/config/schema.js';
import type { LockFn } from '../../src/config/store.js';
import { AuthError } from '../../src/errors/index.js';
import type { GrantAdapter, Issued, SignInUi } from '../../src/auth/grant.js';
import { readHealth } from '../../src/auth/health.js';
import { TokenService } from '../../src/auth/token-service.js';
import type { AuthIo, TokenResult } from '../../src/auth/types.js';
import { MemorySecretStore } from '../../src/secrets/memory.js';

/** The adapter's cache format for this test: {at, exp (ms), rt}. */
interface Cache {
  at: string;
  exp: number;
  rt?: string;
}
const enc = (c: Cache) => JSON.stringify(c);
const dec = (t: string | undefined) => (t ? (JSON.parse(t) as Cache) : undefined);
const result = (c: Cache, fromCache: boolean): TokenResult => ({
  accessToken: c.at,
  expiresOn: new Date(c.exp),
  scopes: ['mail'],
  account: 'a@example.com',
  fromCache,
});

function fakeAdapter(log: string[], o: { refuse?: boolean } = {}): GrantAdapter {
  let n = 0;
  const issue = (rt: string | undefined): Issued => {
    const c = { at: `at-${++n}`, exp: Date.now() + 3600_000, ...(rt ? { rt } : {}) };
    return { text: enc(c), result: result(c, false) };
  };
  return {
    kind: 'custom',
    appOnly: false,
    appOnlyLogin: false,
    cachedToken: (t, min) => {
      const c = dec(t);
      return c && c.exp - Date.now() > min * 1000 ? result(c, true) : undefined;
    },
    refreshTokenOf: (t) => dec(t)?.rt,
    status: () => Promise.reject(new Error('not used')),
    refresh: (_t, rt) => {
      log.push(`refresh ${rt}`);
      if (o.refuse) {
        return Promise.reject(
          new AuthError('refused', { code: 'invalid_grant', hint: 'run: oauthmail login w' }),
        );
      }
      return Promise.resolve(issue(`${rt}+`));
    },
    clientCredentials: () => Promise.resolve(issue(undefined)),
    deviceCode: (_o, ui) => {
      ui.showDeviceCode({ userCode: 'ABCD', verificationUri: 'https://idp/device', expiresIn: 600 }, 'w');
      return Promise.resolve(issue('rt-device'));
    },
    authorizationCode: {
      loopbackTls: false,
      pasteRedirectUri: 'http://127.0.0.1/',
      authorizationUrl: () => Promise.reject(new Error('not used')),
      authorizationError: () => new AuthError('no', { code: 'not_signed_in' }),
      redeemCode: () => Promise.reject(new Error('not used')),
    },
    importRefreshToken: (rt) => Promise.resolve(issue(`${rt}+`)),
    revokeHints: () => [],
  };
}

const io: AuthIo = { stdin: process.stdin, verbose: false, err: () => undefined, debug: () => undefined };

let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oauthmail-ts-'));
  env = { XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir, XDG_STATE_HOME: dir, XDG_CACHE_HOME: dir, HOME: dir };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function service(adapter: GrantAdapter, store: MemorySecretStore, log: string[], ui?: SignInUi) {
  const lock: LockFn = async (name, fn) => {
    log.push(`lock ${name}`);
    try {
      return await fn();
    } finally {
      log.push(`unlock ${name}`);
    }
  };
  const set = store.set.bind(store);
  store.set = async (p, k, v) => {
    log.push(`write ${dec(v)?.rt ?? '-'}`);
    return set(p, k, v);
  };
  return new TokenService('w', {} as Profile, { io, env, lock, store, ...(ui ? { ui } : {}) }, adapter);
}

describe('token service: one refresh path for every provider', () => {
  it('a valid cached token is returned without the lock or a refresh', async () => {
    const log: string[] = [];
    const store = new MemorySecretStore();
    await store.set('w', 'token-cache', enc({ at: 'cached', exp: Date.now() + 3600_000, rt: 'rt0' }));
    const t = await service(fakeAdapter(log), store, log).getToken();
    expect(t).toMatchObject({ accessToken: 'cached', fromCache: true });
    expect(log).toEqual([]);
  });

  it('an expired token is refreshed under the lock, written before the lock is released, and health records it', async () => {
    const log: string[] = [];
    const store = new MemorySecretStore();
    await store.set('w', 'token-cache', enc({ at: 'old', exp: Date.now() - 1000, rt: 'rt0' }));
    const t = await service(fakeAdapter(log), store, log).getToken();
    expect(t).toMatchObject({ accessToken: 'at-1', fromCache: false });
    expect(log).toEqual([
      'lock token-w',
      'refresh rt0',
      'write rt0+',
      'lock health',
      'unlock health',
      'unlock token-w',
    ]);
    expect(dec(await store.get('w', 'token-cache'))?.rt).toBe('rt0+');
    const h = (await readHealth(env)).profiles.w;
    expect(h).toMatchObject({ provider: 'custom' });
    expect(h?.lastRotatedAt).toBeDefined();
  });

  it('re-reads under the lock: a token another process stored meanwhile is used, nothing is redeemed', async () => {
    const log: string[] = [];
    const store = new MemorySecretStore();
    await store.set('w', 'token-cache', enc({ at: 'old', exp: Date.now() - 1000, rt: 'rt0' }));
    const svc = service(fakeAdapter(log), store, log);
    const get = store.get.bind(store);
    let reads = 0;
    store.get = async (p, k) => {
      // the second read is the one under the lock: another process has refreshed by then
      if (++reads === 2)
        await store.set('w', 'token-cache', enc({ at: 'theirs', exp: Date.now() + 3600_000, rt: 'rt1' }));
      return get(p, k);
    };
    const t = await svc.getToken();
    expect(t).toMatchObject({ accessToken: 'theirs', fromCache: true });
    expect(log.filter((l) => l.startsWith('refresh'))).toEqual([]);
  });

  it('forceRefresh redeems even a valid token; no refresh token is not_signed_in (exit 4)', async () => {
    const log: string[] = [];
    const store = new MemorySecretStore();
    await store.set('w', 'token-cache', enc({ at: 'cached', exp: Date.now() + 3600_000, rt: 'rt0' }));
    expect(await service(fakeAdapter(log), store, log).getToken({ forceRefresh: true })).toMatchObject({
      accessToken: 'at-1',
    });
    const empty = new MemorySecretStore();
    await expect(service(fakeAdapter([]), empty, []).getToken()).rejects.toMatchObject({
      code: 'not_signed_in',
      exitCode: 4,
    });
  });

  it('a refused refresh keeps the stored tokens and records the refusal in health', async () => {
    const log: string[] = [];
    const store = new MemorySecretStore();
    await store.set('w', 'token-cache', enc({ at: 'old', exp: Date.now() - 1000, rt: 'rt0' }));
    await expect(service(fakeAdapter(log, { refuse: true }), store, log).getToken()).rejects.toMatchObject({
      code: 'invalid_grant',
    });
    expect(log.filter((l) => l.startsWith('write'))).toEqual([]);
    expect(dec(await store.get('w', 'token-cache'))?.rt).toBe('rt0');
    expect((await readHealth(env)).profiles.w?.lastFailureCode).toBe('invalid_grant');
  });

  it('a device sign-in shows its code through the SignInUi and is stored under the lock', async () => {
    const log: string[] = [];
    const shown: string[] = [];
    const ui: SignInUi = {
      showSignInUrl: () => Promise.resolve(),
      readPastedRedirect: () => Promise.resolve(undefined),
      showDeviceCode: (d) => shown.push(d.userCode),
      slowDown: () => undefined,
      selfSignedCertificate: () => undefined,
      warn: () => undefined,
    };
    const store = new MemorySecretStore();
    const t = await service(fakeAdapter(log), store, log, ui).login({
      method: 'device',
      openBrowser: false,
      timeoutMs: 1000,
    });
    expect(t.accessToken).toBe('at-1');
    expect(shown).toEqual(['ABCD']);
    expect(log.slice(0, 3)).toEqual(['lock token-w', 'write rt-device', 'unlock token-w']);
    expect((await readHealth(env)).profiles.w?.obtainedAt).toBeDefined();
  });
});

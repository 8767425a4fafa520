import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolvePaths, type Paths } from '../../src/config/paths.js';
import { ExitCode } from '../../src/errors/index.js';
import { FileSecretStore } from '../../src/secrets/file.js';
import { KeychainStore, pendingKeychainCalls, type KeytarLike } from '../../src/secrets/keychain.js';
import {
  FALLBACK_MARKER,
  locateSecret,
  openSecretStore,
  resetFallbackWarnings,
} from '../../src/secrets/open.js';

/** An in-memory keytar; `hang` makes every call never settle (until `settle()`), like a stuck D-Bus. */
function fakeKeytar(opts: { hang?: boolean; fail?: string; maxBytes?: number } = {}) {
  const m = new Map<string, string>();
  const pending: Array<() => void> = [];
  const run = <T>(f: () => T): Promise<T> => {
    if (opts.fail) return Promise.reject(new Error(opts.fail));
    if (opts.hang) return new Promise<T>((resolve) => pending.push(() => resolve(f())));
    return Promise.resolve().then(f);
  };
  const k: KeytarLike = {
    getPassword: (s, a) => run(() => m.get(`${s}|${a}`) ?? null),
    setPassword: (s, a, p) =>
      run(() => {
        if (Buffer.byteLength(p) > (opts.maxBytes ?? Infinity)) throw new Error('too big');
        m.set(`${s}|${a}`, p);
      }),
    deletePassword: (s, a) => run(() => m.delete(`${s}|${a}`)),
    findCredentials: (s) =>
      run(() => [...m].filter(([k]) => k.startsWith(`${s}|`)).map(([k, v]) => ({ account: k, password: v }))),
  };
  return { k, m, settle: () => pending.splice(0).forEach((f) => f()) };
}

let root: string;
let paths: Paths;
let warnings: string[];
const warn = (m: string) => warnings.push(m);

beforeEach(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'oauthmail-open-'));
  paths = resolvePaths({ HOME: root, OAUTHMAIL_DATA_DIR: path.join(root, 'data') });
  warnings = [];
  resetFallbackWarnings();
});
afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

describe('keychain store over keytar', () => {
  it('stores under service oauthmail, account <profile>/<kind>, splitting big values', async () => {
    const fk = fakeKeytar({ maxBytes: 2560 });
    const kc = new KeychainStore({ loadKeytar: () => Promise.resolve(fk.k), splitLimitBytes: 2560 });
    const big = 'é€😀x'.repeat(1200);
    await kc.set('work', 'token-cache', big);
    await kc.set('work', 'client-secret', 'cs-1234567890');
    expect(fk.m.get('oauthmail|work/client-secret')).toBe('cs-1234567890');
    expect(fk.m.get('oauthmail|work/token-cache')).toMatch(/^oauthmail-split:v1:\d+:/);
    expect(await kc.get('work', 'token-cache')).toBe(big);
    expect(await kc.delete('work', 'token-cache')).toBe(true);
    expect([...fk.m.keys()]).toEqual(['oauthmail|work/client-secret']);
  });

  it('turns a hung call into keychain_unavailable after the timeout, and counts it as pending', async () => {
    const fk = fakeKeytar({ hang: true });
    const kc = new KeychainStore({
      loadKeytar: () => Promise.resolve(fk.k),
      env: { OAUTHMAIL_KEYCHAIN_TIMEOUT_MS: '150' },
    });
    expect(kc.timeoutMs).toBe(150);
    const before = pendingKeychainCalls();
    const t0 = Date.now();
    const err = await kc.get('work', 'token-cache').catch((e) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err).toMatchObject({ code: 'keychain_unavailable', exitCode: ExitCode.ERROR });
    expect(err.message).toContain('did not answer within 150 ms');
    expect(pendingKeychainCalls()).toBe(before + 1);
    fk.settle();
    await new Promise((r) => setTimeout(r, 10));
    expect(pendingKeychainCalls()).toBe(before);
  });

  it('turns a D-Bus error into keychain_unavailable with the reason', async () => {
    const kc = new KeychainStore({
      loadKeytar: () =>
        Promise.resolve(fakeKeytar({ fail: 'Could not connect: No such file or directory' }).k),
    });
    await expect(kc.set('work', 'client-secret', 'x-1234567890')).rejects.toMatchObject({
      code: 'keychain_unavailable',
      message: 'the keychain is unavailable: Could not connect: No such file or directory.',
    });
    const probe = await kc.probe();
    expect(probe.ok).toBe(false);
  });

  it('a missing keytar module is "unavailable", not a crash', async () => {
    const kc = new KeychainStore({
      loadKeytar: () =>
        Promise.reject(
          Object.assign(new Error("Cannot find package 'keytar'"), { code: 'ERR_MODULE_NOT_FOUND' }),
        ),
    });
    const p = await kc.probe();
    expect(p).toMatchObject({ ok: false, reason: expect.stringContaining('keytar') });
  });
});

describe('openSecretStore', () => {
  it('file → the file store, without probing the keychain', async () => {
    const s = await openSecretStore({ storage: 'file', paths, env: {}, warn });
    expect(s).toBeInstanceOf(FileSecretStore);
    expect(s.location).toBe(paths.secretsDir);
    expect(warnings).toEqual([]);
  });

  it('auto → the keychain when it answers, with no warning', async () => {
    const keychain = new KeychainStore({ loadKeytar: () => Promise.resolve(fakeKeytar().k) });
    const s = await openSecretStore({ storage: 'auto', paths, env: {}, warn, keychain });
    expect(s.kind).toBe('keychain');
    expect(warnings).toEqual([]);
  });

  it('auto → the file store with one warning when the keychain hangs, within the timeout', async () => {
    const env = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' };
    const keychain = () =>
      new KeychainStore({ loadKeytar: () => Promise.resolve(fakeKeytar({ hang: true }).k), timeoutMs: 200 });
    const t0 = Date.now();
    const s = await openSecretStore({ storage: 'auto', paths, env, warn, keychain: keychain() });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.kind).toBe('file');
    expect(warnings).toEqual([
      `the keychain did not answer within 200 ms (probe); storing secrets in ${paths.secretsDir} (mode 0600). Set OAUTHMAIL_PASSPHRASE to encrypt them.`,
    ]);
    // same process: not again
    await openSecretStore({ storage: 'auto', paths, env, warn, keychain: keychain() });
    expect(warnings).toHaveLength(1);
    // a later run (new process): the marker in dataDir keeps it quiet
    resetFallbackWarnings();
    await openSecretStore({ storage: 'auto', paths, env, warn, keychain: keychain() });
    expect(warnings).toHaveLength(1);
    expect(await fsp.readFile(path.join(paths.dataDir, FALLBACK_MARKER), 'utf8')).toBe(warnings[0]);
  });

  it('warns again when the reason changes, and after the keychain came back', async () => {
    const dead = () =>
      new KeychainStore({ loadKeytar: () => Promise.resolve(fakeKeytar({ fail: 'Could not connect' }).k) });
    const s = await openSecretStore({ storage: 'auto', paths, env: {}, warn, keychain: dead() });
    expect(s.kind).toBe('file');
    expect(warnings[0]).toMatch(
      /^no Secret Service on D-Bus \(DBUS_SESSION_BUS_ADDRESS is not set\); storing secrets in /,
    );
    resetFallbackWarnings();
    await openSecretStore({
      storage: 'auto',
      paths,
      env: { OAUTHMAIL_PASSPHRASE: 'p-1234567890' },
      warn,
      keychain: dead(),
    });
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toContain('(mode 0600, encrypted with OAUTHMAIL_PASSPHRASE).');
    // keychain works again: marker cleared, so the next fallback is announced
    resetFallbackWarnings();
    await openSecretStore({
      storage: 'auto',
      paths,
      env: {},
      warn,
      keychain: new KeychainStore({ loadKeytar: () => Promise.resolve(fakeKeytar().k) }),
    });
    await expect(fsp.stat(path.join(paths.dataDir, FALLBACK_MARKER))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await openSecretStore({
      storage: 'auto',
      paths,
      env: { OAUTHMAIL_PASSPHRASE: 'p-1234567890' },
      warn,
      keychain: dead(),
    });
    expect(warnings).toHaveLength(3);
  });

  it('keychain → a clear error naming the reason and the fix when unavailable', async () => {
    const keychain = new KeychainStore({
      loadKeytar: () =>
        Promise.resolve(fakeKeytar({ fail: 'Could not connect: No such file or directory' }).k),
    });
    const err = await openSecretStore({
      storage: 'keychain',
      paths,
      env: { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' },
      warn,
      keychain,
    }).catch((e) => e);
    // exit 3: the profile's configuration (storage) does not fit this session (issue 13)
    expect(err).toMatchObject({ code: 'keychain_unavailable', exitCode: ExitCode.CONFIG });
    expect(err.message).toBe(
      'the keychain is unavailable: no Secret Service on D-Bus (Could not connect: No such file or directory).',
    );
    expect(err.hint).toContain('--storage file');
    expect(err.hint).toContain('Secret Service');
    expect(warnings).toEqual([]);
  });
});

describe('locateSecret', () => {
  it('finds a secret in the keychain, the file store, or both', async () => {
    const fk = fakeKeytar();
    const keychain = new KeychainStore({ loadKeytar: () => Promise.resolve(fk.k) });
    const file = new FileSecretStore({ secretsDir: paths.secretsDir });
    expect(await locateSecret({ paths, env: {}, keychain }, 'work', 'token-cache')).toEqual([]);
    await file.set('work', 'token-cache', 'v-1234567890');
    expect(
      (await locateSecret({ paths, env: {}, keychain }, 'work', 'token-cache')).map((l) => l.kind),
    ).toEqual(['file']);
    await keychain.set('work', 'token-cache', 'v-1234567890');
    const both = await locateSecret({ paths, env: {}, keychain }, 'work', 'token-cache');
    expect(both.map((l) => [l.kind, l.location])).toEqual([
      ['keychain', 'keychain (Secret Service)'],
      ['file', paths.secretsDir],
    ]);
    // an encrypted file is found without the passphrase
    await new FileSecretStore({
      secretsDir: paths.secretsDir,
      passphrase: 'p-1234567890',
      kdf: { N: 1024, r: 8, p: 1 },
    }).set('home', 'client-secret', 'v');
    const dead = new KeychainStore({ loadKeytar: () => Promise.resolve(fakeKeytar({ fail: 'nope' }).k) });
    expect(
      (await locateSecret({ paths, env: {}, keychain: dead }, 'home', 'client-secret')).map((l) => l.kind),
    ).toEqual(['file']);
  });
});

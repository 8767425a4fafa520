/**
 * A profile broken by a hand edit (`smtp.port` set to "587x"): the hint it prints
 * (`profile edit NAME --set KEY=VALUE`) mends it, the other profiles keep working meanwhile, and
 * no write of the config drops the broken profile. Runs the config code in-process.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolvePaths } from '../../src/config/paths.js';
import { ConfigStore, resolveProfileName } from '../../src/config/store.js';
import { Profiles, buildProfile } from '../../src/config/profiles.js';
import { MemorySecretStore } from '../../src/secrets/memory.js';
import { isOauthmailError } from '../../src/errors/index.js';

let dir: string;
let store: ConfigStore;
let profiles: Profiles;

const good = buildProfile([
  ['clientId', '11111111-1111-4111-8111-111111111111'],
  ['user', 'me@contoso.com'],
]);

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-broken-'));
  const paths = resolvePaths({
    OAUTHMAIL_CONFIG_DIR: path.join(dir, 'c'),
    OAUTHMAIL_DATA_DIR: path.join(dir, 'd'),
  });
  mkdirSync(path.dirname(paths.configFile), { recursive: true });
  const work = structuredClone(good) as unknown as Record<string, unknown>;
  work.smtp = { ...(work.smtp as object), port: '587x' };
  writeFileSync(
    paths.configFile,
    JSON.stringify({ version: 1, defaultProfile: 'work', profiles: { work, home: good } }, null, 2),
  );
  store = new ConfigStore(paths);
  const secrets = new MemorySecretStore();
  profiles = new Profiles(store, () => Promise.resolve(secrets));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(fn: () => unknown): { message: string; hint?: string; exitCode: number } {
  try {
    fn();
  } catch (e) {
    if (isOauthmailError(e)) return { message: e.message, hint: e.hint, exitCode: e.exitCode };
    throw e;
  }
  throw new Error('no error');
}

describe('a profile broken by a hand edit', () => {
  it('is refused with exit 3 and a hint that works; the other profile keeps working', async () => {
    const config = await store.load();
    const err = errorOf(() => resolveProfileName(config, 'work', {}));
    expect(err.exitCode).toBe(3);
    expect(err.message).toMatch(/profile "work": .*smtp.*port/);
    expect(err.hint).toMatch(/oauthmail profile edit work --set KEY=VALUE/);
    expect(resolveProfileName(config, 'home', {}).profile.user).toBe('me@contoso.com');
  });

  it('an edit of another profile writes the broken one back unchanged', async () => {
    const before = JSON.parse(readFileSync(store.file, 'utf8')).profiles.work;
    await profiles.edit('home', [['from', 'me@contoso.com']]);
    const after = JSON.parse(readFileSync(store.file, 'utf8'));
    expect(after.profiles.work).toEqual(before);
    expect(after.profiles.home.from).toBe('me@contoso.com');
  });

  it('profile edit NAME --set smtp.port=587 mends it; profile remove works on it too', async () => {
    const p = await profiles.edit('work', [['smtp.port', '587']]);
    expect(p.smtp?.port).toBe(587);
    expect(resolveProfileName(await store.load(), 'work', {}).profile.smtp?.port).toBe(587);

    // break it again, then remove it
    const raw = JSON.parse(readFileSync(store.file, 'utf8'));
    raw.profiles.work.smtp.port = 'x';
    writeFileSync(store.file, JSON.stringify(raw));
    await profiles.remove('work');
    const after = JSON.parse(readFileSync(store.file, 'utf8'));
    expect(Object.keys(after.profiles)).toEqual(['home']);
  });
});

/**
 * The files oauthmail keeps, as a user sees them through the CLI: temp files that a crashed
 * atomic write left (".<file>.<pid>.<random>.tmp", possibly holding a token) are cleaned on the
 * next write and by logout; an encrypted token file that was changed is reported as damaged
 * (not as a wrong passphrase), and one that asks for an absurd scrypt cost is refused at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cliHome, type CliHome } from '../support/cli.js';
import { addMicrosoftProfile, signInDevice, startTestIdp, type TestIdp } from '../support/signin.js';

const PASSPHRASE = 'store-files passphrase 2b8e';
let idp: TestIdp;
let h: CliHome;
let secretsDir: string;
let configDir: string;

const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid;
const temps = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.tmp')) : []);

beforeAll(async () => {
  idp = await startTestIdp();
  expect((await idp.admin('config', { deviceCodeInterval: 1 })).status).toBe(200);
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '', OAUTHMAIL_PASSPHRASE: PASSPHRASE });
  secretsDir = path.join(h.env.OAUTHMAIL_DATA_DIR!, 'secrets');
  configDir = h.env.OAUTHMAIL_CONFIG_DIR!;
  expect((await addMicrosoftProfile(h, 'work', idp.url)).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await idp?.close();
  if (h) rmSync(h.dir, { recursive: true, force: true });
});

async function signIn(): Promise<void> {
  const login = await signInDevice(h, 'work', idp);
  expect(login.code, login.stderr).toBe(0);
}

describe('temp files of crashed writes', () => {
  it('a config temp left by a crash is removed by the next config write', async () => {
    const stale = path.join(configDir, `.config.json.${deadPid()}.0a1b2c3d4e5f.tmp`);
    writeFileSync(stale, '{"half": ', { mode: 0o600 });
    const old = path.join(configDir, `.config.json.1.0a1b2c3d4e5f.tmp`); // pid 1 lives, but 1 h old
    writeFileSync(old, '{"half": ', { mode: 0o600 });
    utimesSync(old, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    const r = await h.run(['profile', 'edit', 'work', '--set', 'smtp.port=587']);
    expect(r.code, r.stderr).toBe(0);
    expect(temps(configDir)).toEqual([]);
  });

  it('a token temp left by a crash is removed by the next token write, and by logout', async () => {
    await signIn();
    const dir = path.join(secretsDir, 'work');
    const cache = readFileSync(path.join(dir, 'token-cache'));
    writeFileSync(path.join(dir, `.token-cache.${deadPid()}.0a1b2c3d4e5f.tmp`), cache, { mode: 0o600 });
    const refresh = await h.run(['refresh', 'work']);
    expect(refresh.code, refresh.stderr).toBe(0);
    expect(temps(dir)).toEqual([]);

    writeFileSync(path.join(dir, `.token-cache.${deadPid()}.0a1b2c3d4e5f.tmp`), cache, { mode: 0o600 });
    const out = await h.run(['logout', 'work', '--no-revoke']);
    expect(out.code, out.stderr).toBe(0);
    expect(temps(dir)).toEqual([]);
    // nothing of the token is left in the profile's folder
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  }, 60_000);
});

describe('a damaged encrypted token file', () => {
  it('changed contents with the right passphrase: "damaged", exit 3; the wrong passphrase: "wrong"', async () => {
    await signIn();
    const file = path.join(secretsDir, 'work', 'token-cache');
    const good = readFileSync(file, 'utf8');
    const env = JSON.parse(good) as Record<string, string>;
    const ct = Buffer.from(env.ct!, 'base64');
    ct[10] = ct[10]! ^ 0x20;
    writeFileSync(file, JSON.stringify({ ...env, ct: ct.toString('base64') }) + '\n', { mode: 0o600 });
    const r = await h.run(['token', 'work']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`the secret file ${file} is damaged`);
    expect(r.stderr).not.toMatch(/wrong or missing|wrong OAUTHMAIL_PASSPHRASE/);
    expect(r.stdout).toBe('');

    writeFileSync(file, good, { mode: 0o600 });
    const wrong = await h.run(['token', 'work'], { env: { OAUTHMAIL_PASSPHRASE: 'not the passphrase' } });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain(`cannot decrypt ${file}: wrong OAUTHMAIL_PASSPHRASE.`);
  }, 60_000);

  it('scrypt N=2^20, r=32 in the file (25 s and 4 GB a read): refused at once as damaged', async () => {
    const file = path.join(secretsDir, 'work', 'token-cache');
    const env = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...env, N: 1 << 20, r: 32 }) + '\n', { mode: 0o600 });
    const t0 = Date.now();
    const r = await h.run(['token', 'work']);
    const ms = Date.now() - t0;
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`the secret file ${file} is damaged`);
    expect(r.stderr).toMatch(/N=1048576, r=32/);
    expect(ms).toBeLessThan(5000);
  }, 60_000);
});

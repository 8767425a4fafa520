/**
 * Issue 2's done-when at the CLI: against the real gnome-keyring (test/support/with-stack.sh),
 * a client secret is stored, read back, replaced, and deleted with its profile; without a Secret
 * Service the file store is used with its warning; an encrypted file is unreadable without the
 * passphrase. Secrets are checked with keytar directly, as another program would see them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliHome } from '../support/cli.js';

const require = createRequire(import.meta.url);
const ID = '22222222-2222-4222-8222-222222222222';
const FIRST = 'first-secret-value-6a1c90';
const SECOND = 'second-secret-value-27fd4e';

type Keytar = { getPassword(s: string, a: string): Promise<string | null> };
let keytar: Keytar;

beforeAll(() => {
  if (!process.env.DBUS_SESSION_BUS_ADDRESS || process.env.OAUTHMAIL_STACK !== '1') {
    throw new Error(
      'these tests need the unlocked gnome-keyring that test/support/with-stack.sh starts: run `npm test`',
    );
  }
  keytar = require('keytar') as Keytar;
});

const add = (name: string, storage: string) => [
  'profile',
  'add',
  name,
  '--client-id',
  ID,
  '--tenant',
  'contoso.test',
  '--user',
  'alice@contoso.test',
  '--client-type',
  'secret',
  '--client-secret-stdin',
  '--storage',
  storage,
];

/** The keychain account of a secret: `<config id>/<profile>/<kind>` (items are keyed per config). */
function accountOf(configFile: string, profile: string, kind = 'client-secret'): string {
  const id = (JSON.parse(readFileSync(configFile, 'utf8')) as { id?: string }).id;
  expect(id).toMatch(/^[0-9a-f]{16}$/);
  return `${id}/${profile}/${kind}`;
}

describe('client secrets in the real keychain', () => {
  it('stored, read back, replaced, moved on rename, deleted with the profile', async () => {
    const home = cliHome();
    const name = `kc${Date.now().toString(36)}`;
    const r = await home.run(add(name, 'keychain'), { input: FIRST });
    expect(r.code, r.stderr).toBe(0);
    expect(await keytar.getPassword('oauthmail', accountOf(home.configFile, name))).toBe(FIRST);
    // nothing on disk
    expect(readFileSync(home.configFile, 'utf8')).not.toContain(FIRST);

    const show = await home.run(['profile', 'show', name, '--json']);
    const shown = JSON.parse(show.stdout) as { secrets: { location: string; stored: string[] } };
    expect(shown.secrets.stored).toEqual(['client-secret']);
    expect(shown.secrets.location).toMatch(/keychain/);

    const rep = await home.run(['profile', 'secret', name, '--stdin'], { input: SECOND });
    expect(rep.code, rep.stderr).toBe(0);
    expect(await keytar.getPassword('oauthmail', accountOf(home.configFile, name))).toBe(SECOND);

    const renamed = `${name}x`;
    expect((await home.run(['profile', 'rename', name, renamed])).code).toBe(0);
    expect(await keytar.getPassword('oauthmail', accountOf(home.configFile, name))).toBeNull();
    expect(await keytar.getPassword('oauthmail', accountOf(home.configFile, renamed))).toBe(SECOND);

    const rm = await home.run(['profile', 'remove', renamed, '--yes']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(await keytar.getPassword('oauthmail', accountOf(home.configFile, renamed))).toBeNull();
    for (const out of [r, show, rep, rm])
      expect(out.stdout + out.stderr).not.toMatch(/first-secret|second-secret/);
  });

  it('auto storage uses the keychain when it answers, with no warning', async () => {
    const home = cliHome();
    const name = `auto${Date.now().toString(36)}`;
    const r = await home.run(add(name, 'auto'), { input: FIRST });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
    expect(await keytar.getPassword('oauthmail', accountOf(home.configFile, name))).toBe(FIRST);
    expect((await home.run(['profile', 'remove', name, '--yes'])).code).toBe(0);
  });
});

describe('no Secret Service', () => {
  it('auto falls back to a 0600 file with one warning saying where and why', async () => {
    const home = cliHome({ DBUS_SESSION_BUS_ADDRESS: '' });
    const r = await home.run(add('cron', 'auto'), { input: FIRST });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: no Secret Service on D-Bus .*storing secrets in .*secrets/);
    const dir = path.join(home.dir, 'data', 'secrets');
    const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(files.length).toBe(1);
    const file = path.join(files[0]!.parentPath, files[0]!.name);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // the warning is not repeated on the next run (cron would mail it every time)
    const again = await home.run(['profile', 'show', 'cron', '--json']);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/warning/);
    expect(JSON.parse(again.stdout).secrets.stored).toEqual(['client-secret']);
  });

  it('keychain storage without a Secret Service fails with the fix, and stores nothing', async () => {
    const home = cliHome({ DBUS_SESSION_BUS_ADDRESS: '' });
    const r = await home.run(add('kc', 'keychain'), { input: FIRST });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/keychain/i);
    expect(r.stderr).toMatch(/--storage file|Secret Service/);
    expect(r.stderr).not.toContain(FIRST);
  });

  it('an encrypted file store cannot be read without the passphrase, and is left unchanged', async () => {
    const home = cliHome({ DBUS_SESSION_BUS_ADDRESS: '', OAUTHMAIL_PASSPHRASE: 'correct horse battery' });
    expect((await home.run(add('enc', 'file'), { input: FIRST })).code).toBe(0);
    const dir = path.join(home.dir, 'data', 'secrets');
    const f = readdirSync(dir, { recursive: true, withFileTypes: true }).find((e) => e.isFile())!;
    const file = path.join(f.parentPath, f.name);
    const before = readFileSync(file);
    expect(before.toString()).not.toContain(FIRST);
    for (const pass of ['', 'wrong passphrase']) {
      const r = await home.run(['profile', 'secret', 'enc', '--stdin'], {
        input: SECOND,
        env: { OAUTHMAIL_PASSPHRASE: pass },
      });
      const show = await home.run(['profile', 'show', 'enc'], { env: { OAUTHMAIL_PASSPHRASE: pass } });
      expect(r.stdout + r.stderr + show.stdout + show.stderr).not.toContain(FIRST);
      expect(readFileSync(file).equals(before)).toBe(true);
    }
    const ok = await home.run(['profile', 'show', 'enc', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

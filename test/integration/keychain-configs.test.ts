/**
 * Issue 12 item 7, through the real keychain (gnome-keyring, test/support/with-stack.sh): two
 * config folders with a profile of the same name each keep their own sign-in, and an item stored
 * under the older name (`<profile>/<kind>`, from before configs had an ID) moves to the config
 * that uses it first. Items are checked with keytar directly, as another program would see them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliHome, type CliHome } from '../support/cli.js';
import { ALICE, addMicrosoftProfile, fixtures, signInDevice, usePrivateIdp } from '../support/signin.js';

const require = createRequire(import.meta.url);
type Keytar = {
  getPassword(s: string, a: string): Promise<string | null>;
  setPassword(s: string, a: string, p: string): Promise<void>;
  deletePassword(s: string, a: string): Promise<boolean>;
};
let keytar: Keytar;
const idp = usePrivateIdp();
const BOB: string = fixtures.microsoft.users[1]!.upn;

beforeAll(() => {
  if (!process.env.DBUS_SESSION_BUS_ADDRESS || process.env.OAUTHMAIL_STACK !== '1')
    throw new Error('these tests need the unlocked gnome-keyring of test/support/with-stack.sh');
  keytar = require('keytar') as Keytar;
});

const home = () => cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
const configOf = (h: CliHome) => JSON.parse(readFileSync(h.configFile, 'utf8')) as { id?: string };

async function status(h: CliHome, name: string): Promise<{ signedIn: boolean; account: string | null }> {
  const r = await h.run(['status', name, '--json']);
  const rows = JSON.parse(r.stdout) as Array<{ signedIn: boolean; account: string | null }>;
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

async function keychainProfile(h: CliHome, name: string): Promise<void> {
  const add = await addMicrosoftProfile(h, name, idp().url, ['--storage', 'keychain']);
  expect(add.code, add.stderr).toBe(0);
}

describe('keychain items per config folder', () => {
  it('two config folders with a profile "work": each keeps its own sign-in', async () => {
    // a name of its own: an item an older oauthmail left under `work/token-cache` in this
    // keyring would go to the first config that uses the name (the next test)
    const work = `work${Date.now().toString(36)}`;
    const a = home();
    const b = home();
    await keychainProfile(a, work);
    await keychainProfile(b, work);
    const la = await signInDevice(a, work, idp(), ALICE.upn);
    expect(la.code, la.stderr).toBe(0);

    // B never signed in: it does not see A's sign-in, and does not send with A's token
    expect(await status(b, work)).toMatchObject({ signedIn: false, account: null });
    const tb = await b.run(['token', work]);
    expect(tb.code, tb.stderr).toBe(4);
    expect(tb.stdout).toBe('');

    const lb = await signInDevice(b, work, idp(), BOB);
    expect(lb.code, lb.stderr).toBe(0);
    expect(await status(b, work)).toMatchObject({ signedIn: true, account: BOB });
    // A's refresh token survived B's sign-in
    expect(await status(a, work)).toMatchObject({ signedIn: true, account: ALICE.upn });
    const ra = await a.run(['token', work, '--force-refresh']);
    expect(ra.code, ra.stderr).toBe(0);
    const rb = await b.run(['token', work, '--force-refresh']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(ra.stdout).not.toBe(rb.stdout);

    // the config keeps its random ID, and the items carry it
    const idA = configOf(a).id!;
    const idB = configOf(b).id!;
    expect(idA).toMatch(/^[0-9a-f]{16}$/);
    expect(idB).toMatch(/^[0-9a-f]{16}$/);
    expect(idA).not.toBe(idB);
    expect(await keytar.getPassword('oauthmail', `${idA}/${work}/token-cache`)).toContain(ALICE.upn);
    expect(await keytar.getPassword('oauthmail', `${idB}/${work}/token-cache`)).toContain(BOB);

    // logging out of one leaves the other signed in
    const out = await b.run(['logout', work]);
    expect(out.code, out.stderr).toBe(0);
    expect(await status(b, work)).toMatchObject({ signedIn: false });
    expect(await status(a, work)).toMatchObject({ signedIn: true, account: ALICE.upn });
  }, 120_000);

  it('an item under the older name moves to the first config that uses it, and only there', async () => {
    const name = `legacy${Date.now().toString(36)}`;
    const a = home();
    await keychainProfile(a, name);
    const login = await signInDevice(a, name, idp(), ALICE.upn);
    expect(login.code, login.stderr).toBe(0);
    // turn it into what an older oauthmail left: the item under `<profile>/token-cache`, a
    // config without an ID
    const cfg = configOf(a);
    const own = `${cfg.id}/${name}/token-cache`;
    const cache = await keytar.getPassword('oauthmail', own);
    expect(cache).toContain(ALICE.upn);
    await keytar.setPassword('oauthmail', `${name}/token-cache`, cache!);
    await keytar.deletePassword('oauthmail', own);
    delete cfg.id;
    writeFileSync(a.configFile, JSON.stringify(cfg, null, 2));

    const r = await a.run(['token', name, '--force-refresh']);
    expect(r.code, r.stderr).toBe(0);
    const id = configOf(a).id!;
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(await keytar.getPassword('oauthmail', `${id}/${name}/token-cache`)).toContain(ALICE.upn);
    expect(await keytar.getPassword('oauthmail', `${name}/token-cache`)).toBeNull();

    // a second config with that profile name finds nothing: the item was claimed
    const b = home();
    await keychainProfile(b, name);
    expect(await status(b, name)).toMatchObject({ signedIn: false });
    expect(await status(a, name)).toMatchObject({ signedIn: true, account: ALICE.upn });
  }, 120_000);
});

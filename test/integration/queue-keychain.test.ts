/**
 * Issue 13, part 3: a profile signed in on the desktop (keychain) and then used from cron, where
 * no keychain can be reached. Commands say exactly that (not "not signed in"), say how a cron job
 * should be set up, and exit 3; sendmail queues; `profile remove` works without the keychain;
 * `profile add --storage keychain` where no keychain answers warns at once.
 * Needs the real gnome-keyring that test/support/with-stack.sh starts.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { cliHome, type CliHome, type CliResult } from '../support/cli.js';
import { stack, waitForMail, type Stack } from './send-support.js';
import { ALICE, addMicrosoftProfile, signInDeviceAtStack } from '../support/signin.js';
import { cronRun, idpRequest } from './queue-support.js';

let s: Stack;
let h: CliHome;
const BOB = 'bob@contoso.test';
const sfx = Date.now().toString(36);
const DESK = `desk${sfx}`; // storage auto: went to the keychain
const KC = `kc${sfx}`; // storage keychain
const tag = () => `k${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

const cron = (args: string[], input?: string): Promise<CliResult> =>
  cronRun(h, args, input !== undefined ? { input } : {});

beforeAll(async () => {
  s = stack();
  if (!process.env.DBUS_SESSION_BUS_ADDRESS)
    throw new Error('needs the keyring of test/support/with-stack.sh');
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
  expect((await idpRequest('/_admin/config', { deviceCodeInterval: 1 })).status).toBe(200);
  const smtp = ['--smtp', `${s.smtpHost}:${s.smtpPort}`, '--smtp-security', 'starttls'];
  for (const [name, storage] of [
    [DESK, 'auto'],
    [KC, 'keychain'],
  ] as const) {
    const r = await addMicrosoftProfile(h, name, s.idpUrl, ['--storage', storage, ...smtp]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/); // the desktop has a keychain
    await signInDeviceAtStack(h, name, ALICE.upn);
  }
}, 90_000);

describe('signed in on the desktop (keychain), used from cron (no D-Bus)', () => {
  for (const which of ['auto', 'keychain'] as const) {
    it(`storage ${which}: send says the keychain cannot be reached and how to set up cron, exit 3; status too`, async () => {
      const name = which === 'auto' ? DESK : KC;
      const r = await cron(['send', '-p', name, '--to', BOB, '-s', 'x', '--body', 'x']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/^oauthmail: the keychain is unavailable: no Secret Service on D-Bus/m);
      expect(r.stderr).not.toMatch(/not signed in|oauthmail login \S+$/m);
      expect(r.stderr).toMatch(new RegExp(`oauthmail profile edit ${name} --set storage=file`));
      expect(r.stderr).toMatch(/OAUTHMAIL_PASSPHRASE_FILE/);
      if (which === 'auto') expect(r.stderr).toMatch(/was signed in on \d{4}-.*not a missing sign-in/);
      const st = await cron(['status', name]);
      expect(st.code, st.stdout + st.stderr).toBe(3);
      expect(st.stdout + st.stderr).toMatch(/keychain is unavailable/);
      expect(st.stdout).not.toMatch(/signed in\s+no/);
      // on the desktop all is well
      const desk = await h.run(['status', name]);
      expect(desk.code, desk.stdout + desk.stderr).toBe(0);
    });
  }

  it('sendmail from cron queues it (exit 0, "keychain"); queue run from the desktop delivers it', async () => {
    const t = tag();
    const r = await cron(['sendmail', '-p', DESK, BOB], `Subject: kc ${t}\n\nbody ${t}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^oauthmail: queued \S+ \(the keychain cannot be reached from this session: /m);
    const run = await h.run(['queue', 'run']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/delivered \S+ \(desk/);
    expect(await waitForMail(s, BOB, `kc ${t}`, 1)).toHaveLength(1);
  });

  it('profile add --storage keychain warns at once; profile remove works without the keychain and says what it left', async () => {
    const add = await cron([
      'profile',
      'add',
      `new${sfx}`,
      '--client-id',
      '11111111-1111-4111-8111-111111111111',
      '--tenant',
      'contoso.test',
      '--storage',
      'keychain',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toMatch(/warning: the keychain is unavailable: .*Signing in to new\S+ will fail here/);
    expect(add.stderr).toMatch(/storage=file/);
    const rm = await cron(['profile', 'remove', KC, '--yes']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stderr).toMatch(new RegExp(`Removed profile ${KC}`));
    expect(rm.stderr).toMatch(
      new RegExp(
        `its keychain items \\(service oauthmail, accounts ${KC}/…: tokens, client secret\\) were not removed: the keychain is unavailable`,
      ),
    );
    const list = await h.run(['profile', 'list', '--json']);
    expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((p) => p.name)).not.toContain(KC);
  });
});

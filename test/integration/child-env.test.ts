/**
 * Programs oauthmail starts for the user get the user's environment without oauthmail's
 * secrets: `exec` adds a fresh access token (what it documents), `watch --exec` the message
 * (a handler reading untrusted mail gets no token and nothing that unlocks the stored one).
 * The profile's tokens live in the file store encrypted with OAUTHMAIL_PASSPHRASE, as in the
 * report (the passphrase let a handler decrypt the stored refresh token).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, cliHome, type CliHome } from '../support/cli.js';
import { ALICE, addMicrosoftProfile, signInDevice, startTestIdp, type TestIdp } from '../support/signin.js';
import { adminClient, freshFolder, rawMessage, stack } from './fetch-support.js';

const s = stack();
const PASSPHRASE = 'child-env passphrase 7f3a9c';
const CLIENT_SECRET = 'child-env-client-secret-51d0';
let idp: TestIdp;
let h: CliHome;
let work: string;

const parseEnv = (text: string): Record<string, string> =>
  Object.fromEntries(
    text
      .split('\0')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-child-env-'));
  idp = await startTestIdp();
  expect((await idp.admin('config', { deviceCodeInterval: 1 })).status).toBe(200);
  h = cliHome({
    DISPLAY: '',
    WAYLAND_DISPLAY: '',
    BROWSER: '',
    OAUTHMAIL_PASSPHRASE: PASSPHRASE,
    OAUTHMAIL_PASSPHRASE_FILE: path.join(work, 'passphrase'),
    OAUTHMAIL_CLIENT_SECRET: CLIENT_SECRET,
    KEEP_ME: 'kept',
  });
  const add = await addMicrosoftProfile(h, 'work', idp.url, [
    '--imap',
    `localhost:${s.imapsPort}`,
    '--imap-security',
    'tls',
  ]);
  expect(add.code, add.stderr).toBe(0);
  const login = await signInDevice(h, 'work', idp);
  expect(login.code, login.stderr).toBe(0);
  // the stored token is encrypted with the passphrase
  const cache = readFileSync(path.join(h.env.OAUTHMAIL_DATA_DIR!, 'secrets', 'work', 'token-cache'), 'utf8');
  expect(cache).toMatch(/^\{"oauthmail":"secret"/);
}, 120_000);

afterAll(async () => {
  await idp?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  if (h) rmSync(h.dir, { recursive: true, force: true });
});

describe('environment of child programs', () => {
  it('exec: the access token and the user environment, but not OAUTHMAIL_PASSPHRASE(_FILE) or OAUTHMAIL_CLIENT_SECRET', async () => {
    const r = await h.run(['exec', '-p', 'work', '--', 'sh', '-c', 'env -0'], {
      env: { OAUTHMAIL_ACCESS_TOKEN: 'stale-token-from-the-parent' },
    });
    expect(r.code, r.stderr).toBe(0);
    const env = parseEnv(r.stdout);
    expect(env.OAUTHMAIL_ACCESS_TOKEN).toMatch(/^eyJ/);
    expect(env.OAUTHMAIL_USER).toBe(ALICE.upn);
    expect(env.OAUTHMAIL_PROFILE).toBe('work');
    expect(env.KEEP_ME).toBe('kept');
    expect(env.OAUTHMAIL_CONFIG_DIR).toBe(h.env.OAUTHMAIL_CONFIG_DIR);
    for (const k of ['OAUTHMAIL_PASSPHRASE', 'OAUTHMAIL_PASSPHRASE_FILE', 'OAUTHMAIL_CLIENT_SECRET'])
      expect(env, k).not.toHaveProperty(k);
    expect(r.stdout).not.toContain(PASSPHRASE);
    expect(r.stdout).not.toContain(CLIENT_SECRET);
  });

  it('watch --exec: the message and the user environment, but no token and no secret', async () => {
    const admin = await adminClient(s, ALICE.upn);
    const folder = await freshFolder(admin, 'childenv');
    const out = path.join(work, 'watch-out');
    mkdirSync(out);
    const w = spawn(
      process.execPath,
      [BIN, 'watch', '-p', 'work', '--mailbox', folder, '--exec', 'env -0 > "$WATCH_OUT/env-$OAUTHMAIL_UID"'],
      {
        env: { ...h.env, WATCH_OUT: out, OAUTHMAIL_ACCESS_TOKEN: 'stale-token-from-the-parent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    w.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => w.on('close', (code) => r(code)));
    try {
      const until = async (what: string, check: () => boolean) => {
        const end = Date.now() + 60_000;
        while (!check()) {
          if (Date.now() > end) throw new Error(`gave up waiting for ${what}\n${stderr}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      await until('watch to start idling', () => new RegExp(`watching ${folder}`).test(stderr));
      await admin.append(folder, rawMessage(1, 500, { subject: 'child env' }));
      await until('the command to run', () => readdirSync(out).length === 1);
      const file = path.join(out, readdirSync(out)[0]!);
      await until(
        'the command to finish',
        () => existsSync(file) && readFileSync(file, 'utf8').includes('\0'),
      );
      w.kill('SIGTERM');
      expect(await exited).toBe(0);
      const text = readFileSync(file, 'utf8');
      const env = parseEnv(text);
      expect(env.OAUTHMAIL_MAILBOX).toBe(folder);
      expect(env.OAUTHMAIL_UID).toMatch(/^\d+$/);
      expect(env.KEEP_ME).toBe('kept');
      for (const k of [
        'OAUTHMAIL_PASSPHRASE',
        'OAUTHMAIL_PASSPHRASE_FILE',
        'OAUTHMAIL_CLIENT_SECRET',
        'OAUTHMAIL_ACCESS_TOKEN',
      ])
        expect(env, k).not.toHaveProperty(k);
      expect(text).not.toContain(PASSPHRASE);
      expect(text).not.toContain(CLIENT_SECRET);
      expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    } finally {
      if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
      await admin.mailboxDelete(folder).catch(() => undefined);
      await admin.logout().catch(() => undefined);
    }
  }, 120_000);
});

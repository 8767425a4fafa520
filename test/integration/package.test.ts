/**
 * The package as users get it: `npm pack` from a fresh clone (prepack builds dist/), installed with
 * `npm install -g` into an empty prefix, then run from there: --version, profile add, a device-code
 * sign-in at the stack's identity provider, and a message sent through the stack's Postfix.
 * (A tarball without dist/ installs fine and cannot start: this is what would catch it.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, cliHome, type CliHome } from '../support/cli.js';
import { signInStackProfile } from '../support/signin.js';
import { stack, waitForMail } from './send-support.js';

let work: string;
let tarball: string;
let h: CliHome;
let manPage: string;
const npm = (args: string[], cwd: string) =>
  spawnSync('npm', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'oauthmail-pack-'));
  // a fresh clone of what is committed: no dist/ in it, as on a publisher's machine or in CI
  const clone = path.join(work, 'clone');
  const git = spawnSync('git', ['clone', '-q', '--no-hardlinks', ROOT, clone], { encoding: 'utf8' });
  expect(git.status, git.stderr).toBe(0);
  expect(existsSync(path.join(clone, 'dist'))).toBe(false);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'));
  const packed = npm(['pack', '--json', '--pack-destination', work], clone);
  expect(packed.status, packed.stderr).toBe(0);
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  tarball = path.join(work, info[0]!.filename);
  const files = info[0]!.files.map((f) => f.path);
  expect(files).toContain('dist/main.js');
  expect(files).toContain('bin/oauthmail.js');
  // the man page, generated from the help text by `npm run build` (issue 18)
  expect(files).toContain('dist/oauthmail.1');
  expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
  const prefix = path.join(work, 'prefix');
  const inst = npm(
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--omit=optional',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      tarball,
    ],
    work,
  );
  expect(inst.status, inst.stderr).toBe(0);
  const bin = path.join(prefix, 'lib', 'node_modules', 'oauthmail', 'bin', 'oauthmail.js');
  expect(existsSync(path.join(prefix, 'bin', 'oauthmail'))).toBe(true);
  manPage = path.join(prefix, 'share', 'man', 'man1', 'oauthmail.1');
  h = cliHome({ DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' }, { bin });
}, 240_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
  if (h) rmSync(h.dir, { recursive: true, force: true });
});

describe('the packed tarball, installed into an empty prefix', () => {
  it('installs the man page, which renders with man -l and holds every command and the exit codes', () => {
    expect(existsSync(manPage)).toBe(true);
    const r = spawnSync('man', ['-l', manPage], {
      encoding: 'utf8',
      env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '100', MAN_KEEP_FORMATTING: '' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no roff warnings
    const text = r.stdout; // plain: man-db drops bold/underline when stdout is not a terminal
    expect(text).toMatch(/^OAUTHMAIL\(1\)/);
    for (const section of ['NAME', 'SYNOPSIS', 'COMMANDS', 'EXIT STATUS', 'ENVIRONMENT'])
      expect(text).toContain(`\n${section}\n`);
    for (const cmd of [
      'oauthmail token',
      'oauthmail send',
      'oauthmail profile add',
      'oauthmail relay user add',
    ])
      expect(text).toContain(`\n   ${cmd}\n`);
    // the examples that --help prints after the options are there too
    expect(text).toContain('$ oauthmail token work --sasl oauthbearer --protocol imap');
  });

  it('starts, signs in by device code at the stack and sends a message', async () => {
    const version = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
    const v = await h.run(['--version']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe(version);

    const s = stack();
    await signInStackProfile(h, s.idpUrl, `${s.smtpHost}:${s.smtpPort}`);
    const tag = `packed-${Date.now()}`;
    const sent = await h.run([
      'send',
      '-p',
      'work',
      '--to',
      'bob@contoso.test',
      '-s',
      tag,
      '--body',
      'from the tarball',
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    expect(await waitForMail(s, 'bob@contoso.test', tag, 1)).toHaveLength(1);
  }, 120_000);
});

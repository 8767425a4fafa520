/**
 * Secrets sweep (issue 8): every command, with --verbose, on the local stack (private fake Entra
 * ID, Postfix, Dovecot), with an encrypted file store. No access token, refresh token, client
 * secret, passphrase or password may show in stdout (except where it is the data asked for:
 * `token`, `export`), stderr, the config file, the data folder, or any log of the stack; the
 * config and data files are 0600 in 0700 folders.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliHome, type CliHome, type CliResult } from '../support/cli.js';
import {
  addMicrosoftProfile,
  fixtures,
  signInDevice,
  startTestIdp,
  TID,
  ALICE,
  type TestIdp,
} from '../support/signin.js';

const DAEMON = fixtures.microsoft.clients[2]! as { clientId: string; secret: string };
const PASSPHRASE = `pass-${Math.random().toString(36).slice(2)}-phrase`;
let t: TestIdp;
let h: CliHome;
const secrets = new Set<string>([DAEMON.secret, PASSPHRASE, ALICE.password]);
const outputs: Array<{ args: string[]; r: CliResult; stdoutIsData: boolean }> = [];

async function run(
  args: string[],
  opts: { input?: string; stdoutIsData?: boolean } = {},
): Promise<CliResult> {
  const r = await h.run([...args, '--verbose'], { input: opts.input, timeoutMs: 60_000 });
  outputs.push({ args, r, stdoutIsData: !!opts.stdoutIsData });
  return r;
}

function walk(dir: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile() && st.size < 50_000_000) out.push(p);
  }
  return out;
}

beforeAll(async () => {
  t = await startTestIdp();
  await t.admin('config', { deviceCodeInterval: 1 });
  h = cliHome({ OAUTHMAIL_PASSPHRASE: PASSPHRASE, DISPLAY: '', WAYLAND_DISPLAY: '', BROWSER: '' });
}, 60_000);
afterAll(async () => {
  await t?.close();
});

describe('secrets sweep', () => {
  it('no token, secret or passphrase in any output, config, data file or stack log; modes 0600/0700', async () => {
    const smtp = `${process.env.SMTP_HOST ?? 'localhost'}:${process.env.SMTP_PORT}`;
    const imap = `${process.env.IMAP_HOST ?? 'localhost'}:${process.env.IMAP_PORT}`;
    const add = await addMicrosoftProfile(h, 'work', t.url, [
      '--smtp',
      smtp,
      '--smtp-security',
      'starttls',
      '--imap',
      imap,
      '--imap-security',
      'starttls',
      '--verbose',
    ]);
    expect(add.code, add.stderr).toBe(0);
    outputs.push({ args: ['profile', 'add', 'work'], r: add, stdoutIsData: false });
    const login = await signInDevice(h, 'work', t, ALICE.upn, 60_000, ['--verbose']);
    expect(login.code, login.stderr).toBe(0);
    outputs.push({ args: ['login', 'work', '--device'], r: login, stdoutIsData: false });

    const daemon = await run(
      [
        'profile',
        'add',
        'daemon',
        '--client-id',
        DAEMON.clientId,
        '--authority',
        `${t.url}/${TID}/`,
        '--flow',
        'client-credentials',
        '--client-secret-stdin',
        '--user',
        ALICE.upn,
        '--storage',
        'file',
      ],
      { input: DAEMON.secret + '\n' },
    );
    expect(daemon.code, daemon.stderr).toBe(0);

    // the data each command is asked for: tokens (collected as secrets to look for elsewhere)
    for (const args of [
      ['token', 'work'],
      ['token', 'work', '--force-refresh'],
      ['token', 'daemon'],
      ['token', 'work', '--json'],
    ]) {
      const r = await run(args, { stdoutIsData: true });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      for (const m of r.stdout.matchAll(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g)) secrets.add(m[0]);
    }
    const exp = await run(['export', 'work', '--yes'], { stdoutIsData: true });
    expect(exp.code, exp.stderr).toBe(0);
    const tokens = JSON.parse(exp.stdout) as { access_token: string; refresh_token: string };
    secrets.add(tokens.access_token);
    secrets.add(tokens.refresh_token);

    const must0: string[][] = [
      ['status'],
      ['status', 'work', '--json'],
      ['refresh', 'work'],
      ['profile', 'list'],
      ['profile', 'show', 'work', '--json'],
      ['profile', 'show', 'daemon'],
      ['send', '-p', 'work', '--to', 'bob@contoso.test', '-s', 'sweep', '--body', 'sweep body'],
      ['mailboxes', '-p', 'work'],
      ['list', '-p', 'work', '--limit', '3'],
      ['fetch', '-p', 'work', '--limit', '1', '-o', join(h.dir, 'fetched')],
      ['exec', '-p', 'work', '--', 'sh', '-c', 'test -n "$OAUTHMAIL_ACCESS_TOKEN$OAUTHMAIL_TOKEN" || true'],
    ];
    for (const args of must0) {
      const r = await run(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const sm = await run(['sendmail', '-p', 'work', '-t', '-i'], {
      input: 'To: bob@contoso.test\nSubject: sweep sendmail\n\nhello\n',
    });
    expect(sm.code, sm.stderr).toBe(0);
    // commands whose outcome depends on the fake provider's coverage: only the leak check matters
    for (const args of [
      ['test', 'work'],
      ['consent-url', 'work'],
      ['scopes'],
      ['profile', 'secret', 'daemon', '--stdin'],
    ]) {
      await run(args, { input: DAEMON.secret + '\n' });
    }
    writeFileSync(join(h.dir, 'import.json'), JSON.stringify(tokens), { mode: 0o600 });
    await run(['import', 'work', '--file', join(h.dir, 'import.json')]);
    const bad = await run(['token', 'nope']);
    expect(bad.code).toBe(3);
    await run(['logout', 'work']);

    const live = [...secrets].filter((s) => s && s.length >= 8);
    expect(live.length).toBeGreaterThanOrEqual(6);
    const leaks: string[] = [];
    const check = (where: string, text: string) => {
      for (const s of live) if (text.includes(s)) leaks.push(`${where} holds ${s.slice(0, 6)}…`);
    };
    for (const { args, r, stdoutIsData } of outputs) {
      if (!stdoutIsData) check(`stdout of ${args.join(' ')}`, r.stdout);
      check(`stderr of ${args.join(' ')}`, r.stderr);
    }
    for (const f of walk(join(h.dir, 'config'))) check(f, readFileSync(f, 'latin1'));
    for (const f of walk(join(h.dir, 'data'))) check(f, readFileSync(f, 'latin1'));
    const logDirs = [
      process.env.STACK_LOG_DIR,
      process.env.OAUTHMAIL_STACK_DIR && join(process.env.OAUTHMAIL_STACK_DIR, 'logs'),
    ];
    for (const d of logDirs) if (d) for (const f of walk(d)) check(f, readFileSync(f, 'latin1'));
    expect(leaks).toEqual([]);

    // modes: files 0600, folders 0700, in the config and data folders
    const wrong: string[] = [];
    for (const root of [join(h.dir, 'config'), join(h.dir, 'data')]) {
      const visit = (p: string) => {
        const st = statSync(p);
        const mode = st.mode & 0o777;
        if (st.isDirectory()) {
          if (mode !== 0o700) wrong.push(`${p} ${mode.toString(8)}`);
          for (const n of readdirSync(p)) visit(join(p, n));
        } else if (mode !== 0o600) wrong.push(`${p} ${mode.toString(8)}`);
      };
      visit(root);
    }
    expect(wrong).toEqual([]);
  }, 300_000);
});

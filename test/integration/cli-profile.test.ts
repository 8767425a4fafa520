/**
 * The profile commands through the real CLI: what a user sees, the exit codes, and that bad
 * input never changes the config file.
 */
import { readFileSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliHome, type CliHome } from '../support/cli.js';

const ID = '11111111-1111-4111-8111-111111111111';
const SECRET = 'client-secret-value-3b9f0e1d';

function addArgs(name: string, ...extra: string[]): string[] {
  return [
    'profile',
    'add',
    name,
    '--client-id',
    ID,
    '--tenant',
    'contoso.test',
    '--user',
    'alice@contoso.test',
    '--storage',
    'file',
    ...extra,
  ];
}

describe('profile commands', () => {
  let home: CliHome;
  beforeAll(async () => {
    home = cliHome();
    const r = await home.run(addArgs('work'));
    expect(r.stderr).toContain('Added profile work');
    expect(r.code).toBe(0);
  });

  it('writes the config atomically with private modes', () => {
    const st = statSync(home.configFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(home.configFile)).mode & 0o777).toBe(0o700);
    const cfg = JSON.parse(readFileSync(home.configFile, 'utf8'));
    expect(cfg.version).toBe(1);
    expect(cfg.defaultProfile).toBe('work');
    expect(cfg.profiles.work.smtp).toEqual({ host: 'smtp.office365.com', port: 587, security: 'starttls' });
    // no temp files left behind
    expect(readdirSync(path.dirname(home.configFile)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('lists and shows profiles; stdout is data, talk is on stderr', async () => {
    const list = await home.run(['profile', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^\* work\s+microsoft\s+browser\s+alice@contoso.test$/m);
    const json = await home.run(['profile', 'list', '--json']);
    expect(JSON.parse(json.stdout)).toEqual([
      { name: 'work', default: true, provider: 'microsoft', flow: 'browser', user: 'alice@contoso.test' },
    ]);
    const show = await home.run(['profile', 'show', 'work', '--json']);
    expect(show.code).toBe(0);
    const shown = JSON.parse(show.stdout);
    expect(shown.profile.clientId).toBe(ID);
    expect(shown.secrets.stored).toEqual([]);
    const text = await home.run(['profile', 'show']);
    expect(text.stdout).toContain('work (default)');
    expect(text.stdout).toMatch(/smtp\s+smtp.office365.com:587 \(starttls\)/);
  });

  describe('refuses bad input with exit 2 and leaves the config unchanged', () => {
    const cases: Array<[string, string[], RegExp]> = [
      [
        'unknown provider',
        ['profile', 'add', 'x', '--provider', 'yahoo', '--client-id', ID],
        /provider must be one of: microsoft, google, custom/,
      ],
      ['bad email', addArgs('x', '--from', 'alice.contoso.test'), /from must be an address like/],
      [
        'bad user',
        ['profile', 'add', 'x', '--client-id', ID, '--user', 'alice'],
        /user must be an email address/,
      ],
      [
        'port out of range',
        addArgs('x', '--set', 'smtp.port=65536'),
        /smtp.port must be a whole number from 1 to 65535/,
      ],
      [
        'not a GUID',
        ['profile', 'add', 'x', '--client-id', 'my-app'],
        /clientId must be the Application \(client\) ID GUID/,
      ],
      ['duplicate name', addArgs('work'), /a profile named "work" already exists/],
      ['invalid name (slash)', addArgs('bad/name'), /invalid profile name "bad\/name"/],
      ['invalid name (dots)', addArgs('..'), /invalid profile name "\.\."/],
      ['invalid name (space)', addArgs('my work'), /invalid profile name "my work"/],
      ['unknown key', addArgs('x', '--set', 'colour=red'), /unknown profile key "colour"/],
      ['--set without =', ['profile', 'edit', 'work', '--set', 'smtp.port'], /--set takes KEY=VALUE/],
      [
        'edit with a bad value',
        ['profile', 'edit', 'work', '--set', 'imap.security=ssl'],
        /imap.security must be one of: tls, starttls, none/,
      ],
      [
        'a secret in argv is not an option',
        [...addArgs('x'), '--client-secret', SECRET],
        /unknown option '--client-secret'/,
      ],
      ['unknown command flag', ['profile', 'list', '--bogus'], /unknown option '--bogus'/],
      [
        'CRLF in a header-bound value',
        ['profile', 'edit', 'work', '--set', 'replyTo=a@b.example\r\nBcc: evil@x.example'],
        /replyTo must not contain line breaks/,
      ],
    ];
    it.each(cases)('%s', async (_n, args, re) => {
      const before = readFileSync(home.configFile);
      const r = await home.run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toContain(SECRET);
      expect(readFileSync(home.configFile).equals(before)).toBe(true);
    });
  });

  it('unknown profile: exit 3 naming the known ones', async () => {
    const r = await home.run(['profile', 'show', 'nope']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no profile named "nope"');
    expect(r.stderr).toContain('known profiles: work');
  });

  it.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf'])(
    'a name that is also a JavaScript object key (%s) is an unknown profile, then an ordinary one',
    async (name) => {
      const before = readFileSync(home.configFile);
      for (const args of [
        ['-p', name, 'token'],
        ['profile', 'show', name],
        ['profile', 'rename', name, 'renamed'],
        ['profile', 'remove', name, '--yes'],
      ]) {
        const r = await home.run(args);
        expect(r.code, args.join(' ')).toBe(3);
        expect(r.stderr).toContain(`no profile named "${name}"`);
        expect(r.stderr).not.toContain('unexpected error');
      }
      expect(readFileSync(home.configFile).equals(before)).toBe(true);

      expect((await home.run(addArgs(name))).code).toBe(0);
      const shown = await home.run(['profile', 'show', name, '--json']);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout).name).toBe(name);
      expect((await home.run(['profile', 'remove', name, '--yes'])).code).toBe(0);
      expect(readFileSync(home.configFile).equals(before)).toBe(true);
    },
  );

  it('--auth-param adds authorization parameters; reserved and malformed names are refused (exit 2)', async () => {
    const before = readFileSync(home.configFile);
    for (const [arg, msg] of [
      ['state=x', 'authorization parameter state is set by oauthmail itself'],
      ['code_challenge=x', 'authorization parameter code_challenge is set by oauthmail itself'],
      ['__proto__=x', 'authorization parameter name "__proto__" is invalid'],
      ['novalue', '--auth-param takes NAME=VALUE'],
    ] as const) {
      const r = await home.run(['profile', 'edit', 'work', '--auth-param', arg]);
      expect(r.code, arg).toBe(2);
      expect(r.stderr).toContain(msg);
      expect(readFileSync(home.configFile).equals(before)).toBe(true);
    }
    const ok = await home.run([
      'profile',
      'edit',
      'work',
      '--auth-param',
      'domain_hint=contoso.test',
      '--auth-param',
      'x=a=b',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(readFileSync(home.configFile, 'utf8')).profiles.work.authParams).toEqual({
      domain_hint: 'contoso.test',
      x: 'a=b',
    });
    const unset = await home.run([
      'profile',
      'edit',
      'work',
      '--unset',
      'authParams.domain_hint',
      '--unset',
      'authParams.x',
    ]);
    expect(unset.code, unset.stderr).toBe(0);
    expect(JSON.parse(readFileSync(home.configFile, 'utf8')).profiles.work.authParams ?? {}).toEqual({});
  });

  it('edits, renames, switches the default and removes', async () => {
    expect(
      (
        await home.run([
          'profile',
          'edit',
          'work',
          '--set',
          'smtp=localhost:2525',
          '--set',
          'capabilities=send',
        ])
      ).code,
    ).toBe(0);
    const cfg = JSON.parse(readFileSync(home.configFile, 'utf8'));
    expect(cfg.profiles.work.smtp).toEqual({ host: 'localhost', port: 2525, security: 'starttls' });
    expect(cfg.profiles.work.scopes).not.toContain('https://outlook.office.com/IMAP.AccessAsUser.All');

    expect((await home.run(addArgs('second'))).code).toBe(0);
    expect((await home.run(['profile', 'use', 'second'])).code).toBe(0);
    expect(JSON.parse(readFileSync(home.configFile, 'utf8')).defaultProfile).toBe('second');
    expect((await home.run(['profile', 'rename', 'second', 'third'])).code).toBe(0);
    const after = JSON.parse(readFileSync(home.configFile, 'utf8'));
    expect(Object.keys(after.profiles).sort()).toEqual(['third', 'work']);
    expect(after.defaultProfile).toBe('third');

    // non-interactive remove needs --yes
    const no = await home.run(['profile', 'remove', 'third']);
    expect(no.code).toBe(2);
    expect(no.stderr).toContain('oauthmail profile remove third --yes');
    expect((await home.run(['profile', 'remove', 'third', '--yes'])).code).toBe(0);
    expect(Object.keys(JSON.parse(readFileSync(home.configFile, 'utf8')).profiles)).toEqual(['work']);
  });

  it('OAUTHMAIL_PROFILE and -p pick the profile', async () => {
    expect((await home.run(addArgs('other'))).code).toBe(0);
    const a = await home.run(['profile', 'show', '--json'], { env: { OAUTHMAIL_PROFILE: 'other' } });
    expect(JSON.parse(a.stdout).name).toBe('other');
    const b = await home.run(['-p', 'work', 'profile', 'show', '--json'], {
      env: { OAUTHMAIL_PROFILE: 'other' },
    });
    expect(JSON.parse(b.stdout).name).toBe('work');
  });
});

describe('client secrets', () => {
  it('come from stdin, are stored in the file store, and go with the profile', async () => {
    const home = cliHome();
    const r = await home.run(addArgs('daemon', '--flow', 'client-credentials', '--client-secret-stdin'), {
      input: SECRET + '\n',
    });
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).not.toContain(SECRET);
    expect(readFileSync(home.configFile, 'utf8')).not.toContain(SECRET);
    const show = await home.run(['profile', 'show', 'daemon', '--json']);
    expect(JSON.parse(show.stdout).secrets.stored).toEqual(['client-secret']);
    expect(show.stdout).not.toContain(SECRET);

    // replaced through the environment variable, renamed with the profile, deleted with it
    const rep = await home.run(['profile', 'secret', 'daemon'], {
      env: { OAUTHMAIL_CLIENT_SECRET: 'another-secret-value-77' },
    });
    expect(rep.code).toBe(0);
    expect((await home.run(['profile', 'rename', 'daemon', 'cron'])).code).toBe(0);
    const moved = await home.run(['profile', 'show', 'cron', '--json']);
    expect(JSON.parse(moved.stdout).secrets.stored).toEqual(['client-secret']);
    const rm = await home.run(['profile', 'remove', 'cron', '--yes']);
    expect(rm.code).toBe(0);
    expect(rm.stderr).toContain('client-secret');
    const leftovers = JSON.stringify(readdirRecursive(path.join(home.dir, 'data')));
    expect(leftovers).not.toContain('cron');
    expect(leftovers).not.toContain('daemon');
  });

  it('non-interactive add without a secret says how to set it', async () => {
    const home = cliHome();
    const r = await home.run(addArgs('daemon', '--flow', 'client-credentials'));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('oauthmail profile secret daemon');
  });
});

describe('config file that cannot be read', () => {
  it('is reported with path, line and column, and never overwritten', async () => {
    const home = cliHome();
    await home.run(addArgs('work'));
    const broken = readFileSync(home.configFile, 'utf8').replace('"version": 1,', '"version": 1,,');
    writeFileSync(home.configFile, broken);
    for (const args of [
      addArgs('x'),
      ['profile', 'list'],
      ['profile', 'edit', 'work', '--set', 'smtp.port=25'],
      ['profile', 'use', 'work'],
    ]) {
      const r = await home.run(args);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        new RegExp(`cannot read config ${home.configFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2:\\d+`),
      );
      expect(readFileSync(home.configFile, 'utf8')).toBe(broken);
    }
  });

  it('a profile with a wrong type is named; the others are still listed', async () => {
    const home = cliHome();
    await home.run(addArgs('work'));
    await home.run(addArgs('home'));
    const cfg = JSON.parse(readFileSync(home.configFile, 'utf8'));
    cfg.profiles.work.smtp.port = '587';
    const text = JSON.stringify(cfg);
    writeFileSync(home.configFile, text);
    const r = await home.run(['profile', 'list']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('profile "work": smtp.port must be a whole number from 1 to 65535');
    expect(r.stderr).toContain('oauthmail profile edit work --set KEY=VALUE');
    expect(r.stdout).toMatch(/^\s+home\s/m);
    expect(readFileSync(home.configFile, 'utf8')).toBe(text);
    // the hint works: the profile is mended
    const fixed = await home.run(['profile', 'edit', 'work', '--set', 'smtp.port=587']);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect((await home.run(['profile', 'list'])).code).toBe(0);
  });
});

describe('help', () => {
  it('sendmail --help and help sendmail list its options and exit codes (was "unknown option --", exit 64)', async () => {
    for (const args of [
      ['sendmail', '--help'],
      ['help', 'sendmail'],
    ]) {
      const r = await cliHome().run(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^\s+-t\s+take the recipients from To:/m);
      expect(r.stdout).toMatch(/^\s+--no-queue\s/m);
      expect(r.stdout).toMatch(/Exit codes[^\n]*\n\s+0\s+sent, or kept in the queue/);
      expect(r.stdout).toMatch(/75\s+temporary failure/);
    }
  });

  it('lists every exit code', async () => {
    const r = await cliHome().run(['help', 'exit-codes']);
    expect(r.code).toBe(0);
    for (const n of [0, 1, 2, 3, 4, 5, 6, 130, 143]) expect(r.stdout).toMatch(new RegExp(`^  ${n} `, 'm'));
    // the name and its meaning never run together ("interruptedStopped" before)
    for (const line of r.stdout.split('\n').filter((l) => /^ {2}\d/.test(l)))
      expect(line).toMatch(/^ {2}\d+\s+[a-z]+\s{2,}\S/);
  });
  it('lists every profile subcommand', async () => {
    const r = await cliHome().run(['profile', '--help']);
    expect(r.code).toBe(0);
    for (const c of ['add', 'list', 'show', 'edit', 'rename', 'remove', 'use', 'secret', 'keys']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    }
  });
  it('unknown commands are usage errors', async () => {
    const r = await cliHome().run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });
  it('--version prints only the version', async () => {
    const r = await cliHome().run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

function readdirRecursive(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...readdirRecursive(p));
  }
  return out;
}

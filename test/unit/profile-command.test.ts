/**
 * `oauthmail profile ...` in-process: one table tests flags -> options (pure functions), another
 * runs the commands through main() with memory streams and a throw-away config folder. The field
 * table is checked to reach every place it feeds: the Profile type, validation, --set/--unset,
 * `profile keys`, the add/edit flags and `profile show`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { Context } from '../../src/cli/context.js';
import { Io } from '../../src/cli/io.js';
import { addOptions, type AddOptions } from '../../src/cli/commands/profile/add.js';
import { editOptions } from '../../src/cli/commands/profile/edit.js';
import { settingsFrom } from '../../src/cli/commands/profile/flags.js';
import { registerProfile } from '../../src/cli/commands/profile/index.js';
import { keysOptions, runKeys } from '../../src/cli/commands/profile/keys.js';
import { removeOptions, renameOptions, useOptions } from '../../src/cli/commands/profile/manage.js';
import { secretOptions } from '../../src/cli/commands/profile/secret.js';
import { showOptions } from '../../src/cli/commands/profile/show.js';
import { bool } from '../../src/config/codecs.js';
import { applySetting, FLAGS, KEYS, showRows, validateProfile } from '../../src/config/derive.js';
import { PROFILE_FIELDS } from '../../src/config/fields.js';
import { buildProfile } from '../../src/config/profiles.js';
import type { Profile, RetryPolicy } from '../../src/config/schema.js';
import { UsageError } from '../../src/errors/index.js';
import { main } from '../../src/main.js';

const ID = '11111111-1111-4111-8111-111111111111';

/** Memory streams and a config folder of its own; `run` calls main() in-process. */
function home() {
  const dir = mkdtempSync(path.join(tmpdir(), 'oauthmail-profile-cmd-'));
  const env = { OAUTHMAIL_CONFIG_DIR: path.join(dir, 'c'), OAUTHMAIL_DATA_DIR: path.join(dir, 'd'), CI: '1' };
  const streams = () => {
    const s = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
    let out = '';
    let err = '';
    s.stdout.on('data', (d: Buffer) => (out += d.toString()));
    s.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return { s, text: () => ({ stdout: out, stderr: err }) };
  };
  return {
    dir,
    env,
    configFile: path.join(dir, 'c', 'config.json'),
    async run(argv: string[], input = '') {
      const { s, text } = streams();
      s.stdin.end(input);
      const code = await main(argv, { ...s, env });
      return { code, ...text() };
    },
    /** A Context on memory streams, for calling a run function directly. */
    context() {
      const { s, text } = streams();
      return { ctx: new Context(new Io({ ...s, env }), env), text };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

describe('flags -> options (pure)', () => {
  const cases: Array<[string, () => unknown, unknown]> = [
    [
      'add: key flags in table order, then --set, --auth-param',
      () =>
        addOptions(['w'], {
          set: ['smtp.port=2525'],
          authParam: ['access_type=offline'],
          smtpSecurity: 'tls',
          clientId: ID,
          provider: 'custom',
          thumbprint: 'ab',
          use: true,
        }),
      {
        name: 'w',
        settings: [
          ['provider', 'custom'],
          ['clientId', ID],
          ['certificateThumbprint', 'ab'],
          ['smtp.security', 'tls'],
          ['smtp.port', '2525'],
          ['authParams.access_type', 'offline'],
        ],
        clientSecretStdin: false,
        use: true,
      } satisfies AddOptions,
    ],
    [
      'add: secret sources',
      () =>
        addOptions(['w'], { clientSecretStdin: true, certificate: '/k.pem', serviceAccountKey: '/sa.json' }),
      {
        name: 'w',
        settings: [],
        clientSecretStdin: true,
        certificate: '/k.pem',
        serviceAccountKey: '/sa.json',
        use: false,
      },
    ],
    [
      'edit: --unset last, values kept as given',
      () => editOptions(['w'], { unset: ['redirectPort'], set: ['signature=a=b'], replyTo: 'x@y.test' }),
      {
        name: 'w',
        settings: [
          ['replyTo', 'x@y.test'],
          ['signature', 'a=b'],
          ['redirectPort', undefined],
        ],
      },
    ],
    ['show: the argument before -p', () => showOptions(['a'], { profile: 'b' }), { name: 'a' }],
    ['show: -p without an argument', () => showOptions([undefined], { profile: 'b' }), { name: 'b' }],
    ['show: neither', () => showOptions([undefined], {}), {}],
    ['remove', () => removeOptions(['w'], { yes: true }), { name: 'w', yes: true }],
    ['rename', () => renameOptions(['a', 'b']), { from: 'a', to: 'b' }],
    ['use', () => useOptions(['a']), { name: 'a' }],
    [
      'secret: client secret from stdin, with expiry',
      () => secretOptions(['w'], { stdin: true, expires: '2027-01-31' }),
      { name: 'w', source: { kind: 'client-secret', stdin: true }, expires: '2027-01-31' },
    ],
    [
      'secret: a certificate file wins over --stdin',
      () => secretOptions(['w'], { stdin: true, certificate: '/k.pem' }),
      { name: 'w', source: { kind: 'certificate', file: '/k.pem' } },
    ],
    ['keys: every provider', () => keysOptions([], {}), {}],
    ['keys: one provider', () => keysOptions([], { provider: 'google' }), { provider: 'google' }],
  ];
  it.each(cases)('%s', (_name, make, want) => {
    expect(make()).toEqual(want);
  });

  const refused: Array<[string, () => unknown, RegExp]> = [
    [
      '--set without =',
      () => settingsFrom({ set: ['smtp.port'] }),
      /^--set takes KEY=VALUE \(got "smtp.port"\)$/,
    ],
    ['--auth-param without =', () => settingsFrom({ authParam: ['x'] }), /^--auth-param takes NAME=VALUE/],
    ['keys --provider yahoo', () => keysOptions([], { provider: 'yahoo' }), /--provider must be one of/],
    ['no name', () => editOptions([], {}), /profile edit needs a profile NAME/],
  ];
  it.each(refused)('refuses %s (exit 2)', (_name, make, re) => {
    let err: unknown;
    try {
      make();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(re);
  });
});

const h = home();
afterAll(() => h.cleanup());

describe('profile commands in-process', () => {
  beforeAll(async () => {
    const r = await h.run([
      'profile',
      'add',
      'work',
      '--client-id',
      ID,
      '--user',
      'alice@contoso.test',
      '--storage',
      'file',
      '--smtp',
      'smtp.contoso.test:2525',
      '--set',
      'signature=Alice\n-- \nContoso',
    ]);
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(r.stderr).toContain('Added profile work (microsoft, browser sign-in).');
    expect(r.stderr).toContain('Next: oauthmail login work');
  });

  it('show prints the rows of the table, in its order, and where secrets are', async () => {
    const r = await h.run(['profile', 'show', 'work']);
    expect(r.code).toBe(0);
    const keys = r.stdout
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean);
    expect(keys).toEqual([
      'provider',
      'tenant',
      'clientId',
      'clientType',
      'flow',
      'capabilities',
      'scopes',
      'user',
      'signature',
      'smtp',
      'imap',
      'sasl',
      'retry',
      'storage',
      'secrets',
    ]);
    expect(r.stdout).toMatch(/^work \(default\)$/m);
    expect(r.stdout).toMatch(/^ {2}smtp {18}smtp\.contoso\.test:2525 \(starttls\)$/m);
    expect(r.stdout).toMatch(/^ {2}signature {13}Alice …$/m);
    expect(r.stdout).toMatch(/^ {2}retry {17}any, 4 attempts, 1000 ms ×2 \(max 30000 ms\)$/m);
    expect(r.stdout).toMatch(/^ {2}secrets {15}none in .*secrets$/m);
  });

  it('edit through a flag, --set and --unset; list shows the result', async () => {
    const e = await h.run(['profile', 'edit', 'work', '--imap-security', 'starttls', '--unset', 'signature']);
    expect(e).toMatchObject({ code: 0, stdout: '', stderr: 'Updated profile work.\n' });
    const cfg = JSON.parse(readFileSync(h.configFile, 'utf8'));
    expect(cfg.profiles.work.imap.security).toBe('starttls');
    expect(cfg.profiles.work.signature).toBeUndefined();
    const l = await h.run(['profile', 'list']);
    expect(l.stdout).toMatch(/^\* work\s+microsoft\s+browser\s+alice@contoso\.test$/m);
  });

  it('an unknown capability is refused by name, exit 2, config unchanged', async () => {
    const before = readFileSync(h.configFile, 'utf8');
    const r = await h.run(['profile', 'edit', 'work', '--capabilities', 'send,write']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^oauthmail: capabilities must be one of: send, read \(got "write"\)$/m);
    expect(readFileSync(h.configFile, 'utf8')).toBe(before);
  });

  it('keys lists every settable key of the table; --json says its kind and providers', async () => {
    const r = await h.run(['profile', 'keys']);
    expect(r.code).toBe(0);
    const listed = r.stdout.trim().split('\n');
    expect(listed.map((l) => l.split(/\s+/)[0])).toEqual(KEYS.map((k) => k.key));
    expect(listed).toContain(`${'smtp.security'.padEnd(24)}starttls, tls or none`);
    const j = await h.run(['profile', 'keys', '--json']);
    const keys = JSON.parse(j.stdout) as Array<{ key: string; kind: string; providers: string[] }>;
    expect(keys.find((k) => k.key === 'tenant')).toMatchObject({ kind: 'string', providers: ['microsoft'] });
    expect(keys.find((k) => k.key === 'smtp')).toMatchObject({ kind: 'hostport' });
  });

  it('keys --provider lists only the keys of that provider (run called directly)', async () => {
    const { ctx, text } = h.context();
    await runKeys({ provider: 'google' }, ctx);
    const keys = text()
      .stdout.trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0]);
    expect(keys).toContain('authorizationEndpoint');
    expect(keys).toContain('clientId');
    expect(keys).not.toContain('tenant');
    expect(keys).not.toContain('issuer');
  });

  it('remove without --yes off a terminal needs confirmation (exit 2)', async () => {
    const r = await h.run(['profile', 'remove', 'work']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hint: run: oauthmail profile remove work --yes');
  });
});

describe('the field table reaches every place', () => {
  it('infers the Profile type', () => {
    expectTypeOf<Profile['provider']>().toEqualTypeOf<'microsoft' | 'google' | 'custom'>();
    expectTypeOf<Profile['smtp']>().toEqualTypeOf<
      { host: string; port: number; security: 'starttls' | 'tls' | 'none' } | undefined
    >();
    expectTypeOf<Profile['capabilities']>().toEqualTypeOf<Array<'send' | 'read'>>();
    expectTypeOf<Profile['authParams']>().toEqualTypeOf<Record<string, string> | undefined>();
    expectTypeOf<RetryPolicy['statusCodes']>().toEqualTypeOf<number[] | undefined>();
    expectTypeOf<keyof Profile>().toEqualTypeOf<keyof typeof PROFILE_FIELDS>();
  });

  it('every flag is an option of both profile add and profile edit', () => {
    const program = new Command('oauthmail');
    registerProfile(program, h.context().ctx);
    const profile = program.commands.find((c) => c.name() === 'profile')!;
    for (const sub of ['add', 'edit']) {
      const cmd = profile.commands.find((c) => c.name() === sub)!;
      const longs = cmd.options.map((o) => o.long);
      for (const f of FLAGS) expect(longs, `${sub} --${f.name}`).toContain(`--${f.name}`);
    }
    expect(FLAGS.map((f) => f.name)).toContain('thumbprint');
    expect(FLAGS.find((f) => f.key === 'imap.security')?.name).toBe('imap-security');
  });

  it('every key can be set and unset, and a stored profile names each bad key', () => {
    const base = buildProfile([
      ['clientId', ID],
      ['user', 'a@contoso.test'],
    ]);
    const samples: Record<string, string> = {
      int: '7',
      number: '3',
      list: 'send',
      intlist: '500 503',
      hostport: 'mail.example.com:2525',
      map: 'a=1',
      boolean: 'yes',
    };
    for (const k of KEYS) {
      const d = structuredClone(base) as unknown as Record<string, unknown>;
      applySetting(d, k.key, samples[k.kind] ?? 'x');
      expect(JSON.stringify(d), k.key).not.toBe(JSON.stringify(base));
      applySetting(d, k.key, undefined);
      expect(
        k.key.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)?.[p], d),
        k.key,
      ).toBe(undefined);
    }
    for (const key of Object.keys(PROFILE_FIELDS)) {
      expect(() => validateProfile({ ...base, [key]: Symbol('bad') as unknown }), key).toThrow(
        new RegExp(`^${key}`),
      );
    }
  });

  it('has a boolean value ready for keys such as saveToSentItems', () => {
    const c = bool();
    expect(c.parse!('Yes', 'k', undefined)).toBe(true);
    expect(c.parse!('off', 'k', undefined)).toBe(false);
    expect(() => c.parse!('maybe', 'k', undefined)).toThrow(/^k must be true or false \(got "maybe"\)$/);
    expect(() => c.check('true', 'k')).toThrow(/^k must be true or false$/);
    expect(() => c.check(false, 'k')).not.toThrow();
  });

  it('show hides only the keys the table hides', () => {
    const p = buildProfile([
      ['clientId', ID],
      ['timeout', '20'],
      ['queue', 'off'],
      ['prompt', 'consent'],
    ]);
    const shown = showRows(p).map(([k]) => k);
    expect(shown).toContain('prompt');
    expect(shown).not.toContain('timeout');
    expect(shown).not.toContain('queue');
  });
});

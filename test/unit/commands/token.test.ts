/** `oauthmail token`: flags -> options (pure), and run -> output in-process. */
import { describe, expect, it } from 'vitest';
import {
  runToken,
  tokenOptions,
  type TokenFlags,
  type TokenOptions,
} from '../../../src/cli/commands/token.js';
import { addMicrosoft, home } from './support.js';

const base: TokenFlags = { minValidity: '300', protocol: 'smtp' };
const want = (o: Partial<TokenOptions>): TokenOptions => ({
  profile: undefined,
  minValiditySeconds: 300,
  forceRefresh: false,
  sasl: undefined,
  protocol: 'smtp',
  json: false,
  ...o,
});

describe('token flags -> options', () => {
  const ok: Array<
    [string, { profile?: string }, Partial<TokenFlags>, { profile?: string; json?: boolean }, TokenOptions]
  > = [
    ['defaults', {}, {}, {}, want({})],
    ['argument', { profile: 'work' }, {}, {}, want({ profile: 'work' })],
    ['-p when no argument', {}, {}, { profile: 'g' }, want({ profile: 'g' })],
    ['argument before -p', { profile: 'a' }, {}, { profile: 'g' }, want({ profile: 'a' })],
    ['--sasl alone: xoauth2', {}, { sasl: true }, {}, want({ sasl: 'xoauth2' })],
    ['--sasl OAUTHBEARER', {}, { sasl: 'OAUTHBEARER' }, {}, want({ sasl: 'oauthbearer' })],
    ['--sasl work: the profile', {}, { sasl: 'work' }, {}, want({ profile: 'work', sasl: 'xoauth2' })],
    ['--protocol imap', {}, { protocol: 'imap' }, {}, want({ protocol: 'imap' })],
    [
      '--min-validity 0 --force-refresh --json',
      {},
      { minValidity: '0', forceRefresh: true },
      { json: true },
      want({ minValiditySeconds: 0, forceRefresh: true, json: true }),
    ],
  ];
  it.each(ok)('%s', (_n, args, flags, globals, expected) => {
    expect(tokenOptions(args, { ...base, ...flags }, globals)).toEqual(expected);
  });

  const bad: Array<[string, { profile?: string }, Partial<TokenFlags>, RegExp]> = [
    [
      '--sasl plain with a profile',
      { profile: 'w' },
      { sasl: 'plain' },
      /--sasl must be xoauth2 or oauthbearer/,
    ],
    ['--protocol pop', {}, { protocol: 'pop' }, /--protocol must be smtp or imap/],
    ['--min-validity -1', {}, { minValidity: '-1' }, /--min-validity must be a whole number/],
    ['--min-validity 1.5', {}, { minValidity: '1.5' }, /--min-validity/],
    ['--min-validity 86401', {}, { minValidity: '86401' }, /from 0 to 86400/],
  ];
  it.each(bad)('%s: UsageError (exit 2)', (_n, args, flags, msg) => {
    expect(() => tokenOptions(args, { ...base, ...flags }, {})).toThrow(msg);
    try {
      tokenOptions(args, { ...base, ...flags }, {});
    } catch (e) {
      expect(e).toMatchObject({ code: 'bad_usage', exitCode: 2 });
    }
  });
});

describe('token run -> output', () => {
  it('a profile never signed in: exit 4 and the login command on stderr, nothing on stdout', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const r = await h.run(['token', 'work']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/oauthmail login work/);
  });

  it('an unknown profile: exit 3 naming it', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await expect(runToken(want({ profile: 'nope' }), t.ctx)).rejects.toMatchObject({ exitCode: 3 });
    expect(t.out()).toBe('');
  });

  it('a bad flag: exit 2 before any profile is read', async () => {
    const h = home();
    const r = await h.run(['token', 'work', '--protocol', 'pop']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--protocol must be smtp or imap');
  });
});

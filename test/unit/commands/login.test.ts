/** `oauthmail login`: flags -> options (pure), and run -> output in-process (no person, no browser). */
import { describe, expect, it } from 'vitest';
import { loginOptions, runLogin, type LoginFlags } from '../../../src/cli/commands/login.js';
import { addMicrosoft, home } from './support.js';

const base: LoginFlags = { timeout: '300' };

describe('login flags -> options', () => {
  it('defaults and the three-state --browser', () => {
    expect(loginOptions({ profile: 'w' }, base, {})).toEqual({
      profile: 'w',
      device: false,
      browser: undefined,
      paste: false,
      prompt: undefined,
      loginHint: undefined,
      domainHint: undefined,
      timeoutSeconds: 300,
    });
    expect(loginOptions({}, { ...base, browser: false, prompt: 'consent' }, { profile: 'g' })).toMatchObject({
      profile: 'g',
      browser: false,
      prompt: 'consent',
    });
  });

  const bad: Array<[string, Partial<LoginFlags>, string]> = [
    ['--timeout 0', { timeout: '0' }, '--timeout must be a whole number of seconds from 1 to 3600'],
    ['--timeout 1.5', { timeout: '1.5' }, '--timeout must be a whole number'],
    ['--prompt maybe', { prompt: 'maybe' }, '--prompt must be one of: '],
    ['--paste --device', { paste: true, device: true }, '--paste excludes --device and --browser'],
    ['--paste --browser', { paste: true, browser: true }, '--paste excludes --device and --browser'],
    [
      '--device --no-browser',
      { device: true, browser: false },
      '--device and --browser/--no-browser exclude each other',
    ],
  ];
  it.each(bad)('%s: UsageError', (_n, flags, msg) => {
    expect(() => loginOptions({}, { ...base, ...flags }, {})).toThrow(msg);
  });
});

describe('login run -> output', () => {
  it('no terminal and no --device/--no-browser: exit 4 with the commands that work', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx();
    await expect(runLogin(loginOptions({ profile: 'work' }, base, {}), t.ctx)).rejects.toMatchObject({
      code: 'not_interactive',
      exitCode: 4,
      hint: expect.stringContaining('oauthmail login work --device') as unknown,
    });
    expect(t.out()).toBe('');
  });

  it('--paste for a Google profile: exit 2 naming the port forward', async () => {
    const h = home();
    const add = await h.run(
      [
        'profile',
        'add',
        'g',
        '--provider',
        'google',
        '--client-id',
        'x.apps.googleusercontent.com',
        '--user',
        'a@gmail.com',
        '--storage',
        'file',
      ],
      {
        env: { OAUTHMAIL_CLIENT_SECRET: 'GOCSPX-unit-test-secret' },
      },
    );
    expect(add.code, add.stderr).toBe(0);
    const r = await h.run(['login', 'g', '--paste']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--paste is not available for google profiles yet');
  });
});

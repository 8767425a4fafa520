/**
 * exec, test, import and refresh: flags -> options (pure), and run -> output in-process (the
 * paths that need no identity provider; the rest is in test/integration).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execOptions } from '../../../src/cli/commands/exec.js';
import { importOptions, runImport } from '../../../src/cli/commands/import.js';
import { refreshOptions, runRefresh } from '../../../src/cli/commands/refresh.js';
import { runTest, testOptions, type TestFlags } from '../../../src/cli/commands/test.js';
import { addMicrosoft, home } from './support.js';

describe('flags -> options', () => {
  it('exec', () => {
    expect(execOptions({ command: ['sh', '-c', 'true'] }, { minValidity: '300' }, { profile: 'w' })).toEqual({
      profile: 'w',
      command: ['sh', '-c', 'true'],
      minValiditySeconds: 300,
    });
    expect(() => execOptions({ command: [] }, { minValidity: '300' }, {})).toThrow(
      'give a command to run after --',
    );
    expect(() => execOptions({ command: ['x'] }, { minValidity: 'soon' }, {})).toThrow(
      '--min-validity must be a whole number of seconds from 0 to 86400',
    );
  });

  const tbase: TestFlags = { timeout: '20' };
  it('test', () => {
    expect(testOptions({ profile: 'w' }, tbase, { json: true, verbose: true })).toEqual({
      profile: 'w',
      json: true,
      verbose: true,
      sendTo: undefined,
      tokenStdin: false,
      ca: undefined,
      insecureTls: false,
      timeoutSeconds: 20,
    });
    expect(testOptions({}, { ...tbase, sendTo: 'bob@example.com', tokenStdin: true }, {})).toMatchObject({
      sendTo: 'bob@example.com',
      tokenStdin: true,
    });
    expect(() => testOptions({}, { timeout: '0' }, {})).toThrow(
      '--timeout must be a number of seconds from 1 to 600',
    );
    expect(() => testOptions({}, { timeout: '601' }, {})).toThrow('--timeout');
    expect(() => testOptions({}, { ...tbase, sendTo: 'bob' }, {})).toThrow(
      '--send-to "bob" is not an email address',
    );
  });

  it('import', () => {
    expect(importOptions({}, { file: '-' }, { profile: 'g', json: true })).toEqual({
      profile: 'g',
      file: '-',
      json: true,
    });
  });

  it('refresh', () => {
    expect(refreshOptions({}, { all: true, quiet: true }, {})).toEqual({
      profile: undefined,
      all: true,
      quiet: true,
    });
    expect(refreshOptions({ profile: 'w' }, {}, { profile: 'g' })).toEqual({
      profile: 'w',
      all: false,
      quiet: false,
    });
    expect(() => refreshOptions({ profile: 'w' }, { all: true }, {})).toThrow(
      'give a profile or --all, not both',
    );
  });
});

describe('run -> output', () => {
  it('exec through main: the child is not started without a sign-in (exit 4)', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const r = await h.run(['exec', '-p', 'work', '--', 'sh', '-c', 'echo ran']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('oauthmail login work');
  });

  it('test --token-stdin with an empty stdin: exit 2', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx({ input: '' });
    await expect(
      runTest(testOptions({ profile: 'work' }, { timeout: '20', tokenStdin: true }, {}), t.ctx),
    ).rejects.toThrow('--token-stdin: stdin was empty');
  });

  it('test --token-stdin from a terminal: exit 2 with the pipe to use', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const t = h.ctx({ tty: true });
    await expect(
      runTest(testOptions({ profile: 'work' }, { timeout: '20', tokenStdin: true }, {}), t.ctx),
    ).rejects.toMatchObject({
      exitCode: 2,
      hint: 'oauthmail token other-profile | oauthmail test work --token-stdin',
    });
  });

  it('import: a file that is not JSON is bad input, and its content is not quoted', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const f = path.join(h.dir, 'tokens.json');
    writeFileSync(f, 'refresh=supersecretvalue');
    const t = h.ctx();
    await expect(runImport({ profile: 'work', file: f, json: false }, t.ctx)).rejects.toMatchObject({
      code: 'bad_input',
      message: `${f} is not a JSON token file`,
    });
    const stdin = h.ctx({ input: '{"refresh_token": 42}' });
    await expect(runImport({ profile: 'work', file: '-', json: false }, stdin.ctx)).rejects.toThrow(
      '-: refresh_token must be a string',
    );
  });

  it('refresh --all without profiles: says how to add one; --json is []', async () => {
    const h = home();
    const t = h.ctx();
    await runRefresh({ profile: undefined, all: true, quiet: false }, t.ctx);
    expect(t.err()).toContain('No profiles yet. Create one: oauthmail profile add NAME');
    const r = await h.run(['refresh', '--all', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('refresh of a profile never signed in: exit 4, the login command', async () => {
    const h = home();
    await addMicrosoft(h, 'work');
    const r = await h.run(['refresh', 'work']);
    expect(r.code).toBe(4);
    expect(r.stdout + r.stderr).toContain('oauthmail login work');
  });
});

/**
 * Issue 18: `oauthmail completion bash|zsh|fish` loads in the real shells (Debian's bash, zsh and
 * fish) and completes commands, flags and the profile names of the config in use.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, cliHome, type CliHome } from '../support/cli.js';

let h: CliHome;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  h = cliHome();
  for (const [name, extra] of [
    [
      'work',
      [
        '--provider',
        'microsoft',
        '--tenant',
        'contoso.com',
        '--client-id',
        '11111111-2222-3333-4444-555555555555',
      ],
    ],
    ['wolf', ['--provider', 'google', '--client-id', 'x.apps.googleusercontent.com']],
    ['home', ['--provider', 'google', '--client-id', 'y.apps.googleusercontent.com']],
  ] as const) {
    const r = await h.run(['profile', 'add', name, ...extra, '--user', `${name}@example.com`]);
    expect(r.code, r.stderr).toBe(0);
  }
  // `oauthmail` on PATH, as the scripts call it
  const bin = path.join(h.dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'oauthmail'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(path.join(bin, 'oauthmail'), 0o755);
  env = { ...h.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
});

function shell(cmd: string, args: string[]): string[] {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 30_000 });
  expect(r.status, `${cmd}: ${r.stderr}`).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('oauthmail completion', () => {
  it('bash: the script loads and completes profile names, commands and flags', () => {
    const run = (words: string[]) =>
      shell('bash', [
        '-c',
        `source <(oauthmail completion bash) && COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}) && COMP_CWORD=${words.length - 1} && _oauthmail && printf '%s\\n' "\${COMPREPLY[@]}" && complete -p oauthmail`,
      ]);
    expect(run(['oauthmail', 'token', 'w'])).toEqual([
      'wolf',
      'work',
      'complete -o default -F _oauthmail oauthmail',
    ]);
    expect(run(['oauthmail', '-p', ''])).toEqual([
      'home',
      'wolf',
      'work',
      expect.stringContaining('complete'),
    ]);
    expect(run(['oauthmail', 'to'])).toEqual(['token', expect.stringContaining('complete')]);
    expect(run(['oauthmail', 'send', '--bc'])).toEqual(['--bcc', expect.stringContaining('complete')]);
  });

  it('zsh: the script registers with compinit and offers the profile names', () => {
    expect(
      shell('zsh', [
        '-fc',
        'autoload -Uz compinit && compinit -u && source <(oauthmail completion zsh) && print -r -- ${_comps[oauthmail]}',
      ]),
    ).toEqual(['_oauthmail']);
    // compadd stands in for the completion system: what the function offers for `oauthmail login w`
    expect(
      shell('zsh', [
        '-fc',
        'source <(oauthmail completion zsh); compadd() { shift; print -l -- "$@"; }; words=(oauthmail login w); CURRENT=3; _oauthmail',
      ]),
    ).toEqual(['wolf', 'work']);
  });

  it('fish: the script loads and `complete -C` completes profile names and flags', () => {
    expect(
      shell('fish', ['-c', 'oauthmail completion fish | source; complete -C "oauthmail status w"']),
    ).toEqual(['wolf', 'work']);
    expect(
      shell('fish', ['-c', 'oauthmail completion fish | source; complete -C "oauthmail fetch --ti"']),
    ).toEqual(['--timeout']);
  });

  it('an unknown shell is exit 2 naming the shells', async () => {
    const r = await h.run(['completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/completion needs a shell: bash, zsh, fish \(got "tcsh"\)/);
  });
});

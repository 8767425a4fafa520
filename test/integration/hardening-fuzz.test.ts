/**
 * Bad input at the CLI level (issue 8): corrupt config files and junk token files for `import`.
 * Every run ends with a one-line `oauthmail: ...` error (plus an optional hint), the documented
 * exit code, no stack trace, and leaves the config file byte for byte as it was.
 * The in-process properties (names, addresses, headers, config parsing) are in
 * test/unit/fuzz-input.test.ts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliHome, type CliResult } from '../support/cli.js';
import { fuzzParams } from '../support/fuzz.js';

function clean(r: CliResult, codes: number[]) {
  expect(codes, `exit ${r.code}: ${r.stderr}`).toContain(r.code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^oauthmail: \S/);
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
  if (lines[1] !== undefined) expect(lines[1]).toMatch(/^hint: /);
  expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?/);
}

const profileArgs = [
  'profile',
  'add',
  'work',
  '--provider',
  'microsoft',
  '--client-id',
  '00000000-0000-0000-0000-0000000000aa',
  '--authority',
  'https://127.0.0.1:1/00000000-0000-0000-0000-0000000000bb/',
  '--user',
  'alice@contoso.test',
  '--storage',
  'file',
  '--set',
  'retry.mode=none',
];

describe('corrupt config files', () => {
  it('truncated, mistyped or random config: exit 3 with the path, the file untouched', async () => {
    const h = cliHome();
    expect((await h.run(profileArgs)).code).toBe(0);
    const good = readFileSync(h.configFile, 'utf8');
    const corrupt = fc.oneof(
      fc.nat(good.length - 1).map((n) => good.slice(0, n)),
      fc
        .tuple(fc.nat(good.length - 1), fc.string({ minLength: 1, maxLength: 8 }))
        .map(([n, s]) => good.slice(0, n) + s + good.slice(n + 1)),
      fc.jsonValue({ maxDepth: 2 }).map((v) => {
        const o = JSON.parse(good);
        o.profiles.work.smtp = v;
        return JSON.stringify(o);
      }),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(corrupt, async (text) => {
        writeFileSync(h.configFile, text, { mode: 0o600 });
        for (const args of [
          ['profile', 'list'],
          ['profile', 'edit', 'work', '--set', 'replyTo=bob@contoso.test'],
        ]) {
          const r = await h.run(args);
          if (r.code === 0) {
            // the mutation left a valid file (e.g. a changed character inside a string): fine,
            // but then the edit is the only thing allowed to change it
            writeFileSync(h.configFile, text, { mode: 0o600 });
            continue;
          }
          clean(r, [2, 3]);
          expect(readFileSync(h.configFile, 'utf8')).toBe(text);
        }
      }),
      fuzzParams(25),
    );
  }, 180_000);
});

describe('token files for import', () => {
  it('junk token files: exit 2 before any network call (or 6 for a well-formed one here), config and store untouched', async () => {
    const h = cliHome();
    expect((await h.run(profileArgs)).code).toBe(0);
    const config = readFileSync(h.configFile, 'utf8');
    const file = join(h.dir, 'tokens.json');
    const junk = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            refresh_token: fc.jsonValue({ maxDepth: 1 }),
            access_token: fc.jsonValue({ maxDepth: 1 }),
            expires_in: fc.jsonValue({ maxDepth: 1 }),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
    );
    await fc.assert(
      fc.asyncProperty(junk, async (text) => {
        writeFileSync(file, text, { mode: 0o600 });
        const r = await h.run(['import', 'work', '--file', file], { timeoutMs: 30_000 });
        // 6: a string refresh token went to the (unreachable) provider, and retry is off
        clean(r, [2, 6]);
        if (text.length >= 8) expect(r.stderr).not.toContain(text);
        expect(readFileSync(h.configFile, 'utf8')).toBe(config);
        const secrets = join(h.dir, 'data', 'secrets');
        let stored: string[] = [];
        try {
          stored = readdirSync(secrets);
        } catch {
          stored = [];
        }
        expect(stored.filter((n) => !n.startsWith('.'))).toEqual([]);
      }),
      fuzzParams(25),
    );
  }, 180_000);
});

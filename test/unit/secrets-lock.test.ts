import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLock } from '../../src/secrets/lock.js';
import { ExitCode } from '../../src/errors/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Transpile src/secrets/lock.ts and what it imports into a folder inside node_modules/.cache,
 * so that child processes run the real code (and resolve proper-lockfile) without depending on
 * a full build of the repository.
 */
async function transpileForChild(entry: string, out: string): Promise<string> {
  const seen = new Set<string>();
  const queue = [path.join(repo, entry)];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = await fsp.readFile(file, 'utf8');
    const js = ts.transpileModule(src, {
      compilerOptions: {
        module: ts.ModuleKind.ES2022,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
      fileName: file,
    }).outputText;
    const dest = path.join(out, path.relative(repo, file)).replace(/\.ts$/, '.js');
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.writeFile(dest, js);
    for (const m of src.matchAll(/(?:from\s+|import\()\s*'(\.{1,2}\/[^']+)\.js'/g)) {
      queue.push(path.resolve(path.dirname(file), `${m[1]}.ts`));
    }
  }
  await fsp.writeFile(path.join(out, 'package.json'), '{"type":"module"}');
  return path.join(out, entry.replace(/\.ts$/, '.js'));
}

let root: string;
let out: string;
let lockJs: string;

beforeAll(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'oauthmail-lock-'));
  // node_modules/.cache does not exist in a fresh clone (npm ci makes no such folder)
  await fsp.mkdir(path.join(repo, 'node_modules', '.cache'), { recursive: true });
  out = await fsp.mkdtemp(path.join(repo, 'node_modules', '.cache', 'oauthmail-lock-test-'));
  lockJs = await transpileForChild('src/secrets/lock.ts', out);
});
afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
  await fsp.rm(out, { recursive: true, force: true });
});

const CHILD = `
import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
const [lockJs, locksDir, counter, rounds, useLock] = process.argv.slice(1);
const { withLock } = await import(lockJs);
const bump = async () => {
  const n = Number(await fsp.readFile(counter, 'utf8'));
  await sleep(3); // widen the read-modify-write window so a missing lock shows
  await fsp.writeFile(counter, String(n + 1));
};
for (let i = 0; i < Number(rounds); i++) {
  if (useLock === '1') await withLock({ locksDir }, 'token-work', bump, { timeoutMs: 60000 });
  else await bump();
}
`;

function runChild(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', CHILD, ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code ?? -1));
  });
}

async function race(useLock: boolean): Promise<number> {
  const dir = await fsp.mkdtemp(path.join(root, 'run-'));
  const counter = path.join(dir, 'counter');
  await fsp.writeFile(counter, '0');
  const codes = await Promise.all(
    Array.from({ length: 10 }, () =>
      runChild([lockJs, path.join(dir, 'locks'), counter, '10', useLock ? '1' : '0']),
    ),
  );
  expect(codes).toEqual(Array(10).fill(0));
  return Number(await fsp.readFile(counter, 'utf8'));
}

describe('cross-process lock', () => {
  it('10 processes x 10 locked increments end with exactly 100', async () => {
    expect(await race(true)).toBe(100);
  });

  it('(control) the same increments without the lock lose updates', async () => {
    expect(await race(false)).toBeLessThan(100);
  });

  it('times out with a retryable error naming the profile', async () => {
    const locksDir = path.join(root, 'locks-timeout');
    let release!: () => void;
    const held = withLock({ locksDir }, 'token-work', () => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const err = await withLock({ locksDir }, 'token-work', () => Promise.resolve('never'), {
      timeoutMs: 300,
    }).catch((e) => e);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err).toMatchObject({ code: 'lock_timeout', exitCode: ExitCode.TRANSIENT });
    expect(err.message).toContain('another oauthmail process holds the lock on profile work');
    release();
    await held;
    // released: the next one gets it at once
    expect(await withLock({ locksDir }, 'token-work', () => Promise.resolve('ok'), { timeoutMs: 300 })).toBe(
      'ok',
    );
  });

  it('takes over a stale lock left by a killed holder', async () => {
    const locksDir = path.join(root, 'locks-stale');
    await fsp.mkdir(path.join(locksDir, 'token-work.lock'), { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(path.join(locksDir, 'token-work.lock'), old, old);
    expect(
      await withLock({ locksDir }, 'token-work', () => Promise.resolve('got it'), { timeoutMs: 2000 }),
    ).toBe('got it');
  });

  it('releases the lock when fn throws, and rethrows its error', async () => {
    const locksDir = path.join(root, 'locks-throw');
    await expect(
      withLock({ locksDir }, 'config', async () => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    await expect(fsp.stat(path.join(locksDir, 'config.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects unsafe lock names', async () => {
    await expect(
      withLock({ locksDir: path.join(root, 'l') }, '../x', () => Promise.resolve(1)),
    ).rejects.toMatchObject({
      code: 'invalid_name',
    });
  });
});

/**
 * Cross-process lock (proper-lockfile) around every read-modify-write of a profile's token cache
 * and of the config file.
 *
 * Microsoft rotates refresh tokens: two processes that refresh from the same cache and write
 * back in turn lose one rotation, and with it the sign-in. So the cache is re-read and written
 * while holding `<locksDir>/<name>.lock` (an atomic mkdir). The lock folder's mtime is
 * refreshed every few seconds while held; one older than 10 s is stale and taken over, so a
 * holder killed with SIGKILL blocks others for 10 s at most.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { TransientError } from '../errors/index.js';
import { ensurePrivateDir } from '../util/fs.js';
import { assertSafeName } from './file.js';
import type { StorePaths } from './types.js';

export const LOCK_STALE_MS = 10_000;
export const LOCK_UPDATE_MS = 2_500;
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export interface LockOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Older than this, a lock is considered abandoned (default 10 s; proper-lockfile's minimum is 2 s). */
  staleMs?: number;
}

function describe(name: string): string {
  if (name.startsWith('token-')) return `profile ${name.slice('token-'.length)}`;
  if (name === 'config') return 'the config file';
  return `"${name}"`;
}

export class LockTimeoutError extends TransientError {
  constructor(name: string, timeoutMs: number, file: string, cause?: unknown) {
    super(`another oauthmail process holds the lock on ${describe(name)} (waited ${timeoutMs} ms).`, {
      code: 'lock_timeout',
      hint: `Retry when the other oauthmail process has finished; if none is running, the lock ${file} is released as stale after ${LOCK_STALE_MS / 1000} s.`,
      cause,
    });
  }
}

/** Run fn while holding the cross-process lock `name` (e.g. "config", "token-work"). */
export async function withLock<T>(
  paths: Pick<StorePaths, 'locksDir'>,
  name: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  assertSafeName(name, 'lock name');
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const stale = Math.max(options.staleMs ?? LOCK_STALE_MS, 2000);
  await ensurePrivateDir(paths.locksDir);
  // The lock is the folder `<name>.lock`; with realpath off the target file need not exist.
  const target = path.join(paths.locksDir, name);
  const lockfilePath = `${target}.lock`;

  let compromised: Error | undefined;
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  let release: () => Promise<void>;
  for (;;) {
    try {
      release = await lockfile.lock(target, {
        lockfilePath,
        realpath: false,
        stale,
        update: Math.min(LOCK_UPDATE_MS, stale / 2),
        retries: 0,
        // the default handler throws from a timer, which would crash the process
        onCompromised: (err) => {
          compromised = err;
        },
      });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const left = deadline - Date.now();
      if (left <= 0) throw new LockTimeoutError(name, timeoutMs, lockfilePath, e);
      // exponential backoff with jitter, so that waiting processes don't retry in step
      await sleep(Math.min(left, delay * (0.5 + Math.random())));
      delay = Math.min(delay * 2, 250);
    }
  }

  let result: T;
  try {
    result = await fn();
  } finally {
    await release().catch(() => undefined);
  }
  if (compromised) {
    // Our lock was taken over (we stalled for longer than `stale`): another process may have
    // written concurrently. Say so rather than pretend the update was serialized.
    throw new TransientError(`the lock on ${describe(name)} was lost while it was held.`, {
      code: 'lock_compromised',
      hint: 'Retry the command; if it keeps happening, check for a stalled oauthmail process.',
      cause: compromised,
    });
  }
  return result;
}

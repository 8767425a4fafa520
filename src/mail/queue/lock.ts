/**
 * The queue runner's lock: one runner at a time, so two runners never send the same file.
 *
 * It is a proper-lockfile lock (`<locksDir>/queue-run.lock`, like every other lock here), plus an
 * owner file beside it naming the holder's pid. proper-lockfile alone takes over a lock only
 * when it is stale (10 s without an mtime update); a runner killed with SIGKILL would then hold
 * back cron's next run, `send`'s flush and the next `queue run` for 10 s. So a lock whose owner
 * process no longer exists is taken over at once.
 *
 * Taking the lock and writing the owner file happen together under a short second lock
 * (`queue-take`), so the owner file always names the process that holds the lock (or a dead
 * one): a process that finds a dead owner under `queue-take` may remove the lock, and nobody else
 * can be between "took the lock" and "wrote the owner".
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { withLock, LOCK_STALE_MS, LOCK_UPDATE_MS } from '../../secrets/lock.js';
import { ensurePrivateDir } from '../../util/fs.js';

const NAME = 'queue-run';

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface RunLock {
  release(): Promise<void>;
}

/** The pid holding the queue lock, if a live process holds it. */
export async function queueLockHolder(locksDir: string): Promise<number | undefined> {
  const owner = await fsp.readFile(path.join(locksDir, `${NAME}.owner`), 'utf8').catch(() => '');
  const pid = Number(owner.trim());
  const held = await fsp.stat(path.join(locksDir, `${NAME}.lock`)).then(
    () => true,
    () => false,
  );
  return held && alive(pid) ? pid : undefined;
}

/**
 * Take the queue lock, or return undefined at once when a live process holds it (the caller
 * says so; it never waits for a whole run of another process).
 */
export async function tryQueueLock(locksDir: string): Promise<RunLock | undefined> {
  await ensurePrivateDir(locksDir);
  const target = path.join(locksDir, NAME);
  const lockfilePath = `${target}.lock`;
  const ownerFile = path.join(locksDir, `${NAME}.owner`);
  const opts = {
    lockfilePath,
    realpath: false,
    stale: LOCK_STALE_MS,
    update: LOCK_UPDATE_MS,
    retries: 0,
    onCompromised: () => undefined,
  };
  return withLock({ locksDir }, 'queue-take', async () => {
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(target, opts);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const owner = Number((await fsp.readFile(ownerFile, 'utf8').catch(() => '')).trim());
      if (alive(owner)) return undefined; // (this process too: one run at a time here as well)
      // the holder was killed: its lock folder is all that is left of it
      await fsp.rm(lockfilePath, { recursive: true, force: true });
      try {
        release = await lockfile.lock(target, opts);
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
        throw e2;
      }
    }
    await fsp.writeFile(ownerFile, `${process.pid}\n`, { mode: 0o600 });
    return {
      // under queue-take too: between the two steps nobody may read a lock without an owner
      release: () =>
        withLock({ locksDir }, 'queue-take', async () => {
          await release().catch(() => undefined);
          await fsp.rm(ownerFile, { force: true }).catch(() => undefined);
        }),
    };
  });
}

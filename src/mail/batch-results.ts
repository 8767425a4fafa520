/**
 * The results file of a batch (FILE.results.jsonl): one JSON record per line, appended and
 * fsynced after the server's 250, read back by --resume to skip the lines already sent.
 *
 * Only one run at a time may use it: two overlapping `send --batch FILE --resume` runs would
 * both read "nothing sent yet" and both send every line. So a run holds FILE.results.jsonl.lock
 * (proper-lockfile, as src/secrets/lock.ts) for as long as it runs; a second run refuses at once
 * instead of waiting (it would only find everything sent). A holder killed with SIGKILL leaves
 * a lock that is stale after LOCK_STALE_MS: a rerun waits that long at most, then takes it over.
 *
 * A crash mid-write can leave a torn last record without its newline; the next record appended
 * after it would then be glued to it and unreadable, and its line sent again on the next resume.
 * So the tail is repaired under the lock before anything is appended (a whole record gets its
 * newline back, half a record is dropped: it was never durable, so its line was not counted as
 * sent), and a record that follows a failed write starts on a fresh line.
 */
import { promises as fsp, constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import { TransientError } from '../errors/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidAlive, writeAll } from '../util/fs.js';

const LOCK_STALE_MS = 10_000;
const LOCK_UPDATE_MS = 2_500;

export class BatchLockedError extends TransientError {
  constructor(file: string, cause?: unknown) {
    super(`another oauthmail run is sending the batch ${file}`, {
      code: 'batch_locked',
      hint: `wait for it to finish, then rerun with --resume to send only what is missing (if no oauthmail is running, the lock ${file}.results.jsonl.lock is released as stale after ${LOCK_STALE_MS / 1000} s)`,
      cause,
    });
  }
}

export interface ResultsLog {
  /** Lines recorded as sent, with the hash of the line that was sent. */
  done: Map<number, string>;
  /** Append one record; `sync` fsyncs it before resolving. Concurrent calls are group-committed. */
  record: (obj: object, sync: boolean) => Promise<void>;
  /** Set when the lock was taken over while held (we stalled): stop sending. */
  lost(): Error | undefined;
  close(): Promise<void>;
}

function parseDone(text: string): Map<number, string> {
  const done = new Map<number, string>();
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try {
      const r = JSON.parse(l) as { line?: number; status?: string; hash?: string };
      if (r.status === 'sent' && typeof r.line === 'number') done.set(r.line, r.hash ?? '');
    } catch {
      // an unreadable record from an older version's torn write: its line was not fsynced as sent
    }
  }
  return done;
}

/** Make the file end at a record boundary; returns the repaired text. */
async function repairTail(fh: FileHandle): Promise<string> {
  const text = (await fh.readFile()).toString('utf8');
  if (text === '' || text.endsWith('\n')) return text;
  const cut = text.lastIndexOf('\n') + 1;
  const tail = text.slice(cut);
  let whole = false;
  try {
    JSON.parse(tail);
    whole = true;
  } catch {
    // half a record
  }
  if (whole) {
    await writeAll(fh, '\n');
    await fh.datasync();
    return text + '\n';
  }
  await fh.truncate(Buffer.byteLength(text.slice(0, cut)));
  await fh.datasync();
  return text.slice(0, cut);
}

/**
 * Take the batch's lock. Held by a live process (its pid is in FILE.results.jsonl.lock-owner):
 * refuse at once. Left by a dead one (SIGKILL, a crash): wait until proper-lockfile finds it
 * stale (its mtime is no longer refreshed), at most LOCK_STALE_MS, then take it over.
 */
async function lockBatch(
  resultsFile: string,
  batchFile: string,
  onCompromised: (e: Error) => void,
): Promise<() => Promise<void>> {
  const ownerFile = `${resultsFile}.lock-owner`;
  const deadline = Date.now() + LOCK_STALE_MS + 2_000;
  for (;;) {
    try {
      const release = await lockfile.lock(resultsFile, {
        lockfilePath: `${resultsFile}.lock`,
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        // the default handler throws from a timer, which would crash the process
        onCompromised,
      });
      await fsp.writeFile(ownerFile, `${process.pid}\n`, { mode: 0o600 }).catch(() => undefined);
      return async () => {
        await fsp.rm(ownerFile, { force: true }).catch(() => undefined);
        await release();
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const owner = Number((await fsp.readFile(ownerFile, 'utf8').catch(() => '')).trim());
      // a live run (also one in this process) holds it; or we waited for a stale one long enough
      if (pidAlive(owner) || Date.now() > deadline) throw new BatchLockedError(batchFile, e);
      await sleep(250);
    }
  }
}

/** Lock, repair and read the results file; the caller must close() the log. */
export async function openResults(resultsFile: string, batchFile: string): Promise<ResultsLog> {
  let compromised: Error | undefined;
  const release = await lockBatch(resultsFile, batchFile, (e) => (compromised = e));
  let fh: FileHandle;
  let done: Map<number, string>;
  try {
    fh = await fsp.open(resultsFile, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, 0o600);
    try {
      done = parseDone(await repairTail(fh));
    } catch (e) {
      await fh.close();
      throw e;
    }
  } catch (e) {
    await release().catch(() => undefined);
    throw e;
  }

  // Group commit: results that arrive while a write+fsync is running go out together in the
  // next one, so the window between the server's 250 and a durable record stays one fsync long.
  let pending: Array<{ line: string; sync: boolean; done: () => void; fail: (e: unknown) => void }> = [];
  let flushing: Promise<void> | undefined;
  // after a failed (possibly partial) write, the next record starts on a fresh line
  let torn = false;
  const flush = async (): Promise<void> => {
    while (pending.length) {
      const batch = pending;
      pending = [];
      try {
        await writeAll(fh, (torn ? '\n' : '') + batch.map((b) => b.line).join(''));
        torn = false;
        if (batch.some((b) => b.sync)) await fh.datasync();
        for (const b of batch) b.done();
      } catch (e) {
        torn = true;
        for (const b of batch) b.fail(e);
      }
    }
    flushing = undefined;
  };
  return {
    done,
    record: (obj, sync) =>
      new Promise<void>((resolve, reject) => {
        pending.push({ line: JSON.stringify(obj) + '\n', sync, done: resolve, fail: reject });
        flushing ??= flush();
      }),
    lost: () => compromised,
    close: async () => {
      await (flushing ?? Promise.resolve()).catch(() => undefined);
      await fh.close().catch(() => undefined);
      await release().catch(() => undefined);
    },
  };
}

import { promises as fsp, constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors/index.js';

/** Create a folder (and parents) with mode 0700; tighten it if it already exists and is ours. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    const st = await fsp.stat(dir);
    if ((st.mode & 0o077) !== 0 && typeof process.getuid === 'function' && st.uid === process.getuid()) {
      await fsp.chmod(dir, 0o700);
    }
  } catch {
    // best effort: a folder we cannot stat will fail loudly on the write that follows
  }
}

/**
 * A folder the user named (`fetch --out`): created 0700 when missing, an existing one left as it
 * is (its mode is the user's choice). A path that exists and is not a folder is a usage error.
 */
export async function ensureDir(dir: string, flag = '--out'): Promise<void> {
  // one level at a time: Node's recursive mkdir loops for ever on a path it cannot create under
  // /proc or /sys (`fetch --out /proc/x` spun at 100% CPU and ignored SIGTERM)
  const make = async (d: string, depth: number): Promise<void> => {
    try {
      await fsp.mkdir(d, { mode: 0o700 });
    } catch (first) {
      let e = first;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        const st = await fsp.stat(d).catch(() => undefined);
        if (st?.isDirectory()) return;
        throw new UsageError(`${flag} ${dir}: a file is in the way (it must be a folder)`, {
          code: 'not_a_folder',
          hint: `give ${flag} a folder (new or existing), not a file`,
        });
      }
      const parent = path.dirname(d);
      if (code === 'ENOENT' && parent !== d && depth < 200) {
        await make(parent, depth + 1);
        try {
          await fsp.mkdir(d, { mode: 0o700 });
          return;
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return make(d, depth + 1);
          e = e2;
        }
      }
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      if (why === 'ENOTDIR')
        throw new UsageError(`${flag} ${dir}: a file is in the way (it must be a folder)`, {
          code: 'not_a_folder',
          hint: `give ${flag} a folder (new or existing), not a file`,
        });
      throw new UsageError(`${flag} ${dir}: cannot create the folder (${why})`, {
        code: 'cannot_create_folder',
        hint: `give ${flag} a folder you can write to`,
        cause: e,
      });
    }
  };
  await make(dir, 0);
}

/**
 * Write all of `content` at `position` (or the handle's own position), awaiting each write, so a
 * stream is written with backpressure and a short write is continued. Returns the bytes written.
 */
export async function writeAll(
  fh: FileHandle,
  content: string | Uint8Array | AsyncIterable<Uint8Array | string>,
  position?: number,
): Promise<number> {
  const chunks: AsyncIterable<Uint8Array | string> | Array<Uint8Array | string> =
    typeof content === 'string' || content instanceof Uint8Array ? [content] : content;
  let n = 0;
  for await (const chunk of chunks) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let off = 0;
    while (off < b.length) {
      const { bytesWritten } = await fh.write(
        b,
        off,
        b.length - off,
        position === undefined ? null : position + n + off,
      );
      off += bytesWritten;
    }
    n += b.length;
  }
  return n;
}

/**
 * Create `tmp` (mode `mode`; a new file unless `exclusive` is false, then truncated), write all of
 * `content`, fsync and close it. On any failure the temp file is removed and the error rethrown.
 * The first half of every durable write here (atomicWriteFile, attachments, fetched messages).
 */
export async function writeTempFile(
  tmp: string,
  content: string | Uint8Array | AsyncIterable<Uint8Array | string>,
  opts: { mode?: number; exclusive?: boolean } = {},
): Promise<void> {
  const flags =
    constants.O_WRONLY |
    constants.O_CREAT |
    (opts.exclusive === false ? constants.O_TRUNC : constants.O_EXCL);
  const fh = await fsp.open(tmp, flags, opts.mode ?? 0o600);
  try {
    await writeAll(fh, content);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
}

/**
 * Write a file atomically: temp file in the same folder, fsync, rename, fsync the folder.
 * A reader (or a crash) sees either the old content or the new one, never half of it.
 */
export async function atomicWriteFile(
  file: string,
  data: string | Uint8Array,
  mode = 0o600,
  opts: { privateDir?: boolean; removeStaleTemps?: boolean; dirReady?: boolean } = {},
): Promise<void> {
  const dir = path.dirname(file);
  // dirReady: the caller made sure of the folder already (a prepared write saves the calls);
  // our own folders are made (and kept) 0700; a folder the user named (fetch --out) is left as it is
  if (!opts.dirReady) {
    if (opts.privateDir === false) await ensureDir(dir);
    else await ensurePrivateDir(dir);
  }
  if (opts.removeStaleTemps) await removeStaleTemps(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  await writeTempFile(tmp, data, { mode });
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  // fsync the folder so that the rename itself survives a power cut
  await fsyncDir(dir);
}

/** A temp file of atomicWriteFile older than this is abandoned even if its pid is alive (reused). */
export const STALE_TEMP_MS = 10 * 60_000;

/**
 * Remove the temp files that crashed atomic writes of `file` left (".<name>.<pid>.<hex>.tmp"):
 * those whose writer is dead, or older than STALE_TEMP_MS (the pid was reused). A temp of a live
 * writer is kept: it is about to be renamed. Callers write `file` under its lock, so no other
 * writer of it is running; a temp may hold a secret, so this also runs on logout. Opt-in
 * (one readdir): for the config and secret files, not for folders of fetched mail.
 */
export async function removeStaleTemps(file: string, now = Date.now()): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.`;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(n.slice(prefix.length));
    if (!m) continue;
    const tmp = path.join(dir, n);
    try {
      const st = await fsp.lstat(tmp);
      if (!st.isFile()) continue;
      if (pidAlive(Number(m[1])) && now - st.mtimeMs < STALE_TEMP_MS) continue;
      await fsp.rm(tmp, { force: true });
    } catch {
      // gone already, or not ours to remove: the write that follows does not depend on it
    }
  }
}

/** Whether a process with this pid exists (EPERM: it does, owned by another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, owned by someone else
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** fsync a folder, so that a rename or link in it survives a power cut (best effort). */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const dh = await fsp.open(dir, constants.O_RDONLY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // some filesystems refuse fsync on a folder; the rename is still atomic
  }
}

/** Read a file, or undefined when it does not exist. */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

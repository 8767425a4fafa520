import { promises as fsp, constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

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
  opts: { dirReady?: boolean } = {},
): Promise<void> {
  const dir = path.dirname(file);
  // dirReady: the caller made sure of the folder already (a prepared write saves the calls)
  if (!opts.dirReady) await ensurePrivateDir(dir);
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

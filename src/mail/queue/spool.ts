/**
 * The durable local queue (spool) for messages that could not be handed to the mail server now,
 * the way nullmailer and dma keep theirs:
 *
 *   <dataDir>/queue/<id>.msg       one file per waiting message (mode 0600, folder 0700)
 *   <dataDir>/queue/tmp/           files being written (never read as messages)
 *   <dataDir>/queue/dead/<id>.msg  dead letters: refused for good, or older than the maximum age
 *
 * A file is one JSON line (the envelope, the profile, attempts, the last error; never a token)
 * followed by the message exactly as it will be sent. It is written to tmp/, fsynced, renamed
 * into place and the folder fsynced, so a crash leaves either no file or a whole one.
 * Ids start with the time queued (fixed-width base 36), so sorting names is oldest first.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensurePrivateDir, fsyncDir, writeTempFile } from '../../util/fs.js';

export interface QueueMeta {
  version: 1;
  id: string;
  profile: string;
  envelope: { from: string; to: string[] };
  messageId?: string;
  queuedAt: string;
  /** Why it was queued (the first failure). */
  reason: string;
  attempts: number;
  lastAttemptAt?: string;
  lastError?: string;
  /** Not tried again by `queue run` before this time (backoff per the profile's retry policy). */
  nextAttemptAt?: string;
  /** Dead letters only. */
  deadAt?: string;
  deadReason?: string;
}

export interface QueueEntry {
  meta: QueueMeta;
  raw: Buffer;
  file: string;
}

export interface QueueDirs {
  root: string;
  tmp: string;
  dead: string;
}

export function queueDirs(dataDir: string): QueueDirs {
  const root = path.join(dataDir, 'queue');
  return { root, tmp: path.join(root, 'tmp'), dead: path.join(root, 'dead') };
}

const ID_RE = /^[0-9a-z]{9}-[0-9a-f]{12}$/;

export function newId(now: Date): string {
  return `${now.getTime().toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`;
}

export function isQueueId(id: string): boolean {
  return ID_RE.test(id);
}

function encode(meta: QueueMeta, raw: Buffer): Buffer {
  return Buffer.concat([Buffer.from(JSON.stringify(meta) + '\n'), raw]);
}

function decode(file: string, buf: Buffer): QueueEntry {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) throw new Error(`${file}: not a queue file (no header line)`);
  const meta = JSON.parse(buf.subarray(0, nl).toString('utf8')) as QueueMeta;
  if (meta.version !== 1 || !meta.id || !meta.profile || !meta.envelope) {
    throw new Error(`${file}: not a queue file (bad header)`);
  }
  return { meta, raw: buf.subarray(nl + 1), file };
}

/** Write `meta` + `raw` durably to `dest`: temp file in tmp/, fsync, rename, fsync the folder. */
async function durableWrite(dirs: QueueDirs, dest: string, meta: QueueMeta, raw: Buffer): Promise<void> {
  await ensurePrivateDir(dirs.root);
  await ensurePrivateDir(dirs.tmp);
  await ensurePrivateDir(path.dirname(dest));
  const tmp = path.join(dirs.tmp, `${meta.id}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await writeTempFile(tmp, encode(meta, raw), { mode: 0o600 });
  try {
    await fsp.rename(tmp, dest);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(dest));
}

export class Spool {
  readonly dirs: QueueDirs;

  constructor(dataDir: string) {
    this.dirs = queueDirs(dataDir);
  }

  fileOf(id: string, dead = false): string {
    return path.join(dead ? this.dirs.dead : this.dirs.root, `${id}.msg`);
  }

  /** Queue a message. Returns its metadata once the file is safely on disk. */
  async add(
    input: {
      profile: string;
      envelope: { from: string; to: string[] };
      raw: string | Buffer;
      reason: string;
      lastError?: string;
    },
    now = new Date(),
  ): Promise<QueueMeta> {
    const raw = typeof input.raw === 'string' ? Buffer.from(input.raw, 'utf8') : input.raw;
    const head = raw.subarray(0, 64 * 1024).toString('utf8');
    const messageId = /^Message-ID:[ \t]*(<[^>\r\n]+>)/im.exec(head)?.[1];
    const meta: QueueMeta = {
      version: 1,
      id: newId(now),
      profile: input.profile,
      envelope: input.envelope,
      ...(messageId ? { messageId } : {}),
      queuedAt: now.toISOString(),
      reason: input.reason,
      attempts: 1,
      lastAttemptAt: now.toISOString(),
      ...(input.lastError ? { lastError: input.lastError } : {}),
    };
    await durableWrite(this.dirs, this.fileOf(meta.id), meta, raw);
    return meta;
  }

  /** Ids waiting (or dead), oldest first. A missing folder is an empty queue. */
  async ids(dead = false): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(dead ? this.dirs.dead : this.dirs.root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return names
      .filter((n) => n.endsWith('.msg') && isQueueId(n.slice(0, -4)))
      .map((n) => n.slice(0, -4))
      .sort();
  }

  /** A queued (or dead) message, or undefined when it is gone (delivered or dropped meanwhile). */
  async read(id: string, dead = false): Promise<QueueEntry | undefined> {
    const file = this.fileOf(id, dead);
    let buf: Buffer;
    try {
      buf = await fsp.readFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return decode(file, buf);
  }

  /** Headers only (for listings and status): the first line of each file. */
  async list(dead = false): Promise<QueueMeta[]> {
    const out: QueueMeta[] = [];
    for (const id of await this.ids(dead)) {
      const e = await this.read(id, dead).catch(() => undefined);
      if (e) out.push(e.meta);
    }
    return out;
  }

  /** Replace a waiting message's header (attempts, last error), keeping its bytes. */
  async update(entry: QueueEntry, meta: QueueMeta): Promise<void> {
    await durableWrite(this.dirs, this.fileOf(meta.id), meta, entry.raw);
  }

  /** Delivered or dropped: remove the file and make the removal durable. */
  async remove(id: string, dead = false): Promise<boolean> {
    try {
      await fsp.unlink(this.fileOf(id, dead));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await fsyncDir(dead ? this.dirs.dead : this.dirs.root);
    return true;
  }

  /** Move to dead/ with a reason: written there first, then removed from the queue. */
  async bury(entry: QueueEntry, reason: string, now = new Date()): Promise<QueueMeta> {
    const meta: QueueMeta = { ...entry.meta, deadAt: now.toISOString(), deadReason: reason };
    await durableWrite(this.dirs, this.fileOf(meta.id, true), meta, entry.raw);
    await this.remove(meta.id);
    return meta;
  }

  /** A file in both places (a crash between the two steps of bury): the dead copy wins. */
  async isDead(id: string): Promise<boolean> {
    return fsp.access(this.fileOf(id, true)).then(
      () => true,
      () => false,
    );
  }
}

export interface QueueStats {
  waiting: number;
  oldestQueuedAt: string | null;
  oldestAgeSeconds: number | null;
  dead: number;
}

/** Counts for `status` and `queue list`, per profile (undefined: all profiles). */
export function queueStats(
  waiting: QueueMeta[],
  dead: QueueMeta[],
  profile: string | undefined,
  now = new Date(),
): QueueStats {
  const w = profile === undefined ? waiting : waiting.filter((m) => m.profile === profile);
  const d = profile === undefined ? dead : dead.filter((m) => m.profile === profile);
  const oldest = w.map((m) => m.queuedAt).sort()[0] ?? null;
  return {
    waiting: w.length,
    oldestQueuedAt: oldest,
    oldestAgeSeconds: oldest ? Math.max(0, Math.round((now.getTime() - Date.parse(oldest)) / 1000)) : null,
    dead: d.length,
  };
}

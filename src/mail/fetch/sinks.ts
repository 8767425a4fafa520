/**
 * Where fetched messages go: one .eml file each, a Maildir, or an mbox file. Every name is derived
 * from (mailbox, UIDVALIDITY, UID), so a rerun recognises or replaces what an interrupted run wrote,
 * and two mailboxes never write to the same file (./state.ts mailboxTag). Two accounts never share
 * a folder at all (./folder.ts).
 */
import { constants, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { MessageStructureObject } from 'imapflow';
import { ensureDir, fsyncDir, writeAll, writeTempFile } from '../../util/fs.js';
import { mailboxTag } from './state.js';

export interface Meta {
  uid: number;
  size: number;
  date: Date;
  structure?: MessageStructureObject;
}

export interface Sink {
  /** Prepare a message for writing; returns undefined when it is already on disk. */
  target(m: Meta): string | undefined;
  /** Write one message (complete, fsynced, in place when the promise resolves, except mbox). */
  write(m: Meta, content: Buffer | Readable): Promise<string>;
  /** Whether a message an earlier run recorded as saved is on disk (checked before acting on it). */
  holds(uid: number): Promise<boolean>;
  /** Make the batch durable (folder fsync; mbox fsync). Returns the mbox length when relevant. */
  commit(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** asctime-style date for an mbox From_ line: "Thu Nov 23 09:46:00 2025" (UTC). */
function asctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/**
 * mboxrd encoding of one message (streamed): CRLF becomes LF (mbox is a Unix format), every line
 * matching /^>*From / gets one more ">" (so readers can undo it exactly), and the message ends with
 * a blank line before the next From_ line.
 */
export async function* mboxrd(
  src: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
): AsyncGenerator<Buffer> {
  let carry = '';
  let last = '\n';
  for await (const chunk of src) {
    // latin1 maps bytes 1:1 to code units, so any 8-bit content survives the round trip
    const text = carry + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      carry = text;
      continue;
    }
    carry = text.slice(cut + 1);
    const out = escapeMboxLines(text.slice(0, cut + 1));
    if (out.length) last = out[out.length - 1]!;
    yield Buffer.from(out, 'latin1');
  }
  let out = escapeMboxLines(carry);
  if (out.length) last = out[out.length - 1]!;
  out += last === '\n' ? '\n' : '\n\n';
  yield Buffer.from(out, 'latin1');
}

export function escapeMboxLines(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
}

async function writeFileDurably(
  tmp: string,
  final: string,
  content: Buffer | Readable,
  replace: boolean,
): Promise<boolean> {
  await writeTempFile(tmp, content, { exclusive: false });
  if (!replace) {
    // Maildir: never replace a message file (a reader may have it open or have moved it)
    try {
      await fsp.link(tmp, final);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    await fsp.rm(tmp, { force: true });
    return true;
  }
  await fsp.rename(tmp, final);
  return true;
}

const exists = (file: string) =>
  fsp.stat(file).then(
    (st) => st.isFile(),
    () => false,
  );

export async function emlSink(out: string, mailbox: string, uidValidity: string): Promise<Sink> {
  const tag = mailboxTag(mailbox);
  // leftovers of a killed run (we hold the folder lock, so none of them is being written)
  for (const f of await fsp.readdir(out)) {
    if (/^\.oauthmail-.*\.tmp$/.test(f) && !f.startsWith('.oauthmail-state'))
      await fsp.rm(path.join(out, f), { force: true });
  }
  const name = (uid: number) => path.join(out, `${tag}-${uidValidity}-${String(uid).padStart(7, '0')}.eml`);
  return {
    target: (m) => name(m.uid),
    async write(m, content) {
      const final = name(m.uid);
      const tmp = path.join(out, `.oauthmail-${process.pid}-${m.uid}-${randomBytes(4).toString('hex')}.tmp`);
      await writeFileDurably(tmp, final, content, true);
      return final;
    },
    holds: (uid) => exists(name(uid)),
    async commit() {
      await fsyncDir(out);
      return undefined;
    },
    async close() {},
  };
}

/**
 * Maildir (https://cr.yp.to/proto/maildir.html): written to tmp/, then linked into new/ under a
 * unique name. Our unique part is derived from the message (mailbox, UIDVALIDITY, UID), not from
 * time and pid, so a rerun recognises a message it already delivered, also once a mail reader has
 * moved it to cur/ and added ":2,flags".
 */
export async function maildirSink(out: string, mailbox: string, uidValidity: string): Promise<Sink> {
  for (const sub of ['tmp', 'new', 'cur']) await ensureDir(path.join(out, sub));
  const host = os.hostname().replace(/\//g, '\\057').replace(/:/g, '\\072') || 'localhost';
  const mtag = createHash('sha256').update(mailbox).digest('hex').slice(0, 8);
  const present = new Set<string>();
  for (const sub of ['new', 'cur']) {
    for (const f of await fsp.readdir(path.join(out, sub))) {
      const m = /\.oauthmail-([0-9a-f]{8}-\d+-\d+)\./.exec(f);
      if (m) present.add(m[1]!);
    }
  }
  for (const f of await fsp.readdir(path.join(out, 'tmp'))) {
    if (f.startsWith('oauthmail-')) await fsp.rm(path.join(out, 'tmp', f), { force: true });
  }
  const key = (uid: number) => `${mtag}-${uidValidity}-${uid}`;
  const target = (m: Meta) => {
    if (present.has(key(m.uid))) return undefined;
    const secs = Math.floor(m.date.getTime() / 1000);
    return path.join(out, 'new', `${secs}.oauthmail-${key(m.uid)}.${host},S=${m.size}`);
  };
  return {
    target,
    async write(m, content) {
      const final = target(m);
      if (!final) return '';
      const tmp = path.join(
        out,
        'tmp',
        `oauthmail-${process.pid}-${m.uid}-${randomBytes(4).toString('hex')}`,
      );
      await writeFileDurably(tmp, final, content, false);
      present.add(key(m.uid));
      return final;
    },
    holds: (uid) => Promise.resolve(present.has(key(uid))),
    async commit() {
      await fsyncDir(path.join(out, 'new'));
      return undefined;
    },
    async close() {},
  };
}

export function mboxFileFor(out: string, mailbox: string): string {
  return path.join(out, `${mailboxTag(mailbox)}.mbox`);
}

/**
 * An mbox file, appended to. `committed` is the length the state file recorded; anything beyond it
 * was appended by a run that died before recording it, and is cut off (it is downloaded again).
 * The caller records the starting length before the first append (./run.ts), so that this holds
 * for the very first run too.
 */
export async function mboxSink(
  out: string,
  mailbox: string,
  committed: number | undefined,
  warn: (s: string) => void,
): Promise<Sink & { size: number }> {
  const file = mboxFileFor(out, mailbox);
  const fh = await fsp.open(file, constants.O_RDWR | constants.O_CREAT, 0o600);
  let size = (await fh.stat()).size;
  if (committed !== undefined && size > committed) {
    const head = Buffer.alloc(5);
    await fh.read(head, 0, 5, committed);
    if (head.toString('latin1') === 'From ') {
      warn(
        `${file}: removing ${size - committed} bytes appended by an interrupted run (they are downloaded again)`,
      );
      await fh.truncate(committed);
      await fh.sync();
      size = committed;
    }
  }
  let pos = size;
  return {
    size,
    target: () => file,
    async write(m, content) {
      const from = Buffer.from(`From MAILER-DAEMON ${asctime(m.date)}\n`, 'latin1');
      let written = await writeAll(fh, from, pos);
      written += await writeAll(
        fh,
        mboxrd(Buffer.isBuffer(content) ? [content] : (content as AsyncIterable<Buffer>)),
        pos + written,
      );
      pos += written;
      return file;
    },
    // the state is only written after the mbox is fsynced, so what it lists is in the file
    holds: () => Promise.resolve(true),
    async commit() {
      await fh.sync();
      return pos;
    },
    async close() {
      await fh.close();
    },
  };
}

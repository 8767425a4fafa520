/**
 * Listing and downloading messages without loss.
 *
 * The rule behind `fetch`: a message is acted on (--mark-seen, --move-to, --delete) only after its
 * file is complete on disk: written to a temp file, fsynced, renamed into place, and the folder
 * fsynced. A kill at any point leaves every message on the server, or complete on disk, or both.
 *
 * Idempotence: a state file beside the output (one per account and mailbox) records the mailbox's
 * UIDVALIDITY (RFC 9051 §2.3.1.1) and the set of UIDs saved (./uid-ranges.ts). A rerun downloads
 * only matching UIDs not in the set, whatever filters earlier runs used.
 * Work is committed in batches: files of a batch are fsynced and renamed, the folder fsynced once,
 * then the state saved, then the actions run for that batch. The crash windows and why they are safe:
 *  - killed before the state is saved: the rerun downloads the batch again. File names are derived
 *    from (mailbox, UIDVALIDITY, UID), so .eml files are replaced by identical ones and Maildir
 *    files already present are recognised (new/ and cur/ are scanned); an mbox is truncated back
 *    to the length recorded in the state (its tail is the uncommitted batch), so nothing is doubled.
 *  - killed after the state was saved but before the actions ran: those messages are still on the
 *    server with UIDs at or below the saved one; a rerun with the same action applies it to them
 *    ("saved earlier, still on the server") without downloading them again.
 * UIDVALIDITY change: the server renumbered the mailbox, so the saved UID means nothing. We say so
 * on stderr and download every matching message again; new files carry the new UIDVALIDITY in their
 * names, so nothing on disk is overwritten (duplicates of earlier downloads are possible, loss is not).
 *
 * Memory: messages up to 1 MB come in one pipelined FETCH per batch (imapflow applies backpressure
 * per message); larger ones are streamed to disk in 1 MB partial fetches. Peak memory stays bounded
 * whatever the message size.
 */
import { constants, promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ImapFlow, MessageStructureObject, SearchObject } from 'imapflow';
import { MailServerError, TransientError, UsageError, isOauthmailError } from '../errors/index.js';
import {
  atomicWriteFile,
  ensurePrivateDir,
  fsyncDir,
  readFileIfExists,
  writeAll,
  writeTempFile,
} from '../util/fs.js';
import { imapError } from './imap.js';
import { saveAttachments, sanitizeFilename } from './attachments.js';
import {
  addUids,
  formatUidRanges,
  parseUidRanges,
  splitByUidRanges,
  uidSet,
  type UidRanges,
} from './uid-ranges.js';

export type FetchFormat = 'eml' | 'maildir' | 'mbox';
export const FETCH_FORMATS: readonly FetchFormat[] = ['eml', 'maildir', 'mbox'];

export interface Filters {
  unseen?: boolean;
  since?: Date;
  before?: Date;
  from?: string;
  subject?: string;
  limit?: number;
}

/** The IMAP SEARCH (RFC 9051 §6.4.4) for the filters; ALL when there are none. */
export function buildSearch(f: Filters): SearchObject {
  const q: SearchObject = {};
  if (f.unseen) q.seen = false;
  if (f.since) q.since = f.since;
  if (f.before) q.before = f.before;
  if (f.from) q.from = f.from;
  if (f.subject) q.subject = f.subject;
  if (Object.keys(q).length === 0) q.all = true;
  return q;
}

/** Parse a --since/--before value: YYYY-MM-DD, an ISO date-time, or a relative "7d"/"12h". */
export function parseDate(value: string, flag: string, now = new Date()): Date {
  const rel = /^(\d+)([dhw])$/.exec(value.trim());
  if (rel) {
    const n = Number(rel[1]);
    const ms = rel[2] === 'h' ? 3_600_000 : rel[2] === 'w' ? 7 * 86_400_000 : 86_400_000;
    return new Date(now.getTime() - n * ms);
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const d = new Date(value + 'T00:00:00Z');
    if (!Number.isNaN(d.getTime()) && d.toISOString().startsWith(value)) return d;
  } else if (/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const d = new Date(value);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new UsageError(`${flag} ${JSON.stringify(value)}: not a date`, {
    code: 'bad_date',
    hint: `use YYYY-MM-DD (e.g. ${flag} 2025-01-31) or a relative age like 7d, 12h, 2w`,
  });
}

async function openMailbox(client: ImapFlow, mailbox: string, readOnly: boolean) {
  try {
    return await client.getMailboxLock(mailbox, { readOnly });
  } catch (e) {
    throw imapError(e, { mailbox, user: String(client.options.auth?.user ?? '') });
  }
}

async function searchUids(client: ImapFlow, f: Filters): Promise<number[]> {
  const r = await client.search(buildSearch(f), { uid: true });
  return (Array.isArray(r) ? r : []).sort((a, b) => a - b);
}

// ----------------------------------------------------------------------------------------------
// mailboxes and list

export interface MailboxRow {
  path: string;
  name: string;
  delimiter: string;
  specialUse?: string;
  messages?: number;
  unseen?: number;
  depth: number;
  selectable: boolean;
}

export async function listMailboxes(client: ImapFlow): Promise<MailboxRow[]> {
  const list = await client.list({ statusQuery: { messages: true, unseen: true } });
  const rows = list.map((m) => ({
    path: m.path,
    name: m.name,
    delimiter: m.delimiter,
    ...(m.specialUse ? { specialUse: m.specialUse } : {}),
    ...(m.status?.messages !== undefined ? { messages: m.status.messages } : {}),
    ...(m.status?.unseen !== undefined ? { unseen: m.status.unseen } : {}),
    depth: m.parent.length,
    selectable: !m.flags.has('\\Noselect') && !m.flags.has('\\NonExistent'),
  }));
  // INBOX first, then the tree in path order
  return rows.sort((a, b) =>
    a.path === 'INBOX' ? -1 : b.path === 'INBOX' ? 1 : a.path.localeCompare(b.path),
  );
}

export interface MessageRow {
  uid: number;
  date: string | undefined;
  from: string;
  subject: string;
  size: number;
  flags: string[];
}

function addressText(a: { name?: string; address?: string } | undefined): string {
  if (!a) return '';
  return a.name ? `${a.name} <${a.address ?? ''}>` : (a.address ?? '');
}

/** Rows for `list`: the newest `limit` matching messages, oldest first. */
export async function listMessages(client: ImapFlow, mailbox: string, f: Filters): Promise<MessageRow[]> {
  const lock = await openMailbox(client, mailbox, true);
  try {
    let uids = await searchUids(client, f);
    if (f.limit !== undefined) uids = uids.slice(Math.max(0, uids.length - f.limit));
    if (!uids.length) return [];
    const rows: MessageRow[] = [];
    for await (const m of client.fetch(
      uidSet(uids),
      { uid: true, envelope: true, size: true, flags: true, internalDate: true },
      { uid: true },
    )) {
      const date = m.envelope?.date ?? m.internalDate;
      rows.push({
        uid: m.uid,
        date: date ? new Date(date).toISOString() : undefined,
        from: addressText(m.envelope?.from?.[0]),
        subject: m.envelope?.subject ?? '',
        size: m.size ?? 0,
        // \Recent is per session and gone from IMAP4rev2 (RFC 9051 §2.3.2): it says nothing about the message
        flags: [...(m.flags ?? [])].filter((fl) => fl !== '\\Recent').sort(),
      });
    }
    return rows.sort((a, b) => a.uid - b.uid);
  } finally {
    lock.release();
  }
}

// ----------------------------------------------------------------------------------------------
// fetch

export interface FetchOptions {
  mailbox: string;
  out: string;
  format: FetchFormat;
  filters: Filters;
  attachmentsDir?: string;
  markSeen?: boolean;
  moveTo?: string;
  delete?: boolean;
  /** Messages per commit (fsync, state, actions). */
  batchSize?: number;
  /** The SASL user, kept in the state file so two accounts never share one. */
  account: string;
  onSaved?: (m: SavedMessage) => void;
  onProgress?: (p: { done: number; total: number; bytes: number; totalBytes: number }) => void;
  warn?: (line: string) => void;
  debug?: (line: string) => void;
  /** Set to stop after the batch in flight (SIGINT). */
  stop?: { stopped: boolean };
}

export interface SavedMessage {
  uid: number;
  file: string;
  size: number;
  attachments: string[];
}

export interface FetchSummary {
  mailbox: string;
  uidValidity: string;
  matched: number;
  fetched: number;
  /** Saved in an earlier run; actions (if any) applied now. */
  alreadySaved: number;
  bytes: number;
  markedSeen: number;
  moved: number;
  deleted: number;
  uidValidityChanged: boolean;
  elapsedMs: number;
  stateFile: string;
}

export interface FetchState {
  version: 1;
  account: string;
  mailbox: string;
  uidValidity: string;
  /** The highest UID saved. */
  lastUid: number;
  /** The UIDs saved, as an IMAP sequence set ("1:40,52"); absent in older state files, which means 1:lastUid. */
  saved?: string;
  /** mbox only: the committed length of the mbox file. */
  mboxSize?: number;
  updated: string;
}

const LARGE = 512 * 1024;
const MAX_INFLIGHT_BYTES = 4 * 1024 * 1024;

/** A short, file-name-safe tag for a mailbox path ("INBOX", "Archive_2024"...). */
export function mailboxTag(mailbox: string): string {
  const safe = sanitizeFilename(mailbox.replace(/[/\\.]/g, '_'), 'mailbox', 40).replace(/\s+/g, '_');
  return safe;
}

export function stateFileFor(out: string, account: string, mailbox: string): string {
  const h = createHash('sha256').update(`${account.toLowerCase()}\0${mailbox}`).digest('hex').slice(0, 10);
  return path.join(out, `.oauthmail-state.${mailboxTag(mailbox)}.${h}.json`);
}

async function readState(file: string): Promise<FetchState | undefined> {
  const text = await readFileIfExists(file);
  if (text === undefined) return undefined;
  try {
    const s = JSON.parse(text) as FetchState;
    if (
      s &&
      s.version === 1 &&
      typeof s.uidValidity === 'string' &&
      Number.isInteger(s.lastUid) &&
      (s.saved === undefined || (typeof s.saved === 'string' && parseUidRanges(s.saved) !== undefined))
    )
      return s;
  } catch {
    // fall through
  }
  throw new UsageError(`the fetch state file ${file} is damaged`, {
    code: 'bad_state',
    hint: 'move it away to download everything again (files already saved are not overwritten)',
  });
}

/** One fetch per output folder at a time: a lock file with our pid (a dead pid's lock is taken over). */
async function lockDir(out: string): Promise<() => Promise<void>> {
  const file = path.join(out, '.oauthmail-fetch.lock');
  for (let i = 0; i < 3; i++) {
    try {
      const fh = await fsp.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await fsp.rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFileIfExists(file))?.trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (k) {
          alive = (k as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) {
        throw new TransientError(`another oauthmail fetch (pid ${pid}) is writing to ${out}`, {
          code: 'fetch_locked',
          hint: 'wait for it to finish, or use another --out folder',
        });
      }
      await fsp.rm(file, { force: true });
    }
  }
  throw new TransientError(`could not lock ${out}`, { code: 'fetch_locked' });
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

interface Meta {
  uid: number;
  size: number;
  date: Date;
  structure?: MessageStructureObject;
}

/** Where messages go: eml files, a Maildir, or an mbox file. */
interface Sink {
  /** Prepare a message for writing; returns undefined when it is already on disk. */
  target(m: Meta): string | undefined;
  /** Write one message (complete, fsynced, in place when the promise resolves, except mbox). */
  write(m: Meta, content: Buffer | Readable): Promise<string>;
  /** Make the batch durable (folder fsync; mbox fsync). Returns the mbox length when relevant. */
  commit(): Promise<number | undefined>;
  close(): Promise<void>;
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

async function emlSink(out: string, mailbox: string, uidValidity: string): Promise<Sink> {
  const tag = mailboxTag(mailbox);
  // leftovers of a killed run (we hold the folder lock, so none of them is being written)
  for (const f of await fsp.readdir(out)) {
    if (/^\.oauthmail-.*\.tmp$/.test(f)) await fsp.rm(path.join(out, f), { force: true });
  }
  return {
    target: (m) => path.join(out, `${tag}-${uidValidity}-${String(m.uid).padStart(7, '0')}.eml`),
    async write(m, content) {
      const final = path.join(out, `${tag}-${uidValidity}-${String(m.uid).padStart(7, '0')}.eml`);
      const tmp = path.join(out, `.oauthmail-${process.pid}-${m.uid}-${randomBytes(4).toString('hex')}.tmp`);
      await writeFileDurably(tmp, final, content, true);
      return final;
    },
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
async function maildirSink(out: string, mailbox: string, uidValidity: string): Promise<Sink> {
  for (const sub of ['tmp', 'new', 'cur']) await ensurePrivateDir(path.join(out, sub));
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
  const key = (m: Meta) => `${mtag}-${uidValidity}-${m.uid}`;
  const target = (m: Meta) => {
    if (present.has(key(m))) return undefined;
    const secs = Math.floor(m.date.getTime() / 1000);
    return path.join(out, 'new', `${secs}.oauthmail-${key(m)}.${host},S=${m.size}`);
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
      present.add(key(m));
      return final;
    },
    async commit() {
      await fsyncDir(path.join(out, 'new'));
      return undefined;
    },
    async close() {},
  };
}

async function mboxSink(
  out: string,
  mailbox: string,
  committed: number | undefined,
  warn: (s: string) => void,
): Promise<Sink> {
  const file = path.join(out, `${mailboxTag(mailbox)}.mbox`);
  const fh = await fsp.open(file, constants.O_RDWR | constants.O_CREAT, 0o600);
  let size = (await fh.stat()).size;
  if (committed !== undefined && size > committed) {
    // the tail was appended by a run that died before saving its state: it is downloaded again
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
    async commit() {
      await fh.sync();
      return pos;
    },
    async close() {
      await fh.close();
    },
  };
}

/** Run `fn` over `items` with at most `limit` in flight and a byte budget; rejects on the first error. */
class Inflight {
  private running = new Set<Promise<void>>();
  private bytes = 0;
  private error: unknown;
  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}
  async add(size: number, fn: () => Promise<void>): Promise<void> {
    while (this.running.size && (this.running.size >= this.maxCount || this.bytes + size > this.maxBytes)) {
      await Promise.race(this.running);
    }
    if (this.error) throw this.error;
    this.bytes += size;
    const p: Promise<void> = fn()
      .catch((e: unknown) => {
        this.error ??= e;
      })
      .finally(() => {
        this.bytes -= size;
        this.running.delete(p);
      });
    this.running.add(p);
  }
  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.error) throw this.error;
  }
}

export async function fetchMessages(client: ImapFlow, o: FetchOptions): Promise<FetchSummary> {
  const started = Date.now();
  const warn = o.warn ?? (() => undefined);
  const debug = o.debug ?? (() => undefined);
  if (o.moveTo && o.delete)
    throw new UsageError('give --move-to or --delete, not both', { code: 'bad_usage' });
  if (o.moveTo && o.moveTo === o.mailbox)
    throw new UsageError('--move-to names the mailbox being fetched', { code: 'bad_usage' });
  const acting = !!(o.markSeen || o.moveTo || o.delete);

  await ensurePrivateDir(o.out);
  if (o.attachmentsDir) await ensurePrivateDir(o.attachmentsDir);
  const unlock = await lockDir(o.out);
  let sink: Sink | undefined;
  try {
    // temp files of a state write that a killed run left behind (atomicWriteFile names them
    // ".<file>.<pid>.<random>.tmp"); we hold the folder lock, so nobody is writing them now
    for (const f of await fsp.readdir(o.out)) {
      if (/^\.\.oauthmail-state\..*\.tmp$/.test(f)) await fsp.rm(path.join(o.out, f), { force: true });
    }
    if (o.moveTo) {
      // fail before downloading anything when the target does not exist
      try {
        const st = await client.status(o.moveTo, { messages: true });
        if (!st) throw new Error('NONEXISTENT');
      } catch (e) {
        throw imapError(e, { mailbox: o.moveTo });
      }
    }
    const lock = await openMailbox(client, o.mailbox, !acting);
    try {
      const box = client.mailbox;
      if (!box) throw new MailServerError(`could not open ${o.mailbox}`, { code: 'imap_select_failed' });
      const uidValidity = String(box.uidValidity);
      const stateFile = stateFileFor(o.out, o.account, o.mailbox);
      let state = await readState(stateFile);
      let uidValidityChanged = false;
      if (state && state.uidValidity !== uidValidity) {
        uidValidityChanged = true;
        warn(
          `the UIDVALIDITY of ${o.mailbox} changed (${state.uidValidity} -> ${uidValidity}): the server renumbered its messages, ` +
            `so oauthmail cannot tell which ones it saved before; downloading every matching message again ` +
            `(files saved earlier are kept; new files carry the new UIDVALIDITY in their names)`,
        );
        state = undefined;
      }
      let savedUids: UidRanges = !state
        ? []
        : state.saved !== undefined
          ? parseUidRanges(state.saved)!
          : state.lastUid > 0
            ? [[1, state.lastUid]]
            : [];
      sink =
        o.format === 'eml'
          ? await emlSink(o.out, o.mailbox, uidValidity)
          : o.format === 'maildir'
            ? await maildirSink(o.out, o.mailbox, uidValidity)
            : await mboxSink(o.out, o.mailbox, state?.mboxSize, warn);
      let mboxSize = state?.mboxSize;

      const matched = await searchUids(client, o.filters);
      const { inside: earlier, outside } = splitByUidRanges(matched, savedUids);
      let todo = outside;
      if (o.filters.limit !== undefined) todo = todo.slice(0, o.filters.limit);

      const summary: FetchSummary = {
        mailbox: o.mailbox,
        uidValidity,
        matched: matched.length,
        fetched: 0,
        alreadySaved: 0,
        bytes: 0,
        markedSeen: 0,
        moved: 0,
        deleted: 0,
        uidValidityChanged,
        elapsedMs: 0,
        stateFile,
      };

      const act = async (uids: number[]) => {
        if (!uids.length || !acting) return;
        const set = uidSet(uids);
        try {
          if (o.markSeen) {
            await client.messageFlagsAdd(set, ['\\Seen'], { uid: true });
            summary.markedSeen += uids.length;
          }
          if (o.moveTo) {
            await client.messageMove(set, o.moveTo, { uid: true });
            summary.moved += uids.length;
          } else if (o.delete) {
            await client.messageDelete(set, { uid: true });
            summary.deleted += uids.length;
          }
        } catch (e) {
          throw imapError(e, { mailbox: o.moveTo ?? o.mailbox });
        }
      };

      // saved by an earlier run (its state says so) but still on the server: act on them now
      if (acting && earlier.length) {
        debug(
          `fetch: ${earlier.length} message(s) saved earlier are still in ${o.mailbox}; applying the action to them`,
        );
        await act(earlier);
        summary.alreadySaved = earlier.length;
      }

      // Batches of UIDs. Each is one pipelined FETCH of size, date and the first LARGE bytes: a
      // message that fits is written at once (several writes and fsyncs in flight), a larger one is
      // streamed afterwards in LARGE partial fetches. Then the batch is committed (folder fsync,
      // state) and only then acted on. Without actions the commits can be rarer.
      const perBatch = o.batchSize ?? (acting ? 200 : 2000);
      const batches: number[][] = [];
      for (let i = 0; i < todo.length; i += perBatch) batches.push(todo.slice(i, i + perBatch));
      let done = 0;
      const total = todo.length;
      o.onProgress?.({ done, total, bytes: 0, totalBytes: 0 });
      const q = {
        uid: true,
        size: true,
        internalDate: true,
        source: { maxLength: LARGE },
        ...(o.attachmentsDir ? { bodyStructure: true } : {}),
      };

      for (const batch of batches) {
        if (o.stop?.stopped) break;
        const metas = new Map<number, Meta>();
        const saved: SavedMessage[] = [];
        const large: Meta[] = [];
        const inflight = new Inflight(o.format === 'mbox' ? 1 : 8, MAX_INFLIGHT_BYTES);
        const put = async (m: Meta, content: Buffer | Readable) => {
          const file = await sink!.write(m, content);
          if (!file) debug(`fetch: UID ${m.uid} is already on disk`);
          else summary.bytes += m.size;
          saved.push({ uid: m.uid, file, size: m.size, attachments: [] });
        };
        const asked = new Set(batch);
        for await (const msg of client.fetch(uidSet(batch), q, { uid: true })) {
          if (!asked.has(msg.uid)) continue; // a server may answer more than was asked
          const m: Meta = {
            uid: msg.uid,
            size: msg.size ?? msg.source?.length ?? 0,
            date: msg.internalDate ? new Date(msg.internalDate) : new Date(0),
            ...(msg.bodyStructure ? { structure: msg.bodyStructure } : {}),
          };
          metas.set(m.uid, m);
          const src = msg.source;
          if (src && m.size <= src.length) {
            const meta = { ...m, size: src.length };
            await inflight.add(src.length, () => put(meta, src));
          } else {
            large.push(m);
          }
        }
        await inflight.drain();
        // mbox appends in UID order; the others do not care
        large.sort((x, y) => x.uid - y.uid);
        for (const m of large) {
          if (sink.target(m) === undefined) {
            saved.push({ uid: m.uid, file: '', size: m.size, attachments: [] });
            continue;
          }
          const dl = await client.download(String(m.uid), undefined, { uid: true, chunkSize: LARGE });
          if (dl.content) await put(m, dl.content);
          else debug(`fetch: UID ${m.uid} disappeared from the server before it was downloaded`);
        }
        mboxSize = (await sink.commit()) ?? mboxSize;
        // writes finish in any order; attachments (whose names take suffixes first come, first
        // served), the actions and the output go in UID order
        saved.sort((x, y) => x.uid - y.uid);
        // attachments only after the message itself is safe on disk
        if (o.attachmentsDir) {
          for (const sv of saved) {
            const m = metas.get(sv.uid);
            if (!m?.structure || !sv.file) continue;
            sv.attachments = await saveAttachments(client, sv.uid, m.structure, o.attachmentsDir, {
              prefix: `${mailboxTag(o.mailbox)}-${uidValidity}-${sv.uid}`,
            });
          }
        }
        savedUids = addUids(savedUids, batch);
        const next: FetchState = {
          version: 1,
          account: o.account,
          mailbox: o.mailbox,
          uidValidity,
          lastUid: Math.max(batch[batch.length - 1]!, state?.lastUid ?? 0),
          saved: formatUidRanges(savedUids),
          ...(mboxSize !== undefined ? { mboxSize } : {}),
          updated: new Date().toISOString(),
        };
        await atomicWriteFile(stateFile, JSON.stringify(next, null, 2) + '\n');
        state = next;
        // only now: the messages are on disk and the state says so
        await act(saved.map((sv) => sv.uid));
        for (const sv of saved) {
          if (sv.file) {
            summary.fetched++;
            o.onSaved?.(sv);
          }
        }
        done += batch.length;
        o.onProgress?.({ done, total, bytes: summary.bytes, totalBytes: 0 });
      }
      if (!todo.length && (!state || uidValidityChanged)) {
        // remember UIDVALIDITY even when there was nothing to fetch
        const next: FetchState = {
          version: 1,
          account: o.account,
          mailbox: o.mailbox,
          uidValidity,
          lastUid: state?.lastUid ?? 0,
          saved: formatUidRanges(savedUids),
          ...(mboxSize !== undefined ? { mboxSize } : {}),
          updated: new Date().toISOString(),
        };
        await atomicWriteFile(stateFile, JSON.stringify(next, null, 2) + '\n');
      }
      summary.elapsedMs = Date.now() - started;
      return summary;
    } finally {
      lock.release();
    }
  } catch (e) {
    if (isOauthmailError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code && /^E(ACCES|PERM|NOSPC|ROFS|IO|DQUOT|MFILE|NFILE)$/.test(code)) throw e;
    throw imapError(e, { mailbox: o.mailbox });
  } finally {
    await sink?.close().catch(() => undefined);
    await unlock();
  }
}

/** The saved state for a mailbox (tests, `fetch --status` later). */
export function readStateSync(file: string): FetchState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as FetchState;
  } catch {
    return undefined;
  }
}

/** Filter flags shared by `list` and `fetch`, as commander hands them over. */
export interface FilterFlags {
  unseen?: boolean;
  since?: string;
  before?: string;
  from?: string;
  subject?: string;
  limit?: string;
}

export function filtersFrom(flags: FilterFlags): Filters {
  const f: Filters = {};
  if (flags.unseen) f.unseen = true;
  if (flags.since !== undefined) f.since = parseDate(flags.since, '--since');
  if (flags.before !== undefined) f.before = parseDate(flags.before, '--before');
  if (flags.from !== undefined) f.from = flags.from;
  if (flags.subject !== undefined) f.subject = flags.subject;
  if (flags.limit !== undefined) {
    const n = Number(flags.limit);
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError('--limit must be a whole number of at least 1', { code: 'bad_usage' });
    f.limit = n;
  }
  return f;
}

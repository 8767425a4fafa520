/**
 * Downloading messages without loss.
 *
 * The rule: a message is acted on (--mark-seen, --move-to, --delete) only after its file is
 * complete on disk (temp file, fsync, rename, folder fsync) and the state file says so. A kill at
 * any point leaves every message on the server, or complete on disk, or both.
 *
 * What is recorded as saved is what was written, never what was asked for: a server may leave a
 * UID out of its FETCH answer, answer it without a body, or list UIDs in SEARCH that cannot exist
 * (at or above UIDNEXT, RFC 9051 §2.3.1.1). None of those is recorded, so none is ever acted on.
 * Before acting on a message an earlier run recorded, its file is looked for on disk (eml, Maildir).
 *
 * Work is committed in batches: files of a batch are fsynced and renamed, the folder fsynced once,
 * then the state saved, then the actions run for that batch. Crash windows:
 *  - killed before the state is saved: the rerun downloads the batch again; .eml files are replaced
 *    by identical ones, Maildir files already present are recognised, and an mbox is truncated back
 *    to the length recorded in the state. That length is recorded before the first append of a run,
 *    so a run killed before its first commit leaves no torn or doubled copy either.
 *  - killed after the state was saved but before the actions ran: a rerun with the same action
 *    applies it to them ("saved earlier, still on the server") without downloading them again.
 * UIDVALIDITY change: the server renumbered the mailbox; we say so and download every matching
 * message again into new names (duplicates of earlier downloads are possible, loss is not).
 *
 * Memory: messages up to 512 KiB come in one pipelined FETCH per batch (imapflow applies
 * backpressure per message); larger ones are streamed to disk in 512 KiB partial fetches. The IMAP
 * client refuses literals larger than that needs (../imap.ts), so a hostile server cannot make us
 * buffer more, and a read that stalls ends at the socket's idle timeout.
 */
import type { Readable } from 'node:stream';
import type { ImapFlow } from 'imapflow';
import { MailServerError, isOauthmailError } from '../../errors/index.js';
import { ensureDir } from '../../util/fs.js';
import { imapError, realImapError } from '../imap.js';
import { saveAttachments } from '../attachments.js';
import { addUids, formatUidRanges, splitByUidRanges, uidSet, type UidRanges } from '../uid-ranges.js';
import type { Filters } from './filters.js';
import { openMailbox, searchUids } from './listing.js';
import { claimFolder, lockFolder } from './folder.js';
import { emlSink, maildirSink, mboxSink, type Meta, type Sink } from './sinks.js';
import { mailboxTag, readState, savedUidsOf, stateFileFor, writeState, type FetchState } from './state.js';
import { Inflight } from './inflight.js';

export type FetchFormat = 'eml' | 'maildir' | 'mbox';
export const FETCH_FORMATS: readonly FetchFormat[] = ['eml', 'maildir', 'mbox'];

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
  /** The SASL user: a folder holds one account's mail (./folder.ts). */
  account: string;
  onSaved?: (m: SavedMessage) => void;
  onProgress?: (p: { done: number; total: number; bytes: number; totalBytes: number }) => void;
  warn?: (line: string) => void;
  debug?: (line: string) => void;
  /**
   * Aborted (Ctrl-C, SIGTERM): stop reading at once, write what has arrived, commit it (state
   * file), and return with `interrupted` set; no --mark-seen/--move-to/--delete is sent then (the
   * next run applies it to what was saved).
   */
  signal?: AbortSignal;
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
  /** Asked for but not saved (left out of the server's answer, or answered without a body). */
  missing: number;
  bytes: number;
  markedSeen: number;
  moved: number;
  deleted: number;
  uidValidityChanged: boolean;
  /** Stopped by the signal before everything was fetched. */
  interrupted: boolean;
  elapsedMs: number;
  stateFile: string;
}

/** The largest literal a fetch asks for (the first part of each message, and each partial fetch). */
export const LARGE = 512 * 1024;
const MAX_INFLIGHT_BYTES = 4 * 1024 * 1024;

function serverOf(client: ImapFlow): string {
  const o = client.options as { host?: string; port?: number };
  return `${o.host ?? ''}:${o.port ?? ''}`;
}

function openSink(o: FetchOptions, uidValidity: string, state: FetchState | undefined) {
  const warn = o.warn ?? (() => undefined);
  if (o.format === 'eml') return emlSink(o.out, o.mailbox, uidValidity);
  if (o.format === 'maildir') return maildirSink(o.out, o.mailbox, uidValidity);
  return mboxSink(o.out, o.mailbox, state?.mboxSize, warn);
}

export async function fetchMessages(client: ImapFlow, o: FetchOptions): Promise<FetchSummary> {
  const started = Date.now();
  const warn = o.warn ?? (() => undefined);
  const debug = o.debug ?? (() => undefined);
  const acting = !!(o.markSeen || o.moveTo || o.delete);

  await ensureDir(o.out);
  if (o.attachmentsDir) await ensureDir(o.attachmentsDir, '--attachments');
  const folder = await lockFolder(o.out);
  let sink: Sink | undefined;
  try {
    await claimFolder(o.out, o.account, serverOf(client));
    if (o.moveTo) {
      // fail before downloading anything when the target does not exist
      try {
        const st = await client.status(o.moveTo, { messages: true });
        if (!st) throw new Error('NONEXISTENT');
      } catch (e) {
        throw imapError(e, { mailbox: o.moveTo });
      }
    }
    // UIDNEXT must be fresh: `watch` keeps the mailbox selected between fetches, and imapflow does
    // not learn the UIDNEXT of messages that arrived since (only EXISTS), so select it again
    const wasOpen = client.mailbox && client.mailbox.path === o.mailbox;
    const lock = await openMailbox(client, o.mailbox, !acting);
    try {
      if (wasOpen) {
        try {
          await client.mailboxOpen(o.mailbox, { readOnly: !acting });
        } catch (e) {
          throw imapError(e, { mailbox: o.mailbox });
        }
      }
      const box = client.mailbox;
      if (!box) throw new MailServerError(`could not open ${o.mailbox}`, { code: 'imap_select_failed' });
      const uidValidity = String(box.uidValidity);
      // read now: imapflow raises its own copy when a FETCH answer names a higher UID
      const uidNext = Number(box.uidNext) || undefined;
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
      let savedUids: UidRanges = savedUidsOf(state);
      const opened = await openSink(o, uidValidity, state);
      sink = opened;
      let mboxSize: number | undefined = 'size' in opened ? (opened.size as number) : undefined;
      const record = async () => {
        const next: FetchState = {
          version: 1,
          account: o.account,
          mailbox: o.mailbox,
          uidValidity,
          lastUid: Math.max(0, ...savedUids.map(([, b]) => b)),
          saved: formatUidRanges(savedUids),
          ...(mboxSize !== undefined ? { mboxSize } : {}),
          updated: new Date().toISOString(),
        };
        await writeState(stateFile, next);
        state = next;
      };
      // The start marker: the state exists (with the mbox length) before anything is appended.
      if (!state || (o.format === 'mbox' && state.mboxSize !== mboxSize)) await record();

      const matched = await searchUids(client, o.filters, uidNext);
      const { inside: earlier, outside } = splitByUidRanges(matched, savedUids);
      let todo = outside;
      if (o.filters.limit !== undefined) todo = todo.slice(0, o.filters.limit);

      const summary: FetchSummary = {
        mailbox: o.mailbox,
        uidValidity,
        matched: matched.length,
        fetched: 0,
        alreadySaved: 0,
        missing: 0,
        bytes: 0,
        markedSeen: 0,
        moved: 0,
        deleted: 0,
        uidValidityChanged,
        interrupted: false,
        elapsedMs: 0,
        stateFile,
      };
      const aborted = () => !!o.signal?.aborted;

      const act = async (uids: number[]) => {
        if (!uids.length || !acting) return;
        folder.check();
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

      // saved by an earlier run (its state says so) but still on the server: act on them now,
      // once their files are found on disk
      if (acting && earlier.length) {
        const onDisk: number[] = [];
        for (const uid of earlier) if (await sink.holds(uid)) onDisk.push(uid);
        if (onDisk.length < earlier.length)
          warn(
            `${earlier.length - onDisk.length} message(s) of ${o.mailbox} recorded as saved are not in ${o.out}; ` +
              `they are left on the server (move the state file ${stateFile} away to download them again)`,
          );
        debug(
          `fetch: ${onDisk.length} message(s) saved earlier are still in ${o.mailbox}; applying the action to them`,
        );
        await act(onDisk);
        summary.alreadySaved = onDisk.length;
      }

      const perBatch = o.batchSize ?? (acting ? 200 : 2000);
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

      for (let i = 0; i < todo.length; i += perBatch) {
        if (aborted()) break;
        const batch = todo.slice(i, i + perBatch);
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
        for await (const msg of untilAborted(client.fetch(uidSet(batch), q, { uid: true }), o.signal)) {
          // a server may answer more than was asked, or the same UID twice
          if (!asked.delete(msg.uid)) continue;
          const m: Meta = {
            uid: msg.uid,
            size: msg.size ?? msg.source?.length ?? 0,
            date: msg.internalDate ? new Date(msg.internalDate) : new Date(0),
            ...(msg.bodyStructure ? { structure: msg.bodyStructure } : {}),
          };
          metas.set(m.uid, m);
          const src = msg.source;
          if (src && src.length > 0 && m.size <= src.length) {
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
          if (aborted()) break; // not saved, not recorded: the next run downloads it
          if (sink.target(m) === undefined) {
            saved.push({ uid: m.uid, file: '', size: m.size, attachments: [] });
            continue;
          }
          const dl = await client.download(String(m.uid), undefined, { uid: true, chunkSize: LARGE });
          if (dl.content) await put(m, dl.content);
          else asked.add(m.uid);
        }
        // (interrupted: what did not arrive is simply not recorded; the next run asks again)
        if (asked.size && !aborted()) {
          summary.missing += asked.size;
          warn(
            `the server sent no message for UID ${uidSet([...asked])} of ${o.mailbox}; ` +
              `not saved${acting ? ', so left on the server' : ''} (a rerun tries again)`,
          );
        }
        mboxSize = (await sink.commit()) ?? mboxSize;
        // writes finish in any order; attachments (whose names take suffixes first come, first
        // served), the actions and the output go in UID order
        saved.sort((x, y) => x.uid - y.uid);
        if (o.attachmentsDir) {
          // attachments only after the message itself is safe on disk
          for (const sv of saved) {
            const m = metas.get(sv.uid);
            if (!m?.structure || !sv.file) continue;
            sv.attachments = await saveAttachments(client, sv.uid, m.structure, o.attachmentsDir, {
              prefix: `${mailboxTag(o.mailbox)}-${uidValidity}-${sv.uid}`,
            });
          }
        }
        // only what was written is recorded, and only then acted on
        savedUids = addUids(
          savedUids,
          saved.map((sv) => sv.uid),
        );
        await record();
        // interrupted: what is on disk is committed; the actions wait for the next run (the
        // connection may still be busy with the FETCH we stopped reading)
        if (aborted()) summary.interrupted = true;
        else await act(saved.map((sv) => sv.uid));
        for (const sv of saved) {
          if (sv.file) {
            summary.fetched++;
            o.onSaved?.(sv);
          }
        }
        if (summary.interrupted) break;
        done += batch.length;
        o.onProgress?.({ done, total, bytes: summary.bytes, totalBytes: 0 });
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
    throw imapError(realImapError(client, e), { mailbox: o.mailbox });
  } finally {
    await sink?.close().catch(() => undefined);
    await folder.release();
  }
}

/**
 * The messages of a FETCH until the signal fires: a server that is slow (or silent) must not keep
 * a Ctrl-C waiting for the next message. The iterator's pending read is left to the connection's
 * close (its rejection is absorbed here).
 */
async function* untilAborted<T>(src: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  if (!signal) {
    yield* src;
    return;
  }
  const it = src[Symbol.asyncIterator]();
  const stop = new Promise<'stop'>((resolve) => {
    if (signal.aborted) resolve('stop');
    else signal.addEventListener('abort', () => resolve('stop'), { once: true });
  });
  for (;;) {
    const next = it.next();
    next.catch(() => undefined);
    const r = await Promise.race([next, stop]);
    if (r === 'stop') return;
    if (r.done) return;
    yield r.value;
  }
}

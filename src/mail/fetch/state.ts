/**
 * The fetch state file: one per (account, mailbox) in the output folder, recording the mailbox's
 * UIDVALIDITY (RFC 9051 §2.3.1.1) and the set of UIDs whose files are on disk (../uid-ranges.ts),
 * plus the committed length of an mbox. Only UIDs that were written go in: a UID the server left
 * out of its FETCH answer, or answered without a body, is never recorded, so it is never acted on.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { UsageError } from '../../errors/index.js';
import { atomicWriteFile, readFileIfExists } from '../../util/fs.js';
import { parseUidRanges, type UidRanges } from '../uid-ranges.js';

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

const hash = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/**
 * A file-name-safe tag for a mailbox path, different for different mailboxes: a name made only of
 * letters, digits, "_" and "-" (up to 40 bytes) is its own tag ("INBOX", "Archive-2024"); any other
 * name is shortened to safe characters and gets "~" and a hash of the whole name, so that
 * "Projects.Q1" and "Projects/Q1", or two long names that differ only at the end, never share a file.
 * ("~" never occurs in a plain tag, so a plain and a hashed tag cannot be equal either.)
 */
export function mailboxTag(mailbox: string): string {
  if (/^[A-Za-z0-9_-]{1,40}$/.test(mailbox)) return mailbox;
  const safe = mailbox.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 31) || 'mailbox';
  return `${safe}~${hash(mailbox, 8)}`;
}

export function stateFileFor(out: string, account: string, mailbox: string): string {
  const h = hash(`${account.toLowerCase()}\0${mailbox}`, 10);
  return path.join(out, `.oauthmail-state.${mailboxTag(mailbox)}.${h}.json`);
}

export async function readState(file: string): Promise<FetchState | undefined> {
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

/** The UIDs a state says are saved. */
export function savedUidsOf(state: FetchState | undefined): UidRanges {
  if (!state) return [];
  if (state.saved !== undefined) return parseUidRanges(state.saved)!;
  return state.lastUid > 0 ? [[1, state.lastUid]] : [];
}

export async function writeState(file: string, state: FetchState): Promise<void> {
  // the output folder is the user's: leave its mode alone; temps of a state write that a killed run
  // left are removed (the caller holds the folder lock)
  await atomicWriteFile(file, JSON.stringify(state, null, 2) + '\n', 0o600, {
    privateDir: false,
    removeStaleTemps: true,
  });
}

/** The saved state for a mailbox (tests, `fetch --status` later). */
export function readStateSync(file: string): FetchState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as FetchState;
  } catch {
    return undefined;
  }
}

/**
 * What `watch --exec` has handled, kept across runs: per (account, server, mailbox), the
 * UIDVALIDITY and the last UID handed to the command. A watch that was stopped (reboot, deploy)
 * hands the messages that arrived meanwhile to the command when it starts again; a first run starts
 * from the messages that arrive from then on. Kept in the data folder (`watch/<hash>.json`).
 */
import path from 'node:path';
import { createHash } from 'node:crypto';
import { atomicWriteFile, readFileIfExists } from '../util/fs.js';

export interface WatchState {
  version: 1;
  account: string;
  server: string;
  mailbox: string;
  uidValidity: string;
  lastUid: number;
  updated: string;
}

export function watchStateFile(dataDir: string, account: string, server: string, mailbox: string): string {
  const h = createHash('sha256').update(`${account.toLowerCase()}\0${server}\0${mailbox}`).digest('hex');
  return path.join(dataDir, 'watch', `${h.slice(0, 16)}.json`);
}

/** The saved state, or undefined when there is none or it cannot be read (then: start from now). */
export async function readWatchState(file: string): Promise<WatchState | undefined> {
  try {
    const s = JSON.parse((await readFileIfExists(file)) ?? 'null') as WatchState | null;
    if (s && s.version === 1 && typeof s.uidValidity === 'string' && Number.isInteger(s.lastUid)) return s;
  } catch {
    // a damaged file: start from now, as on a first run
  }
  return undefined;
}

export async function writeWatchState(
  file: string,
  s: Omit<WatchState, 'version' | 'updated'>,
): Promise<void> {
  const state: WatchState = { version: 1, ...s, updated: new Date().toISOString() };
  await atomicWriteFile(file, JSON.stringify(state, null, 2) + '\n', 0o600, { removeStaleTemps: true });
}

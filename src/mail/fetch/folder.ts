/**
 * The output folder of `fetch`/`watch`: one writer at a time, and one account.
 *
 * Lock: proper-lockfile (an atomic mkdir of `.oauthmail.lock`, its mtime refreshed while held, taken
 * over only when stale), as the secret store does. A pid file was not enough: two runs that found
 * the same stale pid file both took it and wrote one mbox at once.
 *
 * Owner: `.oauthmail-folder.json` names the account and server whose mail the folder holds. File
 * names are (mailbox, UIDVALIDITY, UID), and equal UIDVALIDITYs across accounts are common, so a
 * second account in the same folder would find "its" messages already on disk, or truncate the
 * other's mbox, and --delete would then remove mail that was never saved. A second account is refused.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { TransientError, UsageError } from '../../errors/index.js';
import { atomicWriteFile, readFileIfExists, removeStaleTemps } from '../../util/fs.js';

export const LOCK_NAME = '.oauthmail.lock';
export const OWNER_FILE = '.oauthmail-folder.json';

export interface FolderLock {
  /** Throws when the lock was taken over while held (we stalled past its staleness). */
  check(): void;
  release(): Promise<void>;
}

export async function lockFolder(out: string): Promise<FolderLock> {
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(out, {
      lockfilePath: path.join(out, LOCK_NAME),
      realpath: false,
      stale: 10_000,
      update: 2_500,
      retries: 0,
      // the default handler throws from a timer, which would crash the process mid-write
      onCompromised: (e) => {
        compromised = e;
      },
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
    throw new TransientError(`another oauthmail fetch or watch is writing to ${out}`, {
      code: 'fetch_locked',
      hint: 'wait for it to finish, or use another --out folder (a lock left by a killed run is taken over after 10 s)',
      cause: e,
    });
  }
  // a write of the owner file that a killed run left half done (we hold the lock now)
  await removeStaleTemps(path.join(out, OWNER_FILE));
  return {
    check() {
      if (compromised)
        throw new TransientError(
          `the lock on ${out} was taken over by another process while this fetch held it`,
          {
            code: 'fetch_lock_lost',
            hint: 'run the command again; nothing was acted on after the lock was lost',
            cause: compromised,
          },
        );
    },
    release: () => release().catch(() => undefined),
  };
}

interface Owner {
  version: 1;
  account: string;
  server: string;
}

/** Accounts named in the state files of a folder written before the owner file existed. */
async function accountsInStates(out: string): Promise<string[]> {
  const found = new Set<string>();
  for (const f of await fsp.readdir(out)) {
    if (!/^\.oauthmail-state\..*\.json$/.test(f)) continue;
    try {
      const s = JSON.parse(await fsp.readFile(path.join(out, f), 'utf8')) as { account?: unknown };
      if (typeof s.account === 'string') found.add(s.account.toLowerCase());
    } catch {
      // a damaged state file is reported when its mailbox is fetched
    }
  }
  return [...found];
}

/** Make sure `out` holds mail of this account and server only (call while holding the lock). */
export async function claimFolder(out: string, account: string, server: string): Promise<void> {
  const file = path.join(out, OWNER_FILE);
  const me = account.toLowerCase();
  const refuse = (other: string, where: string) =>
    new UsageError(
      `--out ${out} holds mail fetched for ${other}${where}; ${account} at ${server} cannot share it`,
      {
        code: 'fetch_folder_taken',
        hint:
          `give each account its own folder (e.g. --out ${out.replace(/\/+$/, '')}-${me.split('@')[0]}); ` +
          `if it is the same mailbox under a new server name, delete ${file}`,
      },
    );
  const text = await readFileIfExists(file);
  if (text !== undefined) {
    let owner: Partial<Owner> = {};
    try {
      owner = JSON.parse(text) as Owner;
    } catch {
      // rewritten below
    }
    if (typeof owner.account === 'string' && typeof owner.server === 'string') {
      if (owner.account.toLowerCase() !== me || owner.server.toLowerCase() !== server.toLowerCase())
        throw refuse(owner.account, ` from ${owner.server}`);
      return;
    }
  } else {
    const others = (await accountsInStates(out)).filter((a) => a !== me);
    if (others.length) throw refuse(others.join(', '), '');
  }
  const owner: Owner = { version: 1, account, server };
  await atomicWriteFile(file, JSON.stringify(owner, null, 2) + '\n', 0o600, { privateDir: false });
}

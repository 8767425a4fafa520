/**
 * `watch`: wait for new messages with IMAP IDLE (RFC 2177) and hand each one over: run a command
 * with the message on stdin, or save it like `fetch` does.
 *
 * For long-running services:
 *  - the connection is re-made with exponential backoff (1 s doubling to 60 s, with jitter) after
 *    any network failure or server restart; messages that arrived while we were away are handled
 *    after reconnecting (we remember the last UID handled, and the UIDVALIDITY it belongs to);
 *  - IMAP sessions outlive their access token on some servers and not on others (Exchange Online
 *    drops them when the token expires), so we reconnect with a fresh token a few minutes before the
 *    current one expires (read from the JWT's exp; 50 minutes for opaque tokens);
 *  - IDLE is restarted every 10 minutes (RFC 2177 asks clients to re-issue it within 29 minutes);
 *  - a refusal of the token or the mailbox is not retried: it will not heal by itself.
 *
 * With --exec the command runs once per message, in UID order, one at a time, through /bin/sh, with
 * the raw message on stdin and OAUTHMAIL_UID, OAUTHMAIL_MAILBOX and OAUTHMAIL_UIDVALIDITY set. The
 * last UID handled is kept in the data folder (./watch-state.ts), so messages that arrive while no
 * watch runs are handled at the next start. A failing command is tried again (3 tries by default),
 * then the message is moved to --failed-folder, or left in the mailbox unseen, and reported.
 * With --out the messages are saved exactly as `fetch` does (state file, fsync, no loss).
 */
import { spawn } from 'node:child_process';
import { childEnv } from '../util/child-env.js';
import type { ImapFlow } from 'imapflow';
import {
  AuthError,
  ConfigError,
  UsageError,
  isOauthmailError,
  type OauthmailError,
} from '../errors/index.js';
import { decodeJwt } from '../auth/jwt.js';
import type { TokenSource } from './token-source.js';
import type { ImapConnection } from './imap.js';
import { closeImap, imapError } from './imap.js';
import { readWatchState, writeWatchState } from './watch-state.js';
import { fetchMessages, type FetchFormat, type SavedMessage } from './fetch/index.js';

export interface WatchOptions {
  mailbox: string;
  exec?: string;
  out?: string;
  format?: FetchFormat;
  account: string;
  /** Reconnect this long before the token expires. */
  refreshMarginMs?: number;
  /** Restart IDLE this often. */
  idleRestartMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Aborted: stop (SIGINT/SIGTERM); waits end at once, a message being handled is finished. */
  signal: AbortSignal;
  onHandled?: (e: { uid: number; ok: boolean; file?: string; exitCode?: number | null }) => void;
  warn?: (line: string) => void;
  info?: (line: string) => void;
  debug?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** --exec: where the last UID handled is kept across runs (./watch-state.ts); none: memory only. */
  stateFile?: (server: string) => string;
  /** --exec: tries of the command per message (default 3), with these waits between them. */
  execAttempts?: number;
  execRetryDelaysMs?: number[];
  /** --exec: move a message whose command kept failing to this folder (else it stays, unseen). */
  failedFolder?: string;
}

/** The fatal ones: a refusal that retrying will not fix. */
function isFatal(e: OauthmailError): boolean {
  if (e instanceof AuthError || e instanceof ConfigError || e instanceof UsageError) return true;
  return [
    'imap_auth_refused',
    'imap_disabled',
    'imap_not_connected',
    'imap_mailbox_not_found',
    'imap_no_mechanism',
  ].includes(e.code);
}

/** When to reconnect with a new token: `marginMs` before a JWT's exp, else 50 minutes from now. */
export function tokenRenewAt(token: string | undefined, now: number, marginMs: number): number {
  const exp = token ? decodeJwt(token)?.claims.exp : undefined;
  if (typeof exp === 'number' && Number.isFinite(exp)) return Math.max(now + 30_000, exp * 1000 - marginMs);
  return now + 50 * 60_000;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Run `sh -c CMD` with `message` on stdin; resolves with the exit code. */
function runCommand(
  cmd: string,
  message: AsyncIterable<Buffer>,
  env: NodeJS.ProcessEnv,
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['pipe', 'inherit', 'inherit'], env });
    child.on('error', reject);
    // a command that does not read its stdin is fine: ignore EPIPE
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) => resolve(signal ? 128 + 15 : code));
    void (async () => {
      try {
        for await (const chunk of message) {
          if (!child.stdin.write(chunk))
            await new Promise<void>((r) => child.stdin.once('drain', r).once('close', r));
          if (child.stdin.destroyed) break;
        }
      } catch {
        // the download failed; the command sees a truncated stdin and the close below
      } finally {
        child.stdin.end();
      }
    })();
  });
}

export async function watchMailbox(
  connect: (source: TokenSource) => Promise<ImapConnection>,
  source: TokenSource,
  o: WatchOptions,
): Promise<void> {
  if (!o.exec && !o.out) throw new UsageError('give --exec CMD or --out DIR', { code: 'bad_usage' });
  if (o.exec && o.out) throw new UsageError('give --exec CMD or --out DIR, not both', { code: 'bad_usage' });
  const warn = o.warn ?? (() => undefined);
  const info = o.info ?? (() => undefined);
  const debug = o.debug ?? (() => undefined);
  const margin = o.refreshMarginMs ?? 5 * 60_000;
  const idleRestart = o.idleRestartMs ?? 10 * 60_000;
  const backoff = o.backoff ?? { initialMs: 1000, maxMs: 60_000 };

  // remember the token handed out, to know when it expires
  let lastToken: string | undefined;
  const tracking: TokenSource = {
    user: source.user,
    getAccessToken: async (opts) => (lastToken = await source.getAccessToken(opts)),
  };

  let lastUid: number | undefined;
  let uidValidity: string | undefined;
  let failures = 0;

  while (!o.signal.aborted) {
    let client: ImapFlow | undefined;
    try {
      ({ client } = await connect(tracking));
      const c = client;
      const renewAt = tokenRenewAt(lastToken, Date.now(), margin);
      let closed = false;
      let changed = false;
      let wakeLoop: (() => void) | undefined;
      const poke = () => wakeLoop?.();
      c.on('exists', () => {
        changed = true;
        poke();
      });
      c.on('close', () => {
        closed = true;
        poke();
      });

      let box;
      try {
        // read-write only when a failing message may have to be moved
        box = await c.mailboxOpen(o.mailbox, { readOnly: !o.failedFolder });
      } catch (e) {
        throw imapError(e, { mailbox: o.mailbox, user: source.user });
      }
      const validity = String(box.uidValidity);
      if (uidValidity !== undefined && uidValidity !== validity) {
        warn(
          `the UIDVALIDITY of ${o.mailbox} changed (${uidValidity} -> ${validity}); handling only messages that arrive from now on`,
        );
        lastUid = undefined;
      }
      uidValidity = validity;
      const server = `${String(c.options.host ?? '')}:${String(c.options.port ?? '')}`;
      const stateFile = o.exec && o.stateFile ? o.stateFile(server) : undefined;
      if (lastUid === undefined && stateFile) {
        // what arrived while no watch was running is handled now; a first run starts from now
        const saved = await readWatchState(stateFile);
        if (saved && saved.uidValidity === validity) lastUid = saved.lastUid;
        else if (saved)
          warn(
            `the UIDVALIDITY of ${o.mailbox} changed since the last watch (${saved.uidValidity} -> ${validity}); handling only messages that arrive from now on`,
          );
      }
      if (lastUid === undefined && o.exec) lastUid = box.uidNext - 1;
      const remember = async (uid: number) => {
        lastUid = uid;
        if (stateFile)
          await writeWatchState(stateFile, {
            account: o.account,
            server,
            mailbox: o.mailbox,
            uidValidity: validity,
            lastUid: uid,
          });
      };
      if (stateFile && !(await readWatchState(stateFile))) await remember(lastUid ?? 0);
      if (failures) info(`reconnected to ${o.mailbox}`);
      else
        info(
          `watching ${o.mailbox} (${o.exec ? 'running the command for each new message' : `saving new messages to ${o.out}`}); stop with Ctrl-C`,
        );
      failures = 0;

      const handleNew = async () => {
        if (o.out) {
          const summary = await fetchMessages(c, {
            mailbox: o.mailbox,
            out: o.out,
            format: o.format ?? 'eml',
            filters: {},
            account: o.account,
            warn,
            debug,
            onSaved: (m: SavedMessage) => o.onHandled?.({ uid: m.uid, ok: true, file: m.file }),
          });
          // fetchMessages selects the mailbox read-only too; make sure it is open again for IDLE
          if (!c.mailbox || c.mailbox.path !== o.mailbox) await c.mailboxOpen(o.mailbox, { readOnly: true });
          if (summary.fetched) debug(`watch: saved ${summary.fetched} message(s)`);
          return;
        }
        const res = await c.search({ uid: `${(lastUid ?? 0) + 1}:*` }, { uid: true });
        const uids = (Array.isArray(res) ? res : []).filter((u) => u > (lastUid ?? 0)).sort((a, b) => a - b);
        const attempts = Math.max(1, o.execAttempts ?? 3);
        const delays = o.execRetryDelaysMs ?? [5_000, 30_000];
        for (const uid of uids) {
          if (o.signal.aborted) return;
          // a handler that reads untrusted mail must not get what unlocks the stored tokens
          const env = childEnv(o.env ?? process.env, {
            OAUTHMAIL_UID: String(uid),
            OAUTHMAIL_MAILBOX: o.mailbox,
            OAUTHMAIL_UIDVALIDITY: validity,
          });
          let code: number | null = 0;
          let gone = false;
          for (let attempt = 1; attempt <= attempts; attempt++) {
            const dl = await c.download(String(uid), undefined, { uid: true, chunkSize: 1024 * 1024 });
            if (!dl.content) {
              gone = true; // deleted or moved by someone else meanwhile
              break;
            }
            code = await runCommand(o.exec!, dl.content as AsyncIterable<Buffer>, env);
            if (code === 0 || o.signal.aborted) break;
            if (attempt < attempts) {
              const wait = delays[Math.min(attempt - 1, delays.length - 1)] ?? 0;
              warn(
                `the command exited with ${code} for UID ${uid}; trying again in ${(wait / 1000).toFixed(1)} s (${attempt + 1}/${attempts})`,
              );
              await sleep(wait, o.signal);
            }
          }
          if (o.signal.aborted && code !== 0) return; // not handled: the next watch tries it again
          if (!gone && code !== 0) {
            if (o.failedFolder) {
              try {
                await c.messageMove(String(uid), o.failedFolder, { uid: true });
                warn(`the command kept failing (exit ${code}) for UID ${uid}; moved it to ${o.failedFolder}`);
              } catch (e) {
                throw imapError(e, { mailbox: o.failedFolder });
              }
            } else {
              warn(
                `the command kept failing (exit ${code}) for UID ${uid}; the message stays in ${o.mailbox}, unseen`,
              );
            }
          }
          await remember(uid);
          if (!gone) o.onHandled?.({ uid, ok: code === 0, exitCode: code });
        }
      };

      // `changed` is cleared when a round of handling starts, never after it: an EXISTS that
      // arrives while we search or run the command (the server sends it once, with whatever
      // command is running) must wake the next round, not be forgotten before IDLE
      changed = false;
      await handleNew();
      while (!o.signal.aborted && !closed) {
        if (Date.now() >= renewAt) {
          info('reconnecting with a fresh token before the current one expires');
          break;
        }
        // IDLE until something arrives, the connection drops, it is time to restart IDLE or renew
        const idling = c.idle().catch((e: unknown) => debug(`watch: IDLE ended: ${(e as Error).message}`));
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(1000, Math.min(idleRestart, renewAt - Date.now())));
          const onAbort = () => wakeLoop?.();
          wakeLoop = () => {
            clearTimeout(t);
            o.signal.removeEventListener('abort', onAbort);
            resolve();
          };
          o.signal.addEventListener('abort', onAbort, { once: true });
          if (changed || closed || o.signal.aborted) wakeLoop();
        });
        wakeLoop = undefined;
        if (closed || o.signal.aborted) break;
        // any command breaks IDLE (imapflow sends DONE first); NOOP also collects EXISTS updates
        await c.noop();
        await idling;
        changed = false;
        await handleNew();
      }
      if (closed && !o.signal.aborted)
        throw Object.assign(new Error('the server closed the connection'), { code: 'EConnectionClosed' });
    } catch (e) {
      const err = isOauthmailError(e) ? e : imapError(e, { mailbox: o.mailbox, user: source.user });
      if (isFatal(err)) throw err;
      if (o.signal.aborted) break;
      failures++;
      const delay =
        Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(failures - 1, 16)) *
        (0.8 + Math.random() * 0.4);
      warn(`${err.message}; reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${failures})`);
      await closeImap(client).catch(() => undefined);
      client = undefined;
      await sleep(delay, o.signal);
      continue;
    } finally {
      if (client) await closeImap(client).catch(() => undefined);
    }
  }
}

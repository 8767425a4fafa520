/**
 * `oauthmail fetch`: download matching messages to .eml files, a Maildir or an mbox, without loss
 * (see src/mail/fetch/run.ts for the rules). stdout: one line per saved file (JSON lines with --json);
 * stderr: progress on a TTY and the summary.
 */
import { Command, Option } from 'commander';
import { InterruptedError, UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { FetchFormat } from '../../mail/fetch/index.js';
import { filtersFrom, type FilterFlags, type Filters } from '../../mail/fetch/filters.js';
import { addFilterOptions } from './list.js';
import { imapOpts } from './mailboxes.js';

export interface FetchFlags extends FilterFlags {
  mailbox: string;
  out?: string;
  format: FetchFormat;
  attachments?: string;
  markSeen?: boolean;
  moveTo?: string;
  delete?: boolean;
  batch?: string;
  timeout?: string;
  ca?: string;
  insecureTls?: boolean;
}

export interface FetchOptions {
  profile: string | undefined;
  json: boolean;
  mailbox: string;
  out: string;
  format: FetchFormat;
  filters: Filters;
  attachments: string | undefined;
  markSeen: boolean;
  moveTo: string | undefined;
  delete: boolean;
  /** Messages per commit (undefined: the default of mail/fetch). */
  batchSize: number | undefined;
  /** Give up when the server sends nothing for this long. */
  idleTimeoutSeconds: number;
  ca: string | undefined;
  insecureTls: boolean;
}

/** Flags to options; throws UsageError (exit 2) before any sign-in or connection. */
export function fetchOptions(flags: FetchFlags, globals: GlobalOptions): FetchOptions {
  if (flags.moveTo && flags.delete)
    throw new UsageError('give --move-to or --delete, not both', { code: 'bad_usage' });
  if (flags.moveTo && flags.moveTo === flags.mailbox)
    throw new UsageError('--move-to names the mailbox being fetched', { code: 'bad_usage' });
  let batchSize: number | undefined;
  if (flags.batch !== undefined) {
    batchSize = Number(flags.batch);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
      throw new UsageError('--batch must be a whole number from 1 to 100000', { code: 'bad_usage' });
    }
  }
  const idle = Number(flags.timeout ?? '60');
  if (!Number.isFinite(idle) || idle < 1 || idle > 86_400) {
    throw new UsageError('--timeout must be a number of seconds from 1 to 86400', { code: 'bad_usage' });
  }
  if (!flags.out) throw new UsageError('give --out DIR', { code: 'bad_usage' });
  return {
    profile: globals.profile,
    json: !!globals.json,
    mailbox: flags.mailbox,
    out: flags.out,
    format: flags.format,
    filters: filtersFrom(flags),
    attachments: flags.attachments,
    markSeen: !!flags.markSeen,
    moveTo: flags.moveTo,
    delete: !!flags.delete,
    batchSize,
    idleTimeoutSeconds: idle,
    ca: flags.ca,
    insecureTls: !!flags.insecureTls,
  };
}

export async function runFetch(o: FetchOptions, ctx: Context): Promise<void> {
  const io = ctx.io;
  const { fetchMessages } = await import('../../mail/fetch/index.js');
  const { profile, source } = await ctx.tokenSource(o.profile);
  const { connectImap, closeImap } = await import('../../mail/imap.js');
  const { client } = await connectImap(profile, source, {
    ...imapOpts(ctx, o),
    socketTimeoutMs: o.idleTimeoutSeconds * 1000,
  });
  // Ctrl-C / SIGTERM: stop reading, commit what is on disk, exit 130 / 143 (the shell's codes,
  // as for every interrupted command); a second one quits at once (nothing is lost either way:
  // what was not committed is downloaded again)
  const stop = ctx.interrupt.claim(
    'stopping: saving what has arrived (interrupt again to quit at once; nothing is lost either way)',
  );
  const tty = io.stderrIsTTY;
  let lastDraw = 0;
  try {
    const summary = await fetchMessages(client, {
      mailbox: o.mailbox,
      out: o.out,
      format: o.format,
      filters: o.filters,
      account: source.user,
      ...(o.attachments ? { attachmentsDir: o.attachments } : {}),
      ...(o.markSeen ? { markSeen: true } : {}),
      ...(o.moveTo ? { moveTo: o.moveTo } : {}),
      ...(o.delete ? { delete: true } : {}),
      ...(o.batchSize ? { batchSize: o.batchSize } : {}),
      signal: stop.signal,
      warn: (m) => io.warn(m),
      debug: (m) => io.debug(m),
      onSaved: (m) => {
        if (o.json) io.stdout.write(JSON.stringify(m) + '\n');
        else io.out(m.file);
      },
      onProgress: ({ done, total, bytes, totalBytes }) => {
        if (!tty || !total) return;
        const now = ctx.clock.now();
        if (now - lastDraw < 100 && done !== total) return;
        lastDraw = now;
        const w = 30;
        const fill = Math.round((done / total) * w);
        const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
        io.stderr.write(
          `\r[${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${done}/${total} messages, ${mb(bytes)}${totalBytes ? `/${mb(totalBytes)}` : ''} MB`,
        );
      },
    });
    if (tty && summary.matched) io.stderr.write('\n');
    const acted = [
      summary.markedSeen ? `${summary.markedSeen} marked seen` : '',
      summary.moved ? `${summary.moved} moved to ${o.moveTo}` : '',
      summary.deleted ? `${summary.deleted} deleted` : '',
    ].filter(Boolean);
    io.err(
      `fetch: ${summary.fetched} saved to ${o.out} (${(summary.bytes / 1024 / 1024).toFixed(1)} MB, ${(summary.elapsedMs / 1000).toFixed(1)} s)` +
        `${summary.alreadySaved ? `, ${summary.alreadySaved} saved earlier` : ''}${acted.length ? `; ${acted.join(', ')}` : ''}`,
    );
    if (stop.by) {
      throw new InterruptedError(
        stop.by,
        `fetch stopped by ${stop.by}: ${summary.fetched} message(s) saved and recorded`,
        'run the same command again to continue (it also applies --mark-seen/--move-to/--delete to what was saved)',
      );
    }
  } finally {
    stop.release();
    // interrupted: the connection may still be busy with the FETCH we stopped reading
    if (stop.by) client.close();
    else await closeImap(client);
    if (ctx.env.OAUTHMAIL_DEBUG_RSS) {
      // for memory tests: the peak resident set size of this process, in KB. VmHWM, not
      // getrusage's maxRSS: Linux carries the forking parent's peak over exec into the latter.
      const { readFileSync } = await import('node:fs');
      let kb = process.resourceUsage().maxRSS;
      try {
        kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? kb);
      } catch {
        // not Linux: fall back to getrusage
      }
      io.err(`debug: max-rss-kb=${kb}`);
    }
  }
}

export function registerFetch(program: Command, ctx: Context, runF = runFetch): void {
  addFilterOptions(
    program
      .command('fetch')
      .description('download messages to .eml files, a Maildir or an mbox, without loss'),
  )
    .requiredOption('-o, --out <dir>', 'folder to write to (created if missing)')
    .addOption(
      new Option('--format <format>', 'eml (one file per message), maildir or mbox')
        .choices(['eml', 'maildir', 'mbox'])
        .default('eml'),
    )
    .option('--attachments <dir>', 'also save attachments into DIR (safe names, never overwriting)')
    .option('--mark-seen', 'set \\Seen on each message once it is saved')
    .option('--move-to <folder>', 'move each message to FOLDER once it is saved')
    .option('--delete', 'delete each message from the server once it is saved')
    .option(
      '--batch <n>',
      'messages per commit: fsync, state file, then --mark-seen/--move-to/--delete (default 200 with those, else 2000)',
    )
    .option(
      '--timeout <seconds>',
      'give up (exit 6) when the server sends nothing for this long, also in the middle of a message',
      '60',
    )
    .addHelpText(
      'after',
      `
Nothing is lost: a message is marked, moved or deleted only after its file is complete on disk
(fsynced and renamed into place). A state file in DIR (UIDVALIDITY and the UIDs saved) makes
reruns download only messages not saved yet, whatever filters earlier runs used; with --delete or --move-to a rerun also finishes messages an
interrupted run saved but did not get to delete or move.

Examples:
  $ oauthmail fetch --out ~/mail/inbox
  $ oauthmail fetch --unseen --format maildir --out ~/Maildir --mark-seen
  $ oauthmail fetch -p shared --mailbox Invoices --attachments ./pdfs --out ./invoices --move-to Invoices/Done`,
    )
    .action((flags: FetchFlags, cmd: Command) =>
      runF(fetchOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

/**
 * `oauthmail watch`: IMAP IDLE on a folder; for each new message run a command with the message on
 * stdin, or save it (as `fetch` does). Reconnects with backoff and renews the token before it
 * expires (src/mail/watch.ts). Runs until interrupted.
 */
import { Command, Option } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { FetchFormat } from '../../mail/fetch/index.js';
import { imapOpts } from './mailboxes.js';

export interface WatchFlags {
  mailbox: string;
  exec?: string;
  out?: string;
  format: FetchFormat;
  execTries?: string;
  execRetryWait?: string;
  failedFolder?: string;
  ca?: string;
  insecureTls?: boolean;
}

export interface WatchOptions {
  profile: string | undefined;
  mailbox: string;
  /** Exactly one of exec and out. */
  exec: string | undefined;
  out: string | undefined;
  format: FetchFormat;
  execTries: number;
  execRetryWaitSeconds: number;
  failedFolder: string | undefined;
  ca: string | undefined;
  insecureTls: boolean;
}

export function watchOptions(flags: WatchFlags, globals: GlobalOptions): WatchOptions {
  if (!flags.exec && !flags.out) throw new UsageError('give --exec CMD or --out DIR', { code: 'bad_usage' });
  if (flags.exec && flags.out)
    throw new UsageError('give --exec CMD or --out DIR, not both', { code: 'bad_usage' });
  const tries = Number(flags.execTries ?? '3');
  if (!Number.isInteger(tries) || tries < 1 || tries > 20)
    throw new UsageError('--exec-tries must be a whole number from 1 to 20', { code: 'bad_usage' });
  const wait = Number(flags.execRetryWait ?? '5');
  if (!Number.isFinite(wait) || wait < 0 || wait > 3600)
    throw new UsageError('--exec-retry-wait must be a number of seconds from 0 to 3600', {
      code: 'bad_usage',
    });
  if (flags.failedFolder && !flags.exec)
    throw new UsageError('--failed-folder goes with --exec', { code: 'bad_usage' });
  return {
    profile: globals.profile,
    mailbox: flags.mailbox,
    exec: flags.exec,
    out: flags.out,
    format: flags.format,
    execTries: tries,
    execRetryWaitSeconds: wait,
    failedFolder: flags.failedFolder,
    ca: flags.ca,
    insecureTls: !!flags.insecureTls,
  };
}

export async function runWatch(o: WatchOptions, ctx: Context): Promise<void> {
  const io = ctx.io;
  const { profile, source } = await ctx.tokenSource(o.profile);
  const { watchStateFile } = await import('../../mail/watch-state.js');
  const { connectImap } = await import('../../mail/imap.js');
  const { watchMailbox } = await import('../../mail/watch.js');
  const opts = { ...imapOpts(ctx, o), disableAutoIdle: true, socketTimeoutMs: 31 * 60_000 };
  // Ctrl-C / SIGTERM: finish the message in hand and end (exit 0); a second one quits at once
  const stop = ctx.interrupt.claim('stopping');
  const tries = o.execTries;
  try {
    await watchMailbox((s) => connectImap(profile, s, opts), source, {
      mailbox: o.mailbox,
      ...(o.exec ? { exec: o.exec } : {}),
      ...(o.out ? { out: o.out, format: o.format } : {}),
      account: source.user,
      ...(o.exec
        ? {
            stateFile: (server: string) => watchStateFile(ctx.paths.dataDir, source.user, server, o.mailbox),
            execAttempts: tries,
            execRetryDelaysMs: Array.from(
              { length: tries },
              (_, i) => o.execRetryWaitSeconds * 1000 * 2 ** i,
            ),
          }
        : {}),
      ...(o.failedFolder ? { failedFolder: o.failedFolder } : {}),
      signal: stop.signal,
      env: ctx.env,
      warn: (m) => io.warn(m),
      info: (m) => io.err(m),
      debug: (m) => io.debug(m),
      onHandled: (e) => {
        if (e.file) io.out(e.file);
        else io.debug(`watch: UID ${e.uid} handled (exit ${e.exitCode})`);
      },
    });
  } finally {
    stop.release();
  }
}

export function registerWatch(program: Command, ctx: Context, runF = runWatch): void {
  program
    .command('watch')
    .description('wait for new messages (IMAP IDLE) and run a command for each, or save it')
    .option('--mailbox <name>', 'folder to watch (default INBOX)', 'INBOX')
    .option('--exec <cmd>', 'run CMD (through /bin/sh) for each new message, with the message on stdin')
    .option('-o, --out <dir>', 'save each new message into DIR instead (like fetch)')
    .addOption(
      new Option('--format <format>', 'with --out: eml, maildir or mbox')
        .choices(['eml', 'maildir', 'mbox'])
        .default('eml'),
    )
    .option('--exec-tries <n>', 'with --exec: tries of the command per message before giving up on it', '3')
    .option('--exec-retry-wait <seconds>', 'with --exec: wait before the second try (doubling after)', '5')
    .option(
      '--failed-folder <folder>',
      'with --exec: move a message whose command kept failing here (default: leave it, unseen)',
    )
    .option('--ca <file>', "trust this CA (PEM) for the IMAP server's certificate")
    .option('--insecure-tls', "do not verify the server's certificate (warns; for debugging only)")
    .addHelpText(
      'after',
      `
The command gets OAUTHMAIL_UID, OAUTHMAIL_MAILBOX and OAUTHMAIL_UIDVALIDITY in its environment,
and your environment without oauthmail's secrets (OAUTHMAIL_PASSPHRASE, OAUTHMAIL_CLIENT_SECRET):
it reads mail from anyone, so it gets no token and nothing that unlocks the stored one.
Network failures and server restarts are retried with backoff (1 s up to 60 s); messages that
arrive meanwhile are handled after reconnecting. A refused token or mailbox ends the watch (exit 4/5).

Examples:
  $ oauthmail watch --exec 'procmail'
  $ oauthmail watch -p support --mailbox Tickets --exec './new-ticket.sh'
  $ oauthmail watch --out ~/Maildir --format maildir`,
    )
    .action((flags: WatchFlags, cmd: Command) =>
      runF(watchOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

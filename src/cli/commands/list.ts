/**
 * `oauthmail list`: a table of messages (UID, date, from, subject, size, flags); JSON lines with --json.
 */
import type { Command } from 'commander';
import type { Context, GlobalOptions } from '../context.js';
import { filtersFrom, type FilterFlags, type Filters } from '../../mail/fetch/filters.js';
import { imapOpts } from './mailboxes.js';

/** The filter flags `list` and `fetch` share. */
export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option('--mailbox <name>', 'folder to read (default INBOX)', 'INBOX')
    .option('--unseen', 'only messages without the \\Seen flag')
    .option('--since <date>', 'received on or after DATE (YYYY-MM-DD, or an age like 7d, 12h)')
    .option('--before <date>', 'received before DATE')
    .option('--from <text>', 'From: contains TEXT')
    .option('--subject <text>', 'Subject: contains TEXT')
    .option('--limit <n>', 'at most N messages')
    .option('--ca <file>', "trust this CA (PEM) for the IMAP server's certificate")
    .option('--insecure-tls', "do not verify the server's certificate (warns; for debugging only)");
}

const human = (n: number) =>
  n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KB`
      : `${(n / 1024 / 1024).toFixed(1)} MB`;

export type ListFlags = FilterFlags & { mailbox: string; ca?: string; insecureTls?: boolean };

export interface ListOptions {
  profile: string | undefined;
  json: boolean;
  mailbox: string;
  filters: Filters;
  ca: string | undefined;
  insecureTls: boolean;
}

export function listOptions(flags: ListFlags, globals: GlobalOptions): ListOptions {
  return {
    profile: globals.profile,
    json: !!globals.json,
    mailbox: flags.mailbox,
    filters: filtersFrom(flags),
    ca: flags.ca,
    insecureTls: !!flags.insecureTls,
  };
}

export async function runList(o: ListOptions, ctx: Context): Promise<void> {
  const io = ctx.io;
  const { listMessages } = await import('../../mail/fetch/index.js');
  const { profile, source } = await ctx.tokenSource(o.profile);
  const { connectImap, closeImap, imapError } = await import('../../mail/imap.js');
  const { client } = await connectImap(profile, source, imapOpts(ctx, o));
  try {
    const rows = await listMessages(client, o.mailbox, o.filters).catch((e: unknown) => {
      throw imapError(e, { mailbox: o.mailbox, user: source.user });
    });
    if (o.json) {
      for (const r of rows) io.stdout.write(JSON.stringify(r) + '\n');
      return;
    }
    if (!rows.length) {
      io.err(`no messages in ${o.mailbox} match`);
      return;
    }
    const cols = Math.max(80, io.stdout.columns ?? 120);
    const fromW = 28;
    const subjW = Math.max(20, cols - 7 - 17 - fromW - 9 - 12 - 10);
    const cut = (s: string, w: number) => (s.length > w ? s.slice(0, w - 1) + '…' : s).padEnd(w);
    io.out(
      `${'UID'.padStart(7)}  ${'DATE'.padEnd(16)}  ${cut('FROM', fromW)}  ${cut('SUBJECT', subjW)}  ${'SIZE'.padStart(9)}  FLAGS`,
    );
    for (const r of rows) {
      const date = r.date ? r.date.slice(0, 16).replace('T', ' ') : '-';
      io.out(
        `${String(r.uid).padStart(7)}  ${date.padEnd(16)}  ${cut(r.from.replace(/[\r\n\t]/g, ' '), fromW)}  ${cut(r.subject.replace(/[\r\n\t]/g, ' '), subjW)}  ${human(r.size).padStart(9)}  ${r.flags.join(' ')}`.trimEnd(),
      );
    }
  } finally {
    await closeImap(client);
  }
}

export function registerList(program: Command, ctx: Context, runF = runList): void {
  addFilterOptions(
    program.command('list').description('list messages in a folder (the newest N with --limit)'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ oauthmail list --unseen\n  $ oauthmail list --mailbox Archive --since 2025-01-01 --from billing@ --json',
    )
    .action((flags: ListFlags, cmd: Command) =>
      runF(listOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

/**
 * `oauthmail mailboxes`: the folder tree with message and unseen counts. Thin: connect, list, render.
 */
import type { Command } from 'commander';
import type { Context, GlobalOptions } from '../context.js';

export interface MailboxesOptions {
  profile: string | undefined;
  json: boolean;
  ca: string | undefined;
  insecureTls: boolean;
}

export function mailboxesOptions(
  flags: { ca?: string; insecureTls?: boolean },
  globals: GlobalOptions,
): MailboxesOptions {
  return { profile: globals.profile, json: !!globals.json, ca: flags.ca, insecureTls: !!flags.insecureTls };
}

export async function runMailboxes(o: MailboxesOptions, ctx: Context): Promise<void> {
  const io = ctx.io;
  const { profile, source } = await ctx.tokenSource(o.profile);
  const { connectImap, closeImap, toImapError } = await import('../../mail/imap.js');
  const { listMailboxes } = await import('../../mail/fetch/index.js');
  const { client } = await connectImap(profile, source, imapOpts(ctx, o));
  try {
    const rows = await listMailboxes(client).catch((e: unknown) => {
      throw toImapError(e, profile, source.user, source.profile);
    });
    if (o.json) {
      io.outJson(rows);
      return;
    }
    const w = Math.max(10, ...rows.map((r) => r.depth * 2 + r.name.length));
    io.out(`${'FOLDER'.padEnd(w)}  ${'MESSAGES'.padStart(8)}  ${'UNSEEN'.padStart(6)}  SPECIAL`);
    for (const r of rows) {
      const name = '  '.repeat(r.depth) + r.name;
      io.out(
        `${name.padEnd(w)}  ${String(r.messages ?? '-').padStart(8)}  ${String(r.unseen ?? '-').padStart(6)}  ${r.specialUse ?? ''}`.trimEnd(),
      );
    }
  } finally {
    await closeImap(client);
  }
}

export function registerMailboxes(program: Command, ctx: Context, runF = runMailboxes): void {
  program
    .command('mailboxes')
    .description('list the folders of the mailbox with message and unseen counts')
    .option('--ca <file>', "trust this CA (PEM) for the IMAP server's certificate")
    .option('--insecure-tls', "do not verify the server's certificate (warns; for debugging only)")
    .addHelpText('after', '\nExamples:\n  $ oauthmail mailboxes\n  $ oauthmail mailboxes -p shared --json')
    .action((flags: { ca?: string; insecureTls?: boolean }, cmd: Command) =>
      runF(mailboxesOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

export function imapOpts(ctx: Context, flags: { ca?: string; insecureTls?: boolean }) {
  return {
    ...(flags.ca ? { caFile: flags.ca } : {}),
    ...(flags.insecureTls ? { insecureTls: true } : {}),
    warn: (m: string) => ctx.io.warn(m),
    ...(ctx.io.verbose ? { debug: (m: string) => ctx.io.debug(m) } : {}),
  };
}

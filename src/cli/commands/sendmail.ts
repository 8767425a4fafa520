/**
 * `oauthmail sendmail [-t] [-i] [-f FROM] [-F NAME] [RECIPIENT...] < message`: a drop-in for
 * /usr/sbin/sendmail (cron MAILTO, mail(1), PHP mail()). It parses its own argv (sendmail's
 * getopt-style flags clash with commander's), exits with sendmail's codes (sysexits.h: 75 =
 * temporary, the caller may queue and retry) and prints nothing on success.
 * The root's -p PROFILE and -v are honoured; otherwise OAUTHMAIL_PROFILE, then the default profile.
 *
 * A message that cannot be handed to the server now (temporary failure, sign-in needed, keychain
 * out of reach, network) goes to the local queue (src/mail/queue/) and sendmail exits 0 with one
 * line on stderr, as sendmail(8) does; a permanent refusal keeps sendmail's exit code. --no-queue
 * (or the profile key queue=off) restores "exit 75 and keep nothing" for callers that retry.
 */
import type { Command } from 'commander';
import type { Context, GlobalOptions } from '../context.js';
import { parseSendmailArgs, toSendmailError, type SendmailArgs } from '../../mail/sendmail.js';

export interface SendmailOptions {
  profile: string | undefined;
  /** `sendmail --help` (sendmail has none; ours prints the options and exit codes). */
  help: boolean;
  /** --queue / --no-queue (ours, not sendmail's); undefined: the profile's `queue` key. */
  queue: boolean | undefined;
  sendmail: SendmailArgs;
}

/** sendmail's argv to options; a bad one throws with sendmail's exit code (64). */
export function sendmailOptions(args: string[], globals: GlobalOptions): SendmailOptions {
  let queue: boolean | undefined;
  const rest = args.filter((a) => {
    if (a === '--no-queue') queue = false;
    else if (a === '--queue') queue = true;
    else return true;
    return false;
  });
  const help = args.includes('--help');
  let sendmail: SendmailArgs;
  try {
    sendmail = help ? parseSendmailArgs([]) : parseSendmailArgs(rest);
  } catch (e) {
    throw toSendmailError(e);
  }
  return { profile: globals.profile, help, queue, sendmail };
}

export async function runSendmail(o: SendmailOptions, ctx: Context): Promise<void> {
  const { prepareSendmail } = await import('../../mail/sendmail.js');
  let pending: { name: string; envelope: { from: string; to: string[] }; raw: string } | undefined;
  try {
    const sa = o.sendmail;
    if (sa.verbose) ctx.io.verbose = true;
    const input = await ctx.io.readStdin();
    // the profile from the config alone (no secrets yet), so that the message is prepared, and
    // can be queued, even when the sign-in or the keychain fails
    const { resolveProfileName } = await import('../../config/store.js');
    const { name, profile } = resolveProfileName(await ctx.config.load(), o.profile, ctx.env);
    if (!profile.user) await ctx.tokenSource(name); // throws the no-user configuration error
    const prepared = prepareSendmail(sa, input, {
      user: profile.user!,
      ...(profile.from ? { from: profile.from } : {}),
    });
    if (o.queue ?? profile.queue !== 'off') {
      pending = { name, envelope: prepared.envelope, raw: prepared.raw };
    }
    const { source } = await ctx.tokenSource(name);
    const { createSender } = await import('../../mail/transport.js');
    const client = await createSender(profile, source, {
      warn: (m) => ctx.io.warn(m),
      ...(ctx.io.verbose ? { debug: (m: string) => ctx.io.debug(m) } : {}),
    });
    try {
      const r = await client.sendRaw(prepared.raw, prepared.envelope);
      ctx.io.debug(`sent to ${r.accepted.join(', ')}: ${r.response}`);
    } finally {
      client.close();
    }
  } catch (e) {
    if (pending) {
      const { queueAfterFailure } = await import('./queue.js');
      if (
        await queueAfterFailure(
          ctx,
          { profile: pending.name, envelope: pending.envelope, raw: pending.raw },
          e,
        )
      )
        return; // kept: exit 0, as sendmail(8) does once a message is in its queue
    }
    throw toSendmailError(e);
  }
  // the server works for us now: deliver what waits
  const { flushAfterSend } = await import('./queue.js');
  await flushAfterSend(ctx);
}

export function registerSendmail(program: Command, ctx: Context, runF = runSendmail): void {
  program
    .command('sendmail')
    .description('sendmail-compatible: read a message on stdin and send it (for cron, mail, PHP mail())')
    .usage('[-t] [-i] [-f FROM] [-F NAME] [RECIPIENT...] < message')
    .argument('[args...]', 'sendmail options and recipients')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .addHelpText(
      'after',
      `
Options (sendmail's; others that sendmail accepts are ignored):
  -t              take the recipients from To:, Cc: and Bcc: (Bcc is removed from the message)
  -i, -oi         a line with a single dot does not end the message
  -f FROM         envelope sender (default: the profile's from, then its user)
  -F NAME         the sender's full name, for a From: that has none
  -v              verbose (the SMTP dialogue or the Graph answers on stderr, tokens redacted)
  --no-queue      exit 75 instead of queueing a message that cannot be sent now
  --queue         queue even when the profile says queue=off
  -p PROFILE      before "sendmail": the profile (default: OAUTHMAIL_PROFILE, then the default)

Exit codes (sysexits.h, as sendmail's):
  0   sent, or kept in the queue (one line on stderr says why and what will deliver it)
  64  bad usage (no recipient, an unknown flag)      65  bad input (an address)
  67  unknown recipient                              69  refused by the server
  75  temporary failure, with --no-queue             77  sign-in needed, with --no-queue
  78  configuration (no such profile, no user)

Examples:
  $ printf 'To: ops@example.com\nSubject: backup\n\ndone\n' | oauthmail sendmail -t -i
  $ oauthmail -p work sendmail -f alerts@example.com ops@example.com < message.eml`,
    )
    .action(async (args: string[], _flags: unknown, cmd: Command) => {
      const o = sendmailOptions(args, cmd.optsWithGlobals<GlobalOptions>());
      // sendmail has no --help; ours prints the options and exit codes above
      if (o.help) cmd.outputHelp();
      else await runF(o, ctx);
    });
}

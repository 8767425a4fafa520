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
import type { Context } from '../context.js';

export function registerSendmail(program: Command, ctx: Context): void {
  program
    .command('sendmail')
    .description('sendmail-compatible: read a message on stdin and send it (for cron, mail, PHP mail())')
    .usage('[-t] [-i] [-f FROM] [-F NAME] [RECIPIENT...] < message')
    .argument('[args...]', 'sendmail options and recipients')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .action(async (args: string[], _opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { profile?: string };
      const { parseSendmailArgs, prepareSendmail, toSendmailError } = await import('../../mail/sendmail.js');
      // our own switches, not sendmail's: --no-queue (fail instead of queueing), --queue
      let queueFlag: boolean | undefined;
      const rest = args.filter((a) => {
        if (a === '--no-queue') queueFlag = false;
        else if (a === '--queue') queueFlag = true;
        else return true;
        return false;
      });
      let pending: { name: string; envelope: { from: string; to: string[] }; raw: string } | undefined;
      try {
        const sa = parseSendmailArgs(rest);
        if (sa.verbose) ctx.io.verbose = true;
        const input = await ctx.io.readStdin();
        // the profile from the config alone (no secrets yet), so that the message is prepared, and
        // can be queued, even when the sign-in or the keychain fails
        const { resolveProfileName } = await import('../../config/store.js');
        const { name, profile } = resolveProfileName(await ctx.config.load(), g.profile, ctx.env);
        if (!profile.user) await ctx.tokenSource(name); // throws the no-user configuration error
        const prepared = prepareSendmail(sa, input, {
          user: profile.user!,
          ...(profile.from ? { from: profile.from } : {}),
        });
        if (queueFlag ?? profile.queue !== 'off') {
          pending = { name, envelope: prepared.envelope, raw: prepared.raw };
        }
        const { source } = await ctx.tokenSource(name);
        const { SmtpClient } = await import('../../mail/smtp.js');
        const client = await SmtpClient.create(profile, source, {
          warn: (m) => ctx.io.warn(m),
          ...(ctx.io.verbose ? { debug: (m: string) => ctx.io.debug(m) } : {}),
        });
        try {
          const r = await client.send({ mail: { raw: prepared.raw }, envelope: prepared.envelope, bcc: [] });
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
    });
}

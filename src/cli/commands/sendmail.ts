/**
 * `oauthmail sendmail [-t] [-i] [-f FROM] [-F NAME] [RECIPIENT...] < message`: a drop-in for
 * /usr/sbin/sendmail (cron MAILTO, mail(1), PHP mail()). It parses its own argv (sendmail's
 * getopt-style flags clash with commander's), exits with sendmail's codes (sysexits.h: 75 =
 * temporary, the caller may queue and retry) and prints nothing on success.
 * The root's -p PROFILE and -v are honoured; otherwise OAUTHMAIL_PROFILE, then the default profile.
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
      try {
        const sa = parseSendmailArgs(args);
        if (sa.verbose) ctx.io.verbose = true;
        const input = await ctx.io.readStdin();
        const { profile, source } = await ctx.tokenSource(g.profile);
        const prepared = prepareSendmail(sa, input, {
          user: source.user,
          ...(profile.from ? { from: profile.from } : {}),
        });
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
        throw toSendmailError(e);
      }
    });
}

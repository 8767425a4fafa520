/**
 * `oauthmail token [PROFILE]`: print a valid access token and nothing else (msmtp
 * passwordeval, mutt, scripts). Silent only: the cached token, else a refresh; never a prompt.
 */
import type { Command } from 'commander';
import { ConfigError, UsageError } from '../../errors/index.js';
import type { Context } from '../context.js';

export function registerToken(program: Command, ctx: Context): void {
  program
    .command('token [profile]')
    .description('print a valid access token (refreshing it silently if needed); never prompts')
    .option('--min-validity <seconds>', 'refresh if the cached token expires sooner than this', '300')
    .option('--force-refresh', 'get a new token from the identity provider even if the cached one is valid')
    .option('--sasl', 'print the base64 SASL XOAUTH2 initial response for the mailbox user instead')
    .addHelpText(
      'after',
      `
Exit code 4 (with the command to run on stderr) when the profile needs a sign-in.
Examples:
  $ oauthmail token work
  $ oauthmail token work --json      # token, expiry, scopes, account
  passwordeval "oauthmail token work"   (msmtp)`,
    )
    .action(
      async (
        nameArg: string | undefined,
        opts: { minValidity: string; forceRefresh?: boolean; sasl?: boolean },
      ) => {
        const min = Number(opts.minValidity);
        if (!Number.isInteger(min) || min < 0 || min > 86_400) {
          throw new UsageError('--min-validity must be a whole number of seconds from 0 to 86400', {
            code: 'bad_usage',
          });
        }
        const { resolveProvider } = await import('../../auth/index.js');
        const { name, profile, provider } = await resolveProvider(
          ctx,
          nameArg ?? (program.opts().profile as string | undefined),
        );
        const t = await provider.getToken({ minValiditySeconds: min, forceRefresh: !!opts.forceRefresh });
        let sasl: string | undefined;
        if (opts.sasl) {
          if (!profile.user) {
            throw new ConfigError(`profile ${name} has no mailbox user for the SASL string`, {
              code: 'no_user',
              hint: `set it: oauthmail profile edit ${name} --set user=you@example.com`,
            });
          }
          // RFC-style XOAUTH2 initial client response (Google/Microsoft SASL XOAUTH2 spec):
          // base64("user=" user ^A "auth=Bearer " token ^A ^A)
          sasl = Buffer.from(`user=${profile.user}\x01auth=Bearer ${t.accessToken}\x01\x01`, 'utf8').toString(
            'base64',
          );
          const { registerSecret } = await import('../../util/redact.js');
          registerSecret(sasl);
        }
        if (ctx.io.json) {
          ctx.io.outJson({
            profile: name,
            token: t.accessToken,
            ...(sasl ? { sasl } : {}),
            tokenType: 'Bearer',
            expiresOn: t.expiresOn?.toISOString() ?? null,
            expiresIn: t.expiresOn
              ? Math.max(0, Math.floor((t.expiresOn.getTime() - Date.now()) / 1000))
              : null,
            scopes: t.scopes,
            account: t.account,
            user: profile.user ?? null,
            fromCache: t.fromCache,
          });
          return;
        }
        ctx.io.out(sasl ?? t.accessToken);
      },
    );
}

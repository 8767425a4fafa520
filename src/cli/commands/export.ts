/**
 * `oauthmail export [PROFILE]`: write {access_token, refresh_token, expires_in} to stdout for
 * another tool. The refresh token is a long-lived credential, so: a confirmation on a terminal,
 * and `--yes` required otherwise.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context } from '../context.js';

export function registerExport(program: Command, ctx: Context): void {
  program
    .command('export [profile]')
    .description(
      'print the tokens as JSON {access_token, refresh_token, expires_in} (asks first; --yes when not a terminal)',
    )
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (nameArg: string | undefined, opts: { yes?: boolean }) => {
      const { resolveProvider } = await import('../../auth/index.js');
      const { name, provider } = await resolveProvider(
        ctx,
        nameArg ?? (program.opts().profile as string | undefined),
      );
      if (!opts.yes) {
        if (!ctx.io.interactive) {
          throw new UsageError(`exporting the tokens of ${name} needs confirmation`, {
            code: 'confirmation_needed',
            hint: `run: oauthmail export ${name} --yes > tokens.json (the file then holds a refresh token: keep it private)`,
          });
        }
        if (
          !(await ctx.io.confirm(
            `Print the refresh token of ${name}? Anyone with it can read and send your mail`,
          ))
        ) {
          ctx.io.err('Nothing exported.');
          return;
        }
      }
      const t = await provider.exportTokens();
      ctx.io.outJson(t);
    });
}

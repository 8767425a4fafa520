/**
 * `oauthmail export [PROFILE]`: write {access_token, refresh_token, expires_in} to stdout for
 * another tool. The refresh token is a long-lived credential, so: a confirmation on a terminal,
 * and `--yes` required otherwise.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';

export interface ExportOptions {
  profile: string | undefined;
  /** --yes: no confirmation asked. */
  yes: boolean;
}

export function exportOptions(
  args: { profile?: string | undefined },
  flags: { yes?: boolean },
  globals: GlobalOptions,
): ExportOptions {
  return { profile: args.profile ?? globals.profile, yes: !!flags.yes };
}

export async function runExport(o: ExportOptions, ctx: Context): Promise<void> {
  const { resolveProvider } = await import('../../auth/index.js');
  const { name, provider } = await resolveProvider(ctx, o.profile);
  if (!o.yes) {
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
}

export function registerExport(program: Command, ctx: Context, runF = runExport): void {
  program
    .command('export [profile]')
    .description(
      'print the tokens as JSON {access_token, refresh_token, expires_in} (asks first; --yes when not a terminal)',
    )
    .option('-y, --yes', 'do not ask for confirmation')
    .action((profile: string | undefined, flags: { yes?: boolean }, cmd: Command) =>
      runF(exportOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

/**
 * `oauthmail guide [PROFILE] [--provider microsoft|google]`: step-by-step app registration for a
 * profile (Azure portal or Google Cloud console) with its values filled in. Without a profile
 * (none exists yet), --provider gives the generic steps.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context } from '../context.js';
import type { GuideInput } from '../../diagnose/guide.js';

export function registerGuide(program: Command, ctx: Context): void {
  program
    .command('guide [profile]')
    .description(
      "step-by-step app registration (Azure portal, Google Cloud console) with the profile's values",
    )
    .option('--provider <provider>', 'microsoft, google or custom (without a profile: generic steps)')
    .action(async (nameArg: string | undefined, opts: { provider?: string }) => {
      if (
        opts.provider !== undefined &&
        opts.provider !== 'microsoft' &&
        opts.provider !== 'google' &&
        opts.provider !== 'custom'
      ) {
        throw new UsageError(
          `--provider must be microsoft, google or custom (got ${JSON.stringify(opts.provider)})`,
          {
            code: 'bad_usage',
          },
        );
      }
      const { renderGuide } = await import('../../diagnose/guide.js');
      const explicit = nameArg ?? (program.opts().profile as string | undefined);
      let input: GuideInput;
      if (opts.provider && !explicit) {
        input = { name: 'NAME', profile: { provider: opts.provider } };
      } else {
        const { resolveProfileName } = await import('../../config/store.js');
        const config = await ctx.config.load();
        const { name, profile } = resolveProfileName(config, explicit, ctx.env);
        if (opts.provider && opts.provider !== profile.provider) {
          throw new UsageError(`profile ${name} is a ${profile.provider} profile, not ${opts.provider}`, {
            code: 'bad_usage',
          });
        }
        input = { name, profile };
      }
      const text = renderGuide(input);
      if (ctx.io.json) ctx.io.outJson({ profile: input.name, provider: input.profile.provider, text });
      else ctx.io.out(text);
    });
}

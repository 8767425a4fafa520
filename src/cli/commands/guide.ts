/**
 * `oauthmail guide [PROFILE] [--provider microsoft|google]`: step-by-step app registration for a
 * profile (Azure portal or Google Cloud console) with its values filled in. Without a profile
 * (none exists yet), --provider gives the generic steps.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { GuideInput } from '../../diagnose/guide.js';

export interface GuideOptions {
  profile: string | undefined;
  provider: 'microsoft' | 'google' | 'custom' | undefined;
  json: boolean;
}

export function guideOptions(
  args: { profile?: string | undefined },
  flags: { provider?: string },
  globals: GlobalOptions,
): GuideOptions {
  const p = flags.provider;
  if (p !== undefined && p !== 'microsoft' && p !== 'google' && p !== 'custom') {
    throw new UsageError(`--provider must be microsoft, google or custom (got ${JSON.stringify(p)})`, {
      code: 'bad_usage',
    });
  }
  return { profile: args.profile ?? globals.profile, provider: p, json: !!globals.json };
}

export async function runGuide(o: GuideOptions, ctx: Context): Promise<void> {
  const { renderGuide } = await import('../../diagnose/guide.js');
  let input: GuideInput;
  if (o.provider && !o.profile) {
    input = { name: 'NAME', profile: { provider: o.provider } };
  } else {
    const { resolveProfileName } = await import('../../config/store.js');
    const config = await ctx.config.load();
    const { name, profile } = resolveProfileName(config, o.profile, ctx.env);
    if (o.provider && o.provider !== profile.provider) {
      throw new UsageError(`profile ${name} is a ${profile.provider} profile, not ${o.provider}`, {
        code: 'bad_usage',
      });
    }
    input = { name, profile };
  }
  const text = renderGuide(input);
  if (o.json) ctx.io.outJson({ profile: input.name, provider: input.profile.provider, text });
  else ctx.io.out(text);
}

export function registerGuide(program: Command, ctx: Context, runF = runGuide): void {
  program
    .command('guide [profile]')
    .description(
      "step-by-step app registration (Azure portal, Google Cloud console) with the profile's values",
    )
    .option('--provider <provider>', 'microsoft, google or custom (without a profile: generic steps)')
    .action((profile: string | undefined, flags: { provider?: string }, cmd: Command) =>
      runF(guideOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

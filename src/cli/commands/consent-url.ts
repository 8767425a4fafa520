/**
 * `oauthmail consent-url [PROFILE] [--admin]`: the URL that grants the profile's permissions, for
 * the user (prompt=consent) or for a tenant administrator (/adminconsent). The URL on stdout, who
 * should open it on stderr.
 */
import type { Command } from 'commander';
import type { Context, GlobalOptions } from '../context.js';

export interface ConsentUrlOptions {
  profile: string | undefined;
  admin: boolean;
  json: boolean;
}

export function consentUrlOptions(
  args: { profile?: string | undefined },
  flags: { admin?: boolean },
  globals: GlobalOptions,
): ConsentUrlOptions {
  return { profile: args.profile ?? globals.profile, admin: !!flags.admin, json: !!globals.json };
}

export async function runConsentUrl(o: ConsentUrlOptions, ctx: Context): Promise<void> {
  const { resolveProfileName } = await import('../../config/store.js');
  const { buildConsentUrl, discoverAuthorizationEndpoint } = await import('../../diagnose/consent-url.js');
  const config = await ctx.config.load();
  const { name, profile } = resolveProfileName(config, o.profile, ctx.env);
  const discovered =
    profile.provider === 'custom' && !o.admin && !profile.authorizationEndpoint && profile.issuer
      ? { authorizationEndpoint: await discoverAuthorizationEndpoint(profile.issuer) }
      : {};
  const c = buildConsentUrl(name, profile, o.admin, discovered);
  if (o.json) {
    ctx.io.outJson({ profile: name, ...c });
    return;
  }
  ctx.io.out(c.url);
  ctx.io.err(`${c.kind === 'admin' ? 'admin consent' : 'user consent'}: ${c.who}`);
  ctx.io.err(c.landing);
  if (c.kind === 'admin') ctx.io.err(`then: oauthmail login ${name}`);
}

export function registerConsentUrl(program: Command, ctx: Context, runF = runConsentUrl): void {
  program
    .command('consent-url [profile]')
    .description(
      "print the URL that grants the profile's permissions (--admin: for the tenant administrator)",
    )
    .option('--admin', 'the admin-consent URL for the whole tenant (Microsoft)')
    .action((profile: string | undefined, flags: { admin?: boolean }, cmd: Command) =>
      runF(consentUrlOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

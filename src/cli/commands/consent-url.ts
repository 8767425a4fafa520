/**
 * `oauthmail consent-url [PROFILE] [--admin]`: the URL that grants the profile's permissions, for
 * the user (prompt=consent) or for a tenant administrator (/adminconsent). The URL on stdout, who
 * should open it on stderr.
 */
import type { Command } from 'commander';
import type { Context } from '../context.js';

export function registerConsentUrl(program: Command, ctx: Context): void {
  program
    .command('consent-url [profile]')
    .description(
      "print the URL that grants the profile's permissions (--admin: for the tenant administrator)",
    )
    .option('--admin', 'the admin-consent URL for the whole tenant (Microsoft)')
    .action(async (nameArg: string | undefined, opts: { admin?: boolean }) => {
      const { resolveProfileName } = await import('../../config/store.js');
      const { buildConsentUrl, discoverAuthorizationEndpoint } =
        await import('../../diagnose/consent-url.js');
      const config = await ctx.config.load();
      const { name, profile } = resolveProfileName(
        config,
        nameArg ?? (program.opts().profile as string | undefined),
        ctx.env,
      );
      const discovered =
        profile.provider === 'custom' && !opts.admin && !profile.authorizationEndpoint && profile.issuer
          ? { authorizationEndpoint: await discoverAuthorizationEndpoint(profile.issuer) }
          : {};
      const c = buildConsentUrl(name, profile, !!opts.admin, discovered);
      if (ctx.io.json) {
        ctx.io.outJson({ profile: name, ...c });
        return;
      }
      ctx.io.out(c.url);
      ctx.io.err(`${c.kind === 'admin' ? 'admin consent' : 'user consent'}: ${c.who}`);
      ctx.io.err(c.landing);
      if (c.kind === 'admin') ctx.io.err(`then: oauthmail login ${name}`);
    });
}

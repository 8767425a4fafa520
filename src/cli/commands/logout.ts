/**
 * `oauthmail logout [PROFILE]`: revoke the refresh token at the provider when it has a revocation
 * endpoint (Google, custom providers that publish one; RFC 7009), then remove the stored tokens,
 * and say where else the grant can be revoked. When the provider cannot be told, the tokens are
 * kept (a live refresh token nobody can revoke any more is worse) unless --no-revoke says so.
 */
import type { Command } from 'commander';
import type { Context, GlobalOptions } from '../context.js';

export interface LogoutOptions {
  profile: string | undefined;
  /** Revoke the refresh token at the provider first (--no-revoke: false). */
  revoke: boolean;
  json: boolean;
}

export function logoutOptions(
  args: { profile?: string | undefined },
  flags: { revoke?: boolean },
  globals: GlobalOptions,
): LogoutOptions {
  return { profile: args.profile ?? globals.profile, revoke: flags.revoke !== false, json: !!globals.json };
}

export async function runLogout(o: LogoutOptions, ctx: Context): Promise<void> {
  const { resolveProvider } = await import('../../auth/index.js');
  const { name, provider } = await resolveProvider(ctx, o.profile);
  let revoked: 'revoked' | 'nothing' | 'skipped' = 'skipped';
  if (o.revoke && provider.revokeAtProvider) {
    try {
      revoked = await provider.revokeAtProvider();
    } catch (e) {
      const err = e as { hint?: string };
      err.hint = `the tokens are still stored; try again later, or remove them here only: oauthmail logout ${name} --no-revoke`;
      throw e;
    }
  }
  const removed = await provider.logout();
  const { forgetHealth } = await import('../../auth/health.js');
  await forgetHealth({ env: ctx.env, lock: ctx.lock }, name);
  const revoke = provider.revokeHints();
  if (o.json) ctx.io.outJson({ profile: name, removed, revokedAtProvider: revoked === 'revoked', revoke });
  ctx.io.err(removed ? `Removed the stored tokens of ${name}.` : `No tokens were stored for ${name}.`);
  if (revoked === 'revoked') {
    ctx.io.err(
      'The refresh token was revoked at the identity provider. To remove the app’s access entirely:',
    );
  } else {
    ctx.io.err(
      'Refresh tokens stay valid at the identity provider until they expire or are revoked. To revoke the grant:',
    );
  }
  for (const r of revoke) ctx.io.err(`  ${r}`);
}

export function registerLogout(program: Command, ctx: Context, runF = runLogout): void {
  program
    .command('logout [profile]')
    .description(
      'revoke the refresh token at the provider where it allows, and remove the stored tokens (the app registration and secrets stay)',
    )
    .option('--no-revoke', 'only remove the tokens stored here; do not contact the provider')
    .action((profile: string | undefined, flags: { revoke?: boolean }, cmd: Command) =>
      runF(logoutOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

/** `oauthmail logout [PROFILE]`: remove the stored tokens and say where to revoke the grant. */
import type { Command } from 'commander';
import type { Context } from '../context.js';

export function registerLogout(program: Command, ctx: Context): void {
  program
    .command('logout [profile]')
    .description('remove the stored tokens of a profile (the app registration and secrets stay)')
    .action(async (nameArg: string | undefined) => {
      const { resolveProvider } = await import('../../auth/index.js');
      const { name, provider } = await resolveProvider(
        ctx,
        nameArg ?? (program.opts().profile as string | undefined),
      );
      const removed = await provider.logout();
      const revoke = provider.revokeHints();
      if (ctx.io.json) ctx.io.outJson({ profile: name, removed, revoke });
      ctx.io.err(removed ? `Removed the stored tokens of ${name}.` : `No tokens were stored for ${name}.`);
      ctx.io.err(
        'Refresh tokens stay valid at the identity provider until they expire or are revoked. To revoke the grant:',
      );
      for (const r of revoke) ctx.io.err(`  ${r}`);
    });
}

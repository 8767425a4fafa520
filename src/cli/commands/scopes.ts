/**
 * `oauthmail scopes [--provider microsoft|google]`: the scopes oauthmail asks for, why, what each
 * allows, and who can grant it. Text on stdout (it is the data asked for), or --json.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context } from '../context.js';

export function registerScopes(program: Command, ctx: Context): void {
  program
    .command('scopes')
    .description('list the scopes oauthmail uses: why each is needed, what it allows, who can grant it')
    .option('--provider <provider>', 'only this provider: microsoft or google')
    .action(async (opts: { provider?: string }) => {
      if (opts.provider !== undefined && opts.provider !== 'microsoft' && opts.provider !== 'google') {
        throw new UsageError(
          `--provider must be microsoft or google (got ${JSON.stringify(opts.provider)})`,
          {
            code: 'bad_usage',
          },
        );
      }
      const { scopesFor, renderScopes } = await import('../../diagnose/scopes.js');
      const list = scopesFor(opts.provider);
      if (ctx.io.json) ctx.io.outJson(list);
      else ctx.io.out(renderScopes(list));
    });
}

/**
 * `oauthmail scopes [--provider microsoft|google]`: the scopes oauthmail asks for, why, what each
 * allows, and who can grant it. Text on stdout (it is the data asked for), or --json.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';

export interface ScopesOptions {
  provider: 'microsoft' | 'google' | undefined;
  json: boolean;
}

export function scopesOptions(flags: { provider?: string }, globals: GlobalOptions): ScopesOptions {
  const p = flags.provider;
  if (p !== undefined && p !== 'microsoft' && p !== 'google') {
    throw new UsageError(`--provider must be microsoft or google (got ${JSON.stringify(p)})`, {
      code: 'bad_usage',
    });
  }
  return { provider: p, json: !!globals.json };
}

export async function runScopes(o: ScopesOptions, ctx: Context): Promise<void> {
  const { scopesFor, renderScopes } = await import('../../diagnose/scopes.js');
  const list = scopesFor(o.provider);
  if (o.json) ctx.io.outJson(list);
  else ctx.io.out(renderScopes(list));
}

export function registerScopes(program: Command, ctx: Context, runF = runScopes): void {
  program
    .command('scopes')
    .description('list the scopes oauthmail uses: why each is needed, what it allows, who can grant it')
    .option('--provider <provider>', 'only this provider: microsoft or google')
    .action((flags: { provider?: string }, cmd: Command) =>
      runF(scopesOptions(flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

/** `oauthmail profile show [NAME]`: a profile's keys (rows from the field table) and where its secrets are. */
import type { Command } from 'commander';
import { showRows } from '../../../config/derive.js';
import type { Profile } from '../../../config/schema.js';
import type { Context } from '../../context.js';

export interface ShowOptions {
  /** undefined: OAUTHMAIL_PROFILE, then the default profile. */
  name?: string;
}

export function showOptions(
  [name]: Array<string | undefined>,
  globals: { profile?: unknown } = {},
): ShowOptions {
  const n = name ?? (typeof globals.profile === 'string' ? globals.profile : undefined);
  return n === undefined ? {} : { name: n };
}

export function render(name: string, p: Profile, isDefault: boolean): string {
  const lines = [`${name}${isDefault ? ' (default)' : ''}`];
  for (const [k, v] of showRows(p)) lines.push(`  ${k.padEnd(22)}${v}`);
  return lines.join('\n');
}

export async function runShow(o: ShowOptions, ctx: Context): Promise<void> {
  const { resolveProfileName } = await import('../../../config/store.js');
  const config = await ctx.config.load();
  const { name, profile: p } = resolveProfileName(config, o.name, ctx.env);
  const store = await ctx.secretsFor(p);
  const secrets: string[] = [];
  for (const kind of ['client-secret', 'certificate', 'service-account', 'token-cache'] as const) {
    if ((await store.get(name, kind)) !== undefined) secrets.push(kind);
  }
  const isDefault = config.defaultProfile === name;
  if (ctx.io.json) {
    ctx.io.outJson({
      name,
      default: isDefault,
      profile: p,
      secrets: { location: store.location, stored: secrets },
    });
    return;
  }
  ctx.io.out(render(name, p, isDefault));
  ctx.io.out(`  ${'secrets'.padEnd(22)}${secrets.length ? secrets.join(', ') : 'none'} in ${store.location}`);
}

export function registerShow(profile: Command, program: Command, ctx: Context): void {
  profile
    .command('show [name]')
    .description('show a profile (secrets are never shown; only where they are)')
    .action((name: string | undefined) => runShow(showOptions([name], program.opts()), ctx));
}

/** `oauthmail profile list`: the profiles (* marks the default); broken ones are named after them, exit 3. */
import type { Command } from 'commander';
import type { Context } from '../../context.js';

export type ListOptions = Record<string, never>;

export function listOptions(): ListOptions {
  return {};
}

export async function runList(_o: ListOptions, ctx: Context): Promise<void> {
  const config = await ctx.config.load();
  const names = Object.keys(config.profiles).sort();
  // the valid profiles are listed; a broken one is named after them, with its fix (exit 3)
  const broken = Object.entries(config.broken ?? {});
  const { brokenProfileError } = await import('../../../config/store.js');
  const failBroken = () => {
    for (const [n, b] of broken.slice(1))
      ctx.io.warn(`${b.message} (fix: oauthmail profile edit ${n} --set KEY=VALUE)`);
    if (broken.length) throw brokenProfileError(broken[0]![0], broken[0]![1]);
  };
  if (ctx.io.json) {
    ctx.io.outJson(
      names.map((n) => {
        const p = config.profiles[n]!;
        return {
          name: n,
          default: config.defaultProfile === n,
          provider: p.provider,
          flow: p.flow,
          user: p.user ?? null,
        };
      }),
    );
    failBroken();
    return;
  }
  if (names.length === 0) {
    if (!broken.length) ctx.io.err('No profiles yet. Create one: oauthmail profile add NAME --client-id ID');
    failBroken();
    return;
  }
  const w = Math.max(4, ...names.map((n) => n.length)) + 2;
  ctx.io.out(`  ${'NAME'.padEnd(w)}${'PROVIDER'.padEnd(11)}${'FLOW'.padEnd(20)}USER`);
  for (const n of names) {
    const p = config.profiles[n]!;
    ctx.io.out(
      `${config.defaultProfile === n ? '*' : ' '} ${n.padEnd(w)}${p.provider.padEnd(11)}${p.flow.padEnd(20)}${p.user ?? '-'}`,
    );
  }
  failBroken();
}

export function registerList(profile: Command, ctx: Context): void {
  profile
    .command('list')
    .alias('ls')
    .description('list profiles (* marks the default)')
    .action(() => runList(listOptions(), ctx));
}

/** `oauthmail profile rename|remove|use`: whole-profile moves (secrets and token health go along). */
import type { Command } from 'commander';
import { UsageError } from '../../../errors/index.js';
import type { Context } from '../../context.js';
import { type Flags, needName } from './flags.js';

export interface RenameOptions {
  from: string;
  to: string;
}

export function renameOptions([from, to]: string[]): RenameOptions {
  return { from: needName(from, 'rename'), to: needName(to, 'rename') };
}

export async function runRename(o: RenameOptions, ctx: Context): Promise<void> {
  await ctx.profiles.rename(o.from, o.to);
  const { moveHealth } = await import('../../../auth/health.js');
  await moveHealth({ env: ctx.env, lock: ctx.lock }, o.from, o.to);
  ctx.io.err(`Renamed profile ${o.from} to ${o.to}.`);
}

export interface RemoveOptions {
  name: string;
  /** No confirmation asked. */
  yes: boolean;
}

export function removeOptions([name]: string[], flags: Flags): RemoveOptions {
  return { name: needName(name, 'remove'), yes: !!flags.yes };
}

export async function runRemove(o: RemoveOptions, ctx: Context): Promise<void> {
  const { name } = o;
  const config = await ctx.config.load();
  ctx.profiles.require(config, name);
  if (!o.yes) {
    if (!ctx.io.interactive) {
      throw new UsageError(`removing profile ${name} needs confirmation`, {
        code: 'confirmation_needed',
        hint: `run: oauthmail profile remove ${name} --yes`,
      });
    }
    if (!(await ctx.io.confirm(`Remove profile ${name} and its stored tokens and secrets?`))) {
      ctx.io.err('Nothing removed.');
      return;
    }
  }
  const { deleted, notRemoved } = await ctx.profiles.remove(name);
  const { forgetHealth } = await import('../../../auth/health.js');
  await forgetHealth({ env: ctx.env, lock: ctx.lock }, name);
  if (ctx.io.json)
    ctx.io.outJson({
      name,
      removed: true,
      secretsDeleted: deleted,
      ...(notRemoved ? { keychainNotCleaned: notRemoved } : {}),
    });
  ctx.io.err(`Removed profile ${name}${deleted.length ? ` and its ${deleted.join(', ')}` : ''}.`);
  if (notRemoved) {
    ctx.io.warn(
      `its keychain items (service oauthmail, accounts ${name}/…: tokens, client secret) were not removed: ${notRemoved} ` +
        'Remove them from a session that reaches the keychain (e.g. secret-tool search --all service oauthmail).',
    );
  }
}

export interface UseOptions {
  name: string;
}

export function useOptions([name]: string[]): UseOptions {
  return { name: needName(name, 'use') };
}

export async function runUse(o: UseOptions, ctx: Context): Promise<void> {
  await ctx.profiles.use(o.name);
  ctx.io.err(`Default profile is now ${o.name}.`);
}

export function registerManage(profile: Command, ctx: Context): void {
  profile
    .command('rename <old> <new>')
    .description('rename a profile (its secrets move with it)')
    .action((from: string, to: string) => runRename(renameOptions([from, to]), ctx));
  profile
    .command('remove <name>')
    .alias('rm')
    .description('remove a profile and its secrets (tokens, client secret)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action((name: string, flags: Flags) => runRemove(removeOptions([name], flags), ctx));
  profile
    .command('use <name>')
    .description('make a profile the default (-p and OAUTHMAIL_PROFILE still override it)')
    .action((name: string) => runUse(useOptions([name]), ctx));
}

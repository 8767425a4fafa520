/**
 * `oauthmail profile add|list|show|edit|rename|remove|use|secret|keys`. Each subcommand is an
 * options type, a pure function from flags to options, a run(options, ctx) and its commander
 * registration; the key flags and `profile keys` come from the field table
 * (src/config/fields.ts), the profile work from src/config/profiles.ts.
 */
import type { Command } from 'commander';
import type { Context } from '../../context.js';
import { registerAdd } from './add.js';
import { registerEdit } from './edit.js';
import { registerKeys } from './keys.js';
import { registerList } from './list.js';
import { registerManage } from './manage.js';
import { registerSecret } from './secret.js';
import { registerShow } from './show.js';

export function registerProfile(program: Command, ctx: Context): void {
  const profile = program
    .command('profile')
    .description('create and manage profiles (provider, app registration, mailbox, servers)');
  registerAdd(profile, ctx);
  registerList(profile, ctx);
  registerShow(profile, program, ctx);
  registerEdit(profile, ctx);
  registerManage(profile, ctx);
  registerSecret(profile, ctx);
  registerKeys(profile, ctx);
}

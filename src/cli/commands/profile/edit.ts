/** `oauthmail profile edit NAME`: change keys (every key flag of `profile add`, --set, --unset). */
import type { Command } from 'commander';
import type { Setting } from '../../../config/profiles.js';
import type { Context } from '../../context.js';
import { addKeyFlags, type Flags, needName, settingsFrom } from './flags.js';

export interface EditOptions {
  name: string;
  settings: Setting[];
}

export function editOptions([name]: string[], flags: Flags): EditOptions {
  return { name: needName(name, 'edit'), settings: settingsFrom(flags) };
}

export async function runEdit(o: EditOptions, ctx: Context): Promise<void> {
  const p = await ctx.profiles.edit(o.name, o.settings);
  if (ctx.io.json) ctx.io.outJson({ name: o.name, profile: p });
  ctx.io.err(`Updated profile ${o.name}.`);
}

export function registerEdit(profile: Command, ctx: Context): void {
  // every flag of `profile add` that names a key, so that a hint can say `--smtp HOST:PORT` to either
  const edit = profile.command('edit <name>').description('change profile keys');
  addKeyFlags(edit, { unset: true })
    .addHelpText(
      'after',
      '\nExamples:\n  $ oauthmail profile edit work --smtp smtp.office365.com:587 --smtp-security starttls\n  $ oauthmail profile edit work --set capabilities=send --unset redirectPort',
    )
    .action((name: string, flags: Flags) => runEdit(editOptions([name], flags), ctx));
}

/**
 * The `profile add`/`edit` flags that set keys, all from the field table (src/config/fields.ts):
 * `--client-id ID` is `--set clientId=ID`. Settings apply in this order: the key flags (table
 * order), then --set, then the repeatable entry flags (--auth-param), then --unset.
 */
import type { Command } from 'commander';
import { FLAGS } from '../../../config/derive.js';
import type { Setting } from '../../../config/profiles.js';
import { UsageError } from '../../../errors/index.js';

export type Flags = Record<string, unknown>;

export const collect = (v: string, prev: string[] = []) => [...prev, v];

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'string') : []);

/** The key flags of the table, then --set (and --unset on edit), then the entry flags. */
export function addKeyFlags(cmd: Command, opts: { unset: boolean }): Command {
  for (const f of FLAGS) if (!f.repeat) cmd.option(`--${f.name} <value>`, f.help);
  cmd.option(
    '--set <key=value>',
    opts.unset ? 'set a key (repeatable)' : 'set any profile key (repeatable; see `oauthmail profile keys`)',
    collect,
  );
  for (const f of FLAGS) if (f.repeat) cmd.option(`--${f.name} <name=value>`, f.help, collect);
  if (opts.unset)
    cmd.option(
      '--unset <key>',
      'remove an optional key (repeatable; authParams.NAME for one parameter)',
      collect,
    );
  return cmd;
}

function split(a: string, flag: string, what: string, hint: string): [string, string] {
  const i = a.indexOf('=');
  if (i <= 0)
    throw new UsageError(`${flag} takes ${what} (got ${JSON.stringify(a)})`, { code: 'bad_usage', hint });
  return [a.slice(0, i).trim(), a.slice(i + 1)];
}

/** Commander's parsed flags -> settings for src/config/profiles.ts. Pure; throws UsageError. */
export function settingsFrom(flags: Flags): Setting[] {
  const out: Setting[] = [];
  for (const f of FLAGS) {
    const v = flags[camel(f.name)];
    if (!f.repeat && typeof v === 'string') out.push([f.key, v]);
  }
  for (const a of strings(flags.set))
    out.push(
      split(a, '--set', 'KEY=VALUE', 'example: --set smtp.port=587; list keys with oauthmail profile keys'),
    );
  for (const f of FLAGS) {
    if (!f.repeat) continue;
    for (const a of strings(flags[camel(f.name)])) {
      const [name, value] = split(a, `--${f.name}`, 'NAME=VALUE', `example: --${f.name} ${f.repeat.example}`);
      out.push([`${f.key}.${name}`, value]);
    }
  }
  for (const k of strings(flags.unset)) out.push([k, undefined]);
  return out;
}

/** A NAME argument (commander requires it; the options functions are also called directly). */
export function needName(name: string | undefined, sub: string): string {
  if (!name) throw new UsageError(`profile ${sub} needs a profile NAME`, { code: 'bad_usage' });
  return name;
}

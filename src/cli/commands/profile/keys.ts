/** `oauthmail profile keys`: the keys `--set` accepts, straight from the field table. */
import type { Command } from 'commander';
import { KEYS } from '../../../config/derive.js';
import { PROVIDERS, type Provider } from '../../../config/values.js';
import { UsageError } from '../../../errors/index.js';
import type { Context } from '../../context.js';
import type { Flags } from './flags.js';

export interface KeysOptions {
  /** Only the keys that mean something for this provider. */
  provider?: Provider;
}

export function keysOptions(_args: string[], flags: Flags): KeysOptions {
  const p = flags.provider;
  if (p === undefined) return {};
  if (typeof p !== 'string' || !(PROVIDERS as readonly string[]).includes(p)) {
    throw new UsageError(`--provider must be one of: ${PROVIDERS.join(', ')} (got ${JSON.stringify(p)})`, {
      code: 'bad_usage',
    });
  }
  return { provider: p as Provider };
}

export function runKeys(o: KeysOptions, ctx: Context): Promise<void> {
  const keys = KEYS.filter((k) => !o.provider || k.providers.includes(o.provider));
  if (ctx.io.json) {
    ctx.io.outJson(keys.map((k) => ({ key: k.key, help: k.help, kind: k.kind, providers: k.providers })));
  } else {
    for (const k of keys) ctx.io.out(`${k.key.padEnd(24)}${k.help}`);
  }
  return Promise.resolve();
}

export function registerKeys(profile: Command, ctx: Context): void {
  profile
    .command('keys')
    .description('list the keys `profile add --set` and `profile edit --set` accept')
    .option('--provider <name>', 'only the keys for this provider (microsoft, google or custom)')
    .action((flags: Flags) => runKeys(keysOptions([], flags), ctx));
}

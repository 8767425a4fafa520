/** `oauthmail profile secret NAME`: set or replace a client secret, certificate or service-account key. */
import type { Command } from 'commander';
import { UsageError } from '../../../errors/index.js';
import type { Context } from '../../context.js';
import { type Flags, needName } from './flags.js';
import { readClientSecret, readSecretFile, storeSecret } from './secrets.js';

export interface SecretOptions {
  name: string;
  /** Where the secret comes from: a file, or (client secret) stdin / OAUTHMAIL_CLIENT_SECRET / a prompt. */
  source:
    | { kind: 'client-secret'; stdin: boolean }
    | { kind: 'certificate'; file: string }
    | { kind: 'service-account'; file: string };
  /** clientSecretExpires to record (YYYY-MM-DD). */
  expires?: string;
}

export function secretOptions([name]: string[], flags: Flags): SecretOptions {
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const certificate = str(flags.certificate);
  const serviceAccountKey = str(flags.serviceAccountKey);
  const o: SecretOptions = {
    name: needName(name, 'secret'),
    source: certificate
      ? { kind: 'certificate', file: certificate }
      : serviceAccountKey
        ? { kind: 'service-account', file: serviceAccountKey }
        : { kind: 'client-secret', stdin: !!flags.stdin },
  };
  const expires = str(flags.expires);
  if (expires) o.expires = expires;
  return o;
}

export async function runSecret(o: SecretOptions, ctx: Context): Promise<void> {
  const { name, source } = o;
  const config = await ctx.config.load();
  const p = ctx.profiles.require(config, name);
  const value =
    source.kind === 'client-secret'
      ? await readClientSecret(ctx, source.stdin)
      : await readSecretFile(source.file, source.kind);
  if (value === undefined) {
    throw new UsageError('no client secret given', {
      code: 'missing_secret',
      hint: `pipe it in: printf %s "$SECRET" | oauthmail profile secret ${name} --stdin (or set OAUTHMAIL_CLIENT_SECRET)`,
    });
  }
  if (o.expires) await ctx.profiles.edit(name, [['clientSecretExpires', o.expires]]);
  const store = await storeSecret(ctx, p, name, source.kind, value);
  if (ctx.io.json) ctx.io.outJson({ name, stored: source.kind, location: store.location });
  ctx.io.err(`Stored the ${source.kind.replace('-', ' ')} of ${name} in ${store.location}.`);
}

export function registerSecret(profile: Command, ctx: Context): void {
  profile
    .command('secret <name>')
    .description('set or replace the client secret, certificate or service-account key of a profile')
    .option('--stdin', 'read the client secret from stdin')
    .option('--certificate <file>', 'store this PEM private key (+ certificate) instead')
    .option('--service-account-key <file>', 'store this Google service-account JSON key instead')
    .option('--expires <date>', 'record when the client secret expires (YYYY-MM-DD)')
    .action((name: string, flags: Flags) => runSecret(secretOptions([name], flags), ctx));
}

/** `oauthmail profile add NAME`: a profile from flags (and, on a terminal, the wizard), plus its secret. */
import type { Command } from 'commander';
import type { Setting } from '../../../config/profiles.js';
import { UsageError } from '../../../errors/index.js';
import type { Context } from '../../context.js';
import { givesKey } from '../../../config/derive.js';
import { addKeyFlags, type Flags, needName, settingsFrom } from './flags.js';
import { needsSecret, readClientSecret, readSecretFile, storeSecret } from './secrets.js';

export interface AddOptions {
  name: string;
  settings: Setting[];
  clientSecretStdin: boolean;
  certificate?: string;
  serviceAccountKey?: string;
  use: boolean;
}

export function addOptions([name]: string[], flags: Flags): AddOptions {
  const o: AddOptions = {
    name: needName(name, 'add'),
    settings: settingsFrom(flags),
    clientSecretStdin: !!flags.clientSecretStdin,
    use: !!flags.use,
  };
  if (typeof flags.certificate === 'string') o.certificate = flags.certificate;
  if (typeof flags.serviceAccountKey === 'string') o.serviceAccountKey = flags.serviceAccountKey;
  return o;
}

export async function runAdd(o: AddOptions, ctx: Context): Promise<void> {
  const { name } = o;
  const settings = [...o.settings];
  if (ctx.io.interactive && !givesKey(settings, 'clientId')) {
    const { runWizard } = await import('../../wizard.js');
    settings.unshift(...(await runWizard(ctx.io, settings, name)));
  }
  const { buildProfile } = await import('../../../config/profiles.js');
  const draft = buildProfile(settings); // validate before asking for any secret
  const config = await ctx.config.load();
  if (config.profiles[name]) {
    throw new UsageError(`a profile named ${JSON.stringify(name)} already exists`, {
      code: 'duplicate_profile',
      hint: `change it with \`oauthmail profile edit ${name} --set KEY=VALUE\`, or pick another name`,
    });
  }
  const kind = needsSecret(draft);
  let secret: string | undefined;
  if (kind === 'client-secret') secret = await readClientSecret(ctx, o.clientSecretStdin);
  else if (kind === 'certificate' && o.certificate) secret = await readSecretFile(o.certificate, kind);
  else if (kind === 'service-account' && o.serviceAccountKey)
    secret = await readSecretFile(o.serviceAccountKey, kind);
  if (secret !== undefined && kind) await storeSecret(ctx, draft, name, kind, secret);
  const p = await ctx.profiles.add(name, settings, { use: o.use });
  if (ctx.io.json) ctx.io.outJson({ name, profile: p, secretStored: secret !== undefined ? kind : null });
  ctx.io.err(`Added profile ${name} (${p.provider}, ${p.flow} sign-in).`);
  if (p.storage === 'keychain' && secret === undefined) {
    // say it now, not at the first cron run: sign-ins would have nowhere to go
    await ctx.secretsFor(p).catch((e: { code?: string; message?: string; hint?: string }) => {
      if (e.code !== 'keychain_unavailable') throw e;
      ctx.io.warn(`${e.message} Signing in to ${name} will fail here; ${e.hint?.replaceAll('NAME', name)}.`);
    });
  }
  if (kind && secret === undefined) {
    ctx.io.err(
      `This app needs a ${kind.replace('-', ' ')}: set it with \`oauthmail profile secret ${name}\`.`,
    );
  }
  ctx.io.err(`Next: oauthmail login ${name}`);
}

export function registerAdd(profile: Command, ctx: Context): void {
  const add = profile
    .command('add <name>')
    .description('create a profile (a wizard asks for what is missing on a terminal)');
  addKeyFlags(add, { unset: false })
    .option('--client-secret-stdin', 'read the client secret from stdin')
    .option(
      '--certificate <file>',
      "PEM file with the app certificate's private key (clientType certificate)",
    )
    .option('--service-account-key <file>', 'Google service-account JSON key (flow service-account)')
    .option('--use', 'make it the default profile')
    .addHelpText(
      'after',
      `
Secrets are never taken from arguments: use --client-secret-stdin, OAUTHMAIL_CLIENT_SECRET,
or the hidden prompt. Examples:
  $ oauthmail profile add work --client-id 00000000-0000-0000-0000-000000000000 --tenant contoso.com --user me@contoso.com
  $ printf %s "$SECRET" | oauthmail profile add daemon --client-id ID --tenant contoso.com \\
      --flow client-credentials --client-secret-stdin --user alerts@contoso.com
  $ oauthmail profile add gmail --provider google --client-id ID.apps.googleusercontent.com --user me@gmail.com`,
    )
    .action((name: string, flags: Flags) => runAdd(addOptions([name], flags), ctx));
}

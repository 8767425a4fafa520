/**
 * `oauthmail profile add|list|show|edit|rename|remove|use|secret|keys`.
 * Parses flags into settings, calls src/config/profiles.ts, prints. No logic of its own.
 */
import type { Command } from 'commander';
import { promises as fsp } from 'node:fs';
import { UsageError } from '../../errors/index.js';
import type { Context } from '../context.js';
import type { Setting } from '../../config/profiles.js';
import type { Profile } from '../../config/schema.js';
import type { SecretKind } from '../../secrets/types.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Flags that are sugar for `--set key=value`, in the order they apply (then --set, in order). */
const FLAG_KEYS: Array<[flag: string, key: string, help: string]> = [
  ['provider', 'provider', 'microsoft, google or custom (default: microsoft)'],
  ['tenant', 'tenant', 'Microsoft tenant: ID, domain, common, organizations (default), consumers'],
  ['authority', 'authority', 'authority URL (sovereign clouds, test identity providers)'],
  ['issuer', 'issuer', 'custom provider: issuer URL with discovery'],
  ['authorization-endpoint', 'authorizationEndpoint', 'custom provider: authorization endpoint URL'],
  ['token-endpoint', 'tokenEndpoint', 'custom provider: token endpoint URL'],
  ['device-endpoint', 'deviceEndpoint', 'custom provider: device authorization endpoint URL'],
  ['client-id', 'clientId', 'application (client) ID of the app registration'],
  ['client-type', 'clientType', 'public (default), secret or certificate'],
  ['thumbprint', 'certificateThumbprint', 'certificate thumbprint (clientType certificate)'],
  ['flow', 'flow', 'browser (default), device, client-credentials or service-account'],
  ['redirect-uri', 'redirectUri', 'fixed redirect URI registered for the app'],
  ['redirect-port', 'redirectPort', 'fixed loopback port for the redirect'],
  ['capabilities', 'capabilities', 'send,read (default both): picks the scopes'],
  ['scopes', 'scopes', 'explicit scopes, separated by commas or spaces'],
  ['prompt', 'prompt', 'select_account, login, consent or none'],
  ['login-hint', 'loginHint', 'account to pre-fill at sign-in'],
  ['user', 'user', 'mailbox address (SASL user); may be a shared mailbox'],
  ['from', 'from', 'default From: address'],
  ['reply-to', 'replyTo', 'default Reply-To: address'],
  ['smtp', 'smtp', 'SMTP server host:port (default from the provider)'],
  ['smtp-security', 'smtp.security', 'starttls, tls or none'],
  ['imap', 'imap', 'IMAP server host:port (default from the provider)'],
  ['imap-security', 'imap.security', 'tls, starttls or none'],
  [
    'sasl',
    'sasl',
    'auto (default; IMAP prefers OAUTHBEARER when offered, SMTP uses XOAUTH2), xoauth2 or oauthbearer',
  ],
  ['storage', 'storage', 'where secrets live: auto (default), keychain or file'],
  [
    'client-secret-expires',
    'clientSecretExpires',
    'client secret expiry date, YYYY-MM-DD (warned 30 days ahead)',
  ],
];

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

function settingsFrom(opts: Record<string, unknown>): Setting[] {
  const out: Setting[] = [];
  for (const [flag, key] of FLAG_KEYS) {
    const v = opts[camel(flag)];
    if (typeof v === 'string') out.push([key, v]);
  }
  for (const a of (opts.set as string[] | undefined) ?? []) {
    const i = a.indexOf('=');
    if (i <= 0) {
      throw new UsageError(`--set takes KEY=VALUE (got ${JSON.stringify(a)})`, {
        code: 'bad_usage',
        hint: 'example: --set smtp.port=587; list keys with oauthmail profile keys',
      });
    }
    out.push([a.slice(0, i).trim(), a.slice(i + 1)]);
  }
  for (const a of (opts.authParam as string[] | undefined) ?? []) {
    const i = a.indexOf('=');
    if (i <= 0) {
      throw new UsageError(`--auth-param takes NAME=VALUE (got ${JSON.stringify(a)})`, {
        code: 'bad_usage',
        hint: 'example: --auth-param access_type=offline',
      });
    }
    out.push([`authParams.${a.slice(0, i).trim()}`, a.slice(i + 1)]);
  }
  for (const k of (opts.unset as string[] | undefined) ?? []) out.push([k, undefined]);
  return out;
}

const AUTH_PARAM_HELP =
  'extra authorization-request parameter, e.g. access_type=offline (repeatable; custom providers)';

function needsSecret(p: Profile): SecretKind | undefined {
  if (p.flow === 'service-account') return 'service-account';
  if (p.clientType === 'secret') return 'client-secret';
  if (p.clientType === 'certificate') return 'certificate';
  return undefined;
}

/** Get a client secret without argv: stdin, then OAUTHMAIL_CLIENT_SECRET, then a hidden prompt. */
async function readClientSecret(ctx: Context, fromStdin: boolean): Promise<string | undefined> {
  if (fromStdin) {
    const s = (await ctx.io.readStdin()).replace(/\r?\n$/, '');
    if (!s)
      throw new UsageError('--client-secret-stdin: stdin was empty', {
        code: 'bad_input',
        hint: 'pipe the secret in: printf %s "$SECRET" | oauthmail ...',
      });
    return s;
  }
  const env = ctx.env.OAUTHMAIL_CLIENT_SECRET;
  if (env) return env;
  if (!ctx.io.interactive) return undefined;
  for (;;) {
    const a = await ctx.io.promptHidden('Client secret (input hidden)');
    if (!a) return undefined;
    const b = await ctx.io.promptHidden('Client secret again');
    if (a === b) return a;
    ctx.io.err('The two entries differ; try again (or press Enter to skip).');
  }
}

async function readSecretFile(file: string, kind: SecretKind): Promise<string> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      {
        code: 'bad_input',
      },
    );
  }
  if (kind === 'certificate' && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new UsageError(`${file} holds no PEM private key`, {
      code: 'bad_input',
      hint: 'give a PEM file with the private key (and certificate), e.g. from openssl pkcs12 -nodes',
    });
  }
  if (kind === 'service-account') {
    try {
      const j = JSON.parse(text) as { type?: string; private_key?: string; client_email?: string };
      if (j.type !== 'service_account' || !j.private_key || !j.client_email) throw new Error('shape');
    } catch {
      throw new UsageError(`${file} is not a Google service-account JSON key`, {
        code: 'bad_input',
        hint: 'download a JSON key for the service account in the Google Cloud console (IAM → Service accounts → Keys)',
      });
    }
  }
  return text;
}

function render(name: string, p: Profile, isDefault: boolean): string {
  const lines: string[] = [`${name}${isDefault ? ' (default)' : ''}`];
  const row = (k: string, v: unknown) => {
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) return;
    lines.push(`  ${k.padEnd(22)}${Array.isArray(v) ? v.join(' ') : String(v)}`);
  };
  row('provider', p.provider);
  row('tenant', p.tenant);
  row('authority', p.authority);
  row('issuer', p.issuer);
  row('authorizationEndpoint', p.authorizationEndpoint);
  row('tokenEndpoint', p.tokenEndpoint);
  row('deviceEndpoint', p.deviceEndpoint);
  row('clientId', p.clientId);
  row('clientType', p.clientType);
  row('certificateThumbprint', p.certificateThumbprint);
  row('flow', p.flow);
  row('redirectUri', p.redirectUri);
  row('redirectPort', p.redirectPort);
  row('capabilities', p.capabilities);
  row('scopes', p.scopes);
  row('prompt', p.prompt);
  row('loginHint', p.loginHint);
  row('user', p.user);
  row('from', p.from);
  row('replyTo', p.replyTo);
  row(
    'signature',
    p.signature ? `${p.signature.split('\n')[0]}${p.signature.includes('\n') ? ' …' : ''}` : undefined,
  );
  row('smtp', p.smtp ? `${p.smtp.host}:${p.smtp.port} (${p.smtp.security})` : undefined);
  row('imap', p.imap ? `${p.imap.host}:${p.imap.port} (${p.imap.security})` : undefined);
  row('sasl', p.sasl);
  row(
    'retry',
    p.retry.mode === 'none'
      ? 'none'
      : `${p.retry.mode}, ${p.retry.maxAttempts} attempts, ${p.retry.initialDelayMs} ms ×${p.retry.multiplier} (max ${p.retry.maxDelayMs} ms)`,
  );
  row('storage', p.storage);
  row('clientSecretExpires', p.clientSecretExpires);
  return lines.join('\n');
}

export function registerProfile(program: Command, ctx: Context): void {
  const profile = program
    .command('profile')
    .description('create and manage profiles (provider, app registration, mailbox, servers)');

  const add = profile
    .command('add <name>')
    .description('create a profile (a wizard asks for what is missing on a terminal)');
  for (const [flag, , help] of FLAG_KEYS) add.option(`--${flag} <value>`, help);
  add
    .option('--set <key=value>', 'set any profile key (repeatable; see `oauthmail profile keys`)', collect)
    .option('--auth-param <name=value>', AUTH_PARAM_HELP, collect)
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
    .action(async (name: string, opts: Record<string, unknown>) => {
      const settings = settingsFrom(opts);
      if (
        ctx.io.interactive &&
        !settings.some(([k]) => k.toLowerCase().replace(/[-_]/g, '') === 'clientid')
      ) {
        const { runWizard } = await import('../wizard.js');
        settings.unshift(...(await runWizard(ctx.io, settings, name)));
      }
      const { buildProfile } = await import('../../config/profiles.js');
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
      if (kind === 'client-secret') secret = await readClientSecret(ctx, !!opts.clientSecretStdin);
      else if (kind === 'certificate' && typeof opts.certificate === 'string')
        secret = await readSecretFile(opts.certificate, kind);
      else if (kind === 'service-account' && typeof opts.serviceAccountKey === 'string')
        secret = await readSecretFile(opts.serviceAccountKey, kind);
      if (secret !== undefined && kind) {
        const { registerSecret } = await import('../../util/redact.js');
        registerSecret(secret);
        const store = await ctx.secretsFor(draft);
        await store.set(name, kind, secret);
      }
      const p = await ctx.profiles.add(name, settings, { use: !!opts.use });
      if (ctx.io.json) ctx.io.outJson({ name, profile: p, secretStored: secret !== undefined ? kind : null });
      ctx.io.err(`Added profile ${name} (${p.provider}, ${p.flow} sign-in).`);
      if (p.storage === 'keychain' && secret === undefined) {
        // say it now, not at the first cron run: sign-ins would have nowhere to go
        await ctx.secretsFor(p).catch((e: { code?: string; message?: string; hint?: string }) => {
          if (e.code !== 'keychain_unavailable') throw e;
          ctx.io.warn(
            `${e.message} Signing in to ${name} will fail here; ${e.hint?.replaceAll('NAME', name)}.`,
          );
        });
      }
      if (kind && secret === undefined) {
        ctx.io.err(
          `This app needs a ${kind.replace('-', ' ')}: set it with \`oauthmail profile secret ${name}\`.`,
        );
      }
      ctx.io.err(`Next: oauthmail login ${name}`);
    });

  profile
    .command('list')
    .alias('ls')
    .description('list profiles (* marks the default)')
    .action(async () => {
      const config = await ctx.config.load();
      const names = Object.keys(config.profiles).sort();
      // the valid profiles are listed; a broken one is named after them, with its fix (exit 3)
      const broken = Object.entries(config.broken ?? {});
      const { brokenProfileError } = await import('../../config/store.js');
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
        if (!broken.length)
          ctx.io.err('No profiles yet. Create one: oauthmail profile add NAME --client-id ID');
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
    });

  profile
    .command('show [name]')
    .description('show a profile (secrets are never shown; only where they are)')
    .action(async (nameArg: string | undefined) => {
      const { resolveProfileName } = await import('../../config/store.js');
      const config = await ctx.config.load();
      const { name, profile: p } = resolveProfileName(
        config,
        nameArg ?? (program.opts().profile as string | undefined),
        ctx.env,
      );
      const store = await ctx.secretsFor(p);
      const secrets: string[] = [];
      for (const kind of ['client-secret', 'certificate', 'service-account', 'token-cache'] as const) {
        if ((await store.get(name, kind)) !== undefined) secrets.push(kind);
      }
      if (ctx.io.json) {
        ctx.io.outJson({
          name,
          default: config.defaultProfile === name,
          profile: p,
          secrets: { location: store.location, stored: secrets },
        });
        return;
      }
      ctx.io.out(render(name, p, config.defaultProfile === name));
      ctx.io.out(
        `  ${'secrets'.padEnd(22)}${secrets.length ? secrets.join(', ') : 'none'} in ${store.location}`,
      );
    });

  const edit = profile.command('edit <name>').description('change profile keys');
  // every flag of `profile add` that names a key, so that a hint can say `--smtp HOST:PORT` to either
  for (const [flag, , help] of FLAG_KEYS) edit.option(`--${flag} <value>`, help);
  edit
    .option('--set <key=value>', 'set a key (repeatable)', collect)
    .option('--auth-param <name=value>', AUTH_PARAM_HELP, collect)
    .option(
      '--unset <key>',
      'remove an optional key (repeatable; authParams.NAME for one parameter)',
      collect,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ oauthmail profile edit work --smtp smtp.office365.com:587 --smtp-security starttls\n  $ oauthmail profile edit work --set capabilities=send --unset redirectPort',
    )
    .action(async (name: string, opts: Record<string, unknown>) => {
      const p = await ctx.profiles.edit(name, settingsFrom(opts));
      if (ctx.io.json) ctx.io.outJson({ name, profile: p });
      ctx.io.err(`Updated profile ${name}.`);
    });

  profile
    .command('rename <old> <new>')
    .description('rename a profile (its secrets move with it)')
    .action(async (from: string, to: string) => {
      await ctx.profiles.rename(from, to);
      const { moveHealth } = await import('../../auth/health.js');
      await moveHealth({ env: ctx.env, lock: ctx.lock }, from, to);
      ctx.io.err(`Renamed profile ${from} to ${to}.`);
    });

  profile
    .command('remove <name>')
    .alias('rm')
    .description('remove a profile and its secrets (tokens, client secret)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, opts: { yes?: boolean }) => {
      const config = await ctx.config.load();
      ctx.profiles.require(config, name);
      if (!opts.yes) {
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
      const { forgetHealth } = await import('../../auth/health.js');
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
    });

  profile
    .command('use <name>')
    .description('make a profile the default (-p and OAUTHMAIL_PROFILE still override it)')
    .action(async (name: string) => {
      await ctx.profiles.use(name);
      ctx.io.err(`Default profile is now ${name}.`);
    });

  profile
    .command('secret <name>')
    .description('set or replace the client secret, certificate or service-account key of a profile')
    .option('--stdin', 'read the client secret from stdin')
    .option('--certificate <file>', 'store this PEM private key (+ certificate) instead')
    .option('--service-account-key <file>', 'store this Google service-account JSON key instead')
    .option('--expires <date>', 'record when the client secret expires (YYYY-MM-DD)')
    .action(
      async (
        name: string,
        opts: { stdin?: boolean; certificate?: string; serviceAccountKey?: string; expires?: string },
      ) => {
        const config = await ctx.config.load();
        const p = ctx.profiles.require(config, name);
        let kind: SecretKind = 'client-secret';
        let value: string | undefined;
        if (opts.certificate) {
          kind = 'certificate';
          value = await readSecretFile(opts.certificate, kind);
        } else if (opts.serviceAccountKey) {
          kind = 'service-account';
          value = await readSecretFile(opts.serviceAccountKey, kind);
        } else {
          value = await readClientSecret(ctx, !!opts.stdin);
          if (value === undefined) {
            throw new UsageError('no client secret given', {
              code: 'missing_secret',
              hint: `pipe it in: printf %s "$SECRET" | oauthmail profile secret ${name} --stdin (or set OAUTHMAIL_CLIENT_SECRET)`,
            });
          }
        }
        const { registerSecret } = await import('../../util/redact.js');
        registerSecret(value);
        if (opts.expires) await ctx.profiles.edit(name, [['clientSecretExpires', opts.expires]]);
        const store = await ctx.secretsFor(p);
        await store.set(name, kind, value);
        if (ctx.io.json) ctx.io.outJson({ name, stored: kind, location: store.location });
        ctx.io.err(`Stored the ${kind.replace('-', ' ')} of ${name} in ${store.location}.`);
      },
    );

  profile
    .command('keys')
    .description('list the keys `profile add --set` and `profile edit --set` accept')
    .action(async () => {
      const { FIELDS } = await import('../../config/fields.js');
      if (ctx.io.json) {
        ctx.io.outJson(FIELDS.map((f) => ({ key: f.key, help: f.help })));
        return;
      }
      for (const f of FIELDS) ctx.io.out(`${f.key.padEnd(24)}${f.help}`);
    });
}

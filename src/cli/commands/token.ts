/**
 * `oauthmail token [PROFILE]`: print a valid access token and nothing else (msmtp
 * passwordeval, mutt, scripts). Silent only: the cached token, else a refresh; never a prompt.
 */
import type { Command } from 'commander';
import { ConfigError, UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import { DEFAULT_MIN_VALIDITY } from '../../auth/types.js';

export interface TokenFlags {
  minValidity: string;
  forceRefresh?: boolean;
  sasl?: boolean | string;
  protocol: string;
}

export interface TokenOptions {
  /** The profile asked for (argument, then -p); undefined: OAUTHMAIL_PROFILE, then the default. */
  profile: string | undefined;
  minValiditySeconds: number;
  forceRefresh: boolean;
  /** Print the SASL initial response of this mechanism instead of the token. */
  sasl: 'xoauth2' | 'oauthbearer' | undefined;
  protocol: 'smtp' | 'imap';
  json: boolean;
}

/** Flags to options; throws UsageError. */
export function tokenOptions(
  args: { profile?: string | undefined },
  flags: TokenFlags,
  globals: GlobalOptions,
): TokenOptions {
  let nameArg = args.profile;
  // `--sasl` takes an optional value, so `token --sasl work` parses "work" as the
  // mechanism: treat an unknown value as the profile when no profile was given.
  let mech: 'xoauth2' | 'oauthbearer' | undefined;
  if (flags.sasl !== undefined && flags.sasl !== false) {
    const v = flags.sasl === true ? 'xoauth2' : flags.sasl.toLowerCase();
    if (v === 'xoauth2' || v === 'oauthbearer') mech = v;
    else if (nameArg === undefined && typeof flags.sasl === 'string') {
      nameArg = flags.sasl;
      mech = 'xoauth2';
    } else {
      throw new UsageError('--sasl must be xoauth2 or oauthbearer', { code: 'bad_usage' });
    }
  }
  if (flags.protocol !== 'smtp' && flags.protocol !== 'imap') {
    throw new UsageError('--protocol must be smtp or imap', { code: 'bad_usage' });
  }
  const min = Number(flags.minValidity);
  if (!Number.isInteger(min) || min < 0 || min > 86_400) {
    throw new UsageError('--min-validity must be a whole number of seconds from 0 to 86400', {
      code: 'bad_usage',
    });
  }
  return {
    profile: nameArg ?? globals.profile,
    minValiditySeconds: min,
    forceRefresh: !!flags.forceRefresh,
    sasl: mech,
    protocol: flags.protocol,
    json: !!globals.json,
  };
}

export async function runToken(o: TokenOptions, ctx: Context): Promise<void> {
  const { resolveProvider } = await import('../../auth/index.js');
  const { name, profile, provider } = await resolveProvider(ctx, o.profile);
  const t = await provider.getToken({
    minValiditySeconds: o.minValiditySeconds,
    forceRefresh: o.forceRefresh,
  });
  const mech = o.sasl;
  let sasl: string | undefined;
  if (mech) {
    if (!profile.user) {
      throw new ConfigError(`profile ${name} has no mailbox user for the SASL string`, {
        code: 'no_user',
        hint: `set it: oauthmail profile edit ${name} --set user=you@example.com`,
      });
    }
    // RFC-style XOAUTH2 initial client response (Google/Microsoft SASL XOAUTH2 spec):
    // base64("user=" user ^A "auth=Bearer " token ^A ^A)
    if (mech === 'xoauth2') {
      sasl = Buffer.from(`user=${profile.user}\x01auth=Bearer ${t.accessToken}\x01\x01`, 'utf8').toString(
        'base64',
      );
    } else {
      // RFC 7628 §3.1: gs2-header "n,a=<authzid>," then kvpairs separated by ^A, ending
      // ^A^A; host and port are those of the server the client connects to (§3.1 "host",
      // "port"). In the authzid, "," and "=" are escaped as =2C and =3D (RFC 5801 §4).
      const { PRESETS } = await import('../../config/presets.js');
      const server = profile[o.protocol] ?? PRESETS[profile.provider]?.[o.protocol];
      const authzid = profile.user.replace(/=/g, '=3D').replace(/,/g, '=2C');
      const kv = [
        ...(server ? [`host=${server.host}`, `port=${server.port}`] : []),
        `auth=Bearer ${t.accessToken}`,
      ];
      sasl = Buffer.from(`n,a=${authzid},\x01${kv.join('\x01')}\x01\x01`, 'utf8').toString('base64');
    }
    const { registerSecret } = await import('../../util/redact.js');
    registerSecret(sasl);
  }
  if (o.json) {
    ctx.io.outJson({
      profile: name,
      token: t.accessToken,
      ...(sasl ? { sasl, saslMechanism: mech === 'oauthbearer' ? 'OAUTHBEARER' : 'XOAUTH2' } : {}),
      tokenType: 'Bearer',
      expiresOn: t.expiresOn?.toISOString() ?? null,
      expiresIn: t.expiresOn
        ? Math.max(0, Math.floor((t.expiresOn.getTime() - ctx.clock.now()) / 1000))
        : null,
      scopes: t.scopes,
      account: t.account,
      user: profile.user ?? null,
      fromCache: t.fromCache,
    });
    return;
  }
  ctx.io.out(sasl ?? t.accessToken);
}

export function registerToken(program: Command, ctx: Context, runF = runToken): void {
  program
    .command('token [profile]')
    .description('print a valid access token (refreshing it silently if needed); never prompts')
    .option(
      '--min-validity <seconds>',
      'refresh if the cached token expires sooner than this',
      String(DEFAULT_MIN_VALIDITY),
    )
    .option('--force-refresh', 'get a new token from the identity provider even if the cached one is valid')
    .option(
      '--sasl [mechanism]',
      'print the base64 SASL initial response instead: xoauth2 (default) or oauthbearer (RFC 7628)',
    )
    .option('--protocol <protocol>', 'smtp or imap: the server whose host and port OAUTHBEARER names', 'smtp')
    .addHelpText(
      'after',
      `
Exit code 4 (with the command to run on stderr) when the profile needs a sign-in.
Examples:
  $ oauthmail token work
  $ oauthmail token work --json      # token, expiry, scopes, account
  $ oauthmail token work --sasl oauthbearer --protocol imap
  passwordeval "oauthmail token work"   (msmtp)`,
    )
    .action((profile: string | undefined, flags: TokenFlags, cmd: Command) =>
      runF(tokenOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

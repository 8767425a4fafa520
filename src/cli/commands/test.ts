/**
 * `oauthmail test [PROFILE] [--send-to ADDR] [--json]`: runs the checks of src/diagnose/checks.ts in
 * order and prints a line for each (stdout: it is the report asked for), with the fix under each
 * failure. Exit 0 when all pass, else the first failure's own exit code. --verbose adds
 * the SMTP and IMAP dialogue on stderr, with the token redacted. --token-stdin tests a token
 * someone handed over (on stdin, never in argv) instead of the profile's stored sign-in.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import { isEmail } from '../../config/schema.js';

export interface TestFlags {
  sendTo?: string;
  tokenStdin?: boolean;
  ca?: string;
  insecureTls?: boolean;
  timeout: string;
}

export interface TestOptions {
  profile: string | undefined;
  json: boolean;
  verbose: boolean;
  sendTo: string | undefined;
  /** Test the token on stdin instead of the profile's sign-in. */
  tokenStdin: boolean;
  ca: string | undefined;
  insecureTls: boolean;
  timeoutSeconds: number;
}

export function testOptions(
  args: { profile?: string | undefined },
  flags: TestFlags,
  globals: GlobalOptions,
): TestOptions {
  const timeout = Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 600) {
    throw new UsageError('--timeout must be a number of seconds from 1 to 600', { code: 'bad_usage' });
  }
  if (flags.sendTo !== undefined && !isEmail(flags.sendTo)) {
    throw new UsageError(`--send-to ${JSON.stringify(flags.sendTo)} is not an email address`, {
      code: 'bad_usage',
    });
  }
  return {
    profile: args.profile ?? globals.profile,
    json: !!globals.json,
    verbose: !!globals.verbose,
    sendTo: flags.sendTo,
    tokenStdin: !!flags.tokenStdin,
    ca: flags.ca,
    insecureTls: !!flags.insecureTls,
    timeoutSeconds: timeout,
  };
}

export async function runTest(o: TestOptions, ctx: Context): Promise<void> {
  let token: string | undefined;
  if (o.tokenStdin) {
    if (ctx.io.stdin.isTTY) {
      throw new UsageError('--token-stdin reads the token from a pipe, not a terminal', {
        code: 'bad_usage',
        hint: 'oauthmail token other-profile | oauthmail test work --token-stdin',
      });
    }
    token = (await ctx.io.readStdin()).trim();
    if (!token) throw new UsageError('--token-stdin: stdin was empty', { code: 'bad_usage' });
  }
  if (o.insecureTls)
    ctx.io.warn('--insecure-tls: certificates are NOT verified; anyone on the path can read the token');
  const { resolveProfileName } = await import('../../config/store.js');
  const { runChecks, renderReport, checkFailure } = await import('../../diagnose/checks.js');
  const config = await ctx.config.load();
  const { name, profile } = resolveProfileName(config, o.profile, ctx.env);
  if (profile.transport === 'graph')
    // the checks below speak SMTP and IMAP with an Exchange token; a Graph token is refused there
    throw new UsageError(
      `oauthmail test does not check transport graph profiles yet (${name} sends through Microsoft Graph)`,
      {
        code: 'transport_not_yet',
        hint: `check it with a real send: oauthmail send -p ${name} --to YOU@EXAMPLE --body test --json`,
      },
    );
  const report = await runChecks({
    name,
    profile,
    provider: async () => (await import('../../auth/index.js')).tokenProviderFor(ctx, name, profile),
    hasCredential: async () => {
      const store = await ctx.secretsFor(profile);
      const kind = profile.clientType === 'certificate' ? 'certificate' : 'client-secret';
      return (
        (await store.get(name, kind)) !== undefined ||
        (kind === 'client-secret' && !!ctx.env.OAUTHMAIL_CLIENT_SECRET)
      );
    },
    ...(token ? { token } : {}),
    ...(o.sendTo ? { sendTo: o.sendTo } : {}),
    ...(o.ca ? { caFile: o.ca } : {}),
    ...(o.insecureTls ? { insecureTls: true } : {}),
    timeoutMs: o.timeoutSeconds * 1000,
    ...(o.verbose ? { transcript: (l: string) => ctx.io.err(`transcript: ${l}`) } : {}),
  });
  if (o.json) ctx.io.outJson(report);
  else ctx.io.out(renderReport(report));
  const failure = checkFailure(report);
  if (failure) throw failure;
}

export function registerTest(program: Command, ctx: Context, runF = runTest): void {
  program
    .command('test [profile]')
    .description('check a profile end to end: settings, token, permissions, SMTP and IMAP sign-in')
    .option('--send-to <address>', 'also send a short test message to this address')
    .option('--token-stdin', "test the access token read from stdin instead of the profile's sign-in")
    .option('--ca <file>', 'PEM file of a CA to trust for the mail servers')
    .option('--insecure-tls', "do not verify the mail servers' certificates (warned)")
    .option('--timeout <seconds>', 'network timeout per step', '20')
    .addHelpText(
      'after',
      `
Checks, in order (a check whose prerequisite failed is skipped):
  profile  settings are complete and consistent (scopes, audience, credentials, servers)
  token    an access token can be had silently (the refresh token is redeemed)
  claims   audience, scp/roles, user, tenant, app, expiry (JWT) or Google's token-info
  smtp     connect, TLS, EHLO, XOAUTH2/OAUTHBEARER offered, AUTH (nothing is sent)
  imap     connect, TLS, CAPABILITY, AUTHENTICATE, SELECT INBOX
  send     with --send-to only
Exit code: 0 when all pass, else that of the first failure (3 config, 4 sign-in/consent,
5 server refused, 6 network). --json prints the report (schema: docs/test-report.schema.json).
Examples:
  $ oauthmail test work
  $ oauthmail test work --json > report.json     # attach to a ticket: no token in it
  $ oauthmail test work --verbose                 # with the SMTP/IMAP dialogue, token redacted`,
    )
    .action((profile: string | undefined, flags: TestFlags, cmd: Command) =>
      runF(testOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

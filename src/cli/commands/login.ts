/**
 * `oauthmail login [PROFILE]`: sign in (browser with a loopback redirect, device code, or
 * app-only client credentials) and store the tokens. Picks the method from the flags, the
 * profile's flow and the terminal; never waits on a person who cannot be there.
 */
import type { Command } from 'commander';
import { AuthError, UsageError } from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { LoginMethod } from '../../auth/types.js';
import { PROMPTS } from '../../config/schema.js';

export interface LoginFlags {
  device?: boolean;
  browser?: boolean;
  prompt?: string;
  loginHint?: string;
  domainHint?: string;
  timeout: string;
  paste?: boolean;
}

export interface LoginOptions {
  profile: string | undefined;
  device: boolean;
  /** --browser true, --no-browser false, neither undefined. */
  browser: boolean | undefined;
  paste: boolean;
  prompt: string | undefined;
  loginHint: string | undefined;
  domainHint: string | undefined;
  timeoutSeconds: number;
}

export function loginOptions(
  args: { profile?: string | undefined },
  flags: LoginFlags,
  globals: GlobalOptions,
): LoginOptions {
  const timeout = Number(flags.timeout);
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 3600) {
    throw new UsageError('--timeout must be a whole number of seconds from 1 to 3600', {
      code: 'bad_usage',
    });
  }
  if (flags.prompt && !(PROMPTS as readonly string[]).includes(flags.prompt)) {
    throw new UsageError(`--prompt must be one of: ${PROMPTS.join(', ')}`, { code: 'bad_usage' });
  }
  if (flags.paste && (flags.device || flags.browser === true)) {
    throw new UsageError('--paste excludes --device and --browser', { code: 'bad_usage' });
  }
  if (flags.device && flags.browser !== undefined) {
    throw new UsageError('--device and --browser/--no-browser exclude each other', { code: 'bad_usage' });
  }
  return {
    profile: args.profile ?? globals.profile,
    device: !!flags.device,
    browser: flags.browser,
    paste: !!flags.paste,
    prompt: flags.prompt,
    loginHint: flags.loginHint,
    domainHint: flags.domainHint,
    timeoutSeconds: timeout,
  };
}

export async function runLogin(o: LoginOptions, ctx: Context): Promise<void> {
  const { resolveProvider } = await import('../../auth/index.js');
  const { hasDisplay } = await import('../signin/browser.js');
  const { name, profile, provider } = await resolveProvider(ctx, o.profile);
  const io = ctx.io;
  if (o.paste && profile.provider !== 'microsoft') {
    // only the Microsoft provider implements the paste flow so far
    throw new UsageError(`--paste is not available for ${profile.provider} profiles yet`, {
      code: 'paste_not_supported',
      hint: `forward the loopback port (ssh -L PORT:localhost:PORT) and run: oauthmail login ${name} --no-browser`,
    });
  }
  if (o.device && profile.provider === 'google') {
    // Refused before any request: Google's device flow cannot grant the mail scope.
    const { GOOGLE_NO_DEVICE } = await import('../../auth/errors/google-errors.js');
    throw new UsageError(GOOGLE_NO_DEVICE, {
      code: 'google_no_device',
      hint: `run: oauthmail login ${name} --no-browser (and open the URL on this computer)`,
    });
  }

  let method: LoginMethod;
  let openBrowser = o.browser !== false;
  if (o.paste && profile.flow !== 'client-credentials') {
    // the person pastes on stdin: no TTY needed, and no browser opened here
    method = 'browser';
    openBrowser = false;
  } else if (profile.flow === 'client-credentials' || profile.flow === 'service-account') {
    method = 'client-credentials'; // app-only (a Google service account too): no person involved
  } else if (o.device) method = 'device';
  else if (o.browser !== undefined) method = 'browser';
  else if (!io.interactive) {
    // Nobody to answer a browser: a device code can still be completed elsewhere when a
    // person watches stderr; otherwise fail with the command to run (never hang in cron).
    if (io.stderrIsTTY && !io.noInput) method = 'device';
    else {
      throw new AuthError(`signing in to ${name} needs a person, and this session is not interactive`, {
        code: 'not_interactive',
        hint: `run: oauthmail login ${name} in a terminal (or oauthmail login ${name} --device to approve a code on another device, or --paste to paste the final address back)`,
      });
    }
  } else if (profile.flow === 'device') method = 'device';
  else if (hasDisplay(ctx.env)) method = 'browser';
  else method = 'device';
  if (profile.provider === 'google' && method === 'device') {
    method = 'browser'; // Google has no device flow for the mail scope: print the URL instead
    openBrowser = false;
  }
  if (method === 'browser' && !hasDisplay(ctx.env)) openBrowser = false;
  if (method === 'browser' && !o.paste && ctx.env.SSH_CONNECTION && !hasDisplay(ctx.env)) {
    // remote session: the loopback redirect lands on the person's computer, not here
    const { sshGuidance } = await import('../signin/remote.js');
    for (const l of sshGuidance(name, profile, ctx.env)) io.err(l);
  }

  const t = await provider.login({
    method,
    prompt: (o.prompt ?? profile.prompt) as never,
    loginHint: o.loginHint ?? profile.loginHint,
    domainHint: o.domainHint ?? profile.domainHint,
    openBrowser,
    timeoutMs: o.timeoutSeconds * 1000,
    ...(o.paste ? { paste: true } : {}),
  });
  if (io.json) {
    io.outJson({
      profile: name,
      method,
      account: t.account,
      expiresOn: t.expiresOn?.toISOString() ?? null,
      scopes: t.scopes,
    });
  }
  io.err(
    method === 'client-credentials'
      ? `Got an app-only token for ${name} (valid until ${t.expiresOn?.toISOString() ?? 'unknown'}).`
      : `Signed in to ${name}${t.account ? ` as ${t.account}` : ''}.`,
  );
  if (profile.user && t.account && profile.user.toLowerCase() !== t.account.toLowerCase()) {
    io.err(
      `Note: the mailbox user is ${profile.user} (a shared or delegated mailbox needs permission for ${t.account}).`,
    );
  }
  io.err(`Next: oauthmail token ${name}`);
}

export function registerLogin(program: Command, ctx: Context, runF = runLogin): void {
  program
    .command('login [profile]')
    .description('sign in and store the tokens (browser, device code, or app-only client credentials)')
    .option('--device', 'sign in with a device code (enter a code on any device)')
    .option('--browser', 'sign in in the browser (the default when there is a display)')
    .option('--no-browser', 'browser sign-in, but print the URL instead of opening a browser')
    .option('--paste', 'remote machines: print the URL, then paste the address the browser ended on (stdin)')
    .option('--prompt <prompt>', `force a prompt: ${PROMPTS.join(', ')}`)
    .option('--login-hint <account>', 'pre-fill the account at sign-in')
    .option('--domain-hint <domain>', 'skip home-realm discovery for this domain')
    .option('--timeout <seconds>', 'give up waiting for the sign-in after this long', '300')
    .addHelpText(
      'after',
      `
Without a terminal (cron, CI) login fails with exit code 4 unless --device or --no-browser is
given; then it prints the code or URL on stderr and waits (up to --timeout).
Examples:
  $ oauthmail login work
  $ oauthmail login work --device
  $ oauthmail login work --no-browser --prompt select_account
  $ oauthmail login work --paste      # over SSH: sign in on your own computer, paste the address back
Order of fallbacks when a step is impossible: browser (with a display) → device code → --paste.`,
    )
    .action((profile: string | undefined, flags: LoginFlags, cmd: Command) =>
      runF(loginOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

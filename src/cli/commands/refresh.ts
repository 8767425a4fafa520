/**
 * `oauthmail refresh [PROFILE] [--all]`: keep sign-ins alive. Redeems each refresh token once
 * (the rotated one is stored under the profile's token lock by the provider), reports per
 * profile, and exits 4 if any profile needs a new sign-in, 6 if any failed transiently (safe to
 * retry), so that a cron job or a systemd timer can map the exit code to an alert.
 *
 * Why: Microsoft ends a sign-in whose refresh token is unused for 90 days (AADSTS700082); a
 * scheduled redemption keeps it alive indefinitely (within the tenant's session policies).
 */
import type { Command } from 'commander';
import {
  AuthError,
  ExitCode,
  isOauthmailError,
  OauthmailError,
  TransientError,
  UsageError,
} from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';

interface Row {
  profile: string;
  provider: string;
  ok: boolean;
  /** ok: refreshed | app-only; failure: sign-in-needed | transient | error */
  result: 'refreshed' | 'app-only' | 'sign-in-needed' | 'transient' | 'error';
  rotated?: boolean;
  accessTokenExpiresOn?: string | null;
  exitCode: number;
  message?: string;
  fix?: string;
}

export interface RefreshOptions {
  /** One profile (argument, then -p); undefined with --all, or for the default profile. */
  profile: string | undefined;
  all: boolean;
  quiet: boolean;
}

export function refreshOptions(
  args: { profile?: string | undefined },
  flags: { all?: boolean; quiet?: boolean },
  globals: GlobalOptions,
): RefreshOptions {
  if (flags.all && args.profile) {
    throw new UsageError('give a profile or --all, not both', { code: 'bad_usage' });
  }
  return { profile: args.profile ?? globals.profile, all: !!flags.all, quiet: !!flags.quiet };
}

export async function runRefresh(o: RefreshOptions, ctx: Context): Promise<void> {
  const { tokenProviderFor } = await import('../../auth/index.js');
  const { resolveProfileName } = await import('../../config/store.js');
  const { readHealth } = await import('../../auth/health.js');
  const config = await ctx.config.load();
  const names = o.all
    ? Object.keys(config.profiles).sort()
    : [resolveProfileName(config, o.profile, ctx.env).name];
  const io = ctx.io;
  if (!names.length) {
    if (io.json) io.outJson([]);
    else io.err('No profiles yet. Create one: oauthmail profile add NAME --client-id ID');
    return;
  }
  const rows: Row[] = [];

  for (const name of names) {
    const p = config.profiles[name]!;
    const appOnly = p.flow === 'client-credentials';
    try {
      const provider = await tokenProviderFor(ctx, name, p);
      if (!appOnly) {
        const st = await provider.status();
        if (!st.signedIn) {
          throw new AuthError(`profile ${name} is not signed in`, {
            code: 'not_signed_in',
            hint: `run: oauthmail login ${name}`,
          });
        }
      }
      const t = await provider.getToken({ forceRefresh: true });
      // the providers record token health themselves (refresh, rotation, refusal)
      const rec = (await readHealth(ctx.env)).profiles[name];
      rows.push({
        profile: name,
        provider: p.provider,
        ok: true,
        result: appOnly ? 'app-only' : 'refreshed',
        ...(appOnly ? {} : { rotated: !!rec?.lastRotatedAt && rec.lastRotatedAt === rec.lastUsedAt }),
        accessTokenExpiresOn: t.expiresOn?.toISOString() ?? null,
        exitCode: 0,
      });
    } catch (e) {
      const err = isOauthmailError(e)
        ? e
        : new OauthmailError(`unexpected error: ${(e as Error)?.message ?? String(e)}`, {
            code: 'unexpected',
          });
      rows.push({
        profile: name,
        provider: p.provider,
        ok: false,
        result:
          err.exitCode === ExitCode.AUTH
            ? 'sign-in-needed'
            : err.exitCode === ExitCode.TRANSIENT
              ? 'transient'
              : 'error',
        exitCode: err.exitCode,
        message: err.message,
        ...(err.hint ? { fix: err.hint } : {}),
      });
    }
  }

  if (io.json) {
    io.outJson(rows);
  } else {
    for (const r of rows) {
      if (r.ok) {
        if (o.quiet) continue;
        io.err(
          r.result === 'app-only'
            ? `${r.profile}: ok (app-only: no refresh token to keep alive; the credential works)`
            : `${r.profile}: ok, refresh token redeemed${r.rotated ? ' and rotated' : ''}`,
        );
      } else {
        io.err(`${r.profile}: FAILED: ${r.message}${r.fix ? ` (${r.fix})` : ''}`);
      }
    }
  }

  if (o.all) {
    // a scheduled `refresh --all` also delivers what the queue holds (sign-ins just proved)
    const { flushAfterRefresh } = await import('./queue.js');
    const q = await flushAfterRefresh(ctx);
    if (q && q.busy === undefined && (!o.quiet || q.deferred || q.dead)) {
      io.err(`queue: ${q.delivered} delivered, ${q.deferred} deferred, ${q.dead} dead`);
    }
  }

  const failed = rows.filter((r) => !r.ok);
  if (!failed.length) return;
  const list = (rs: Row[]) => rs.map((r) => r.profile).join(', ');
  const auth = failed.filter((r) => r.exitCode === ExitCode.AUTH);
  if (auth.length) {
    throw new AuthError(
      `${auth.length === 1 ? 'profile' : 'profiles'} ${list(auth)} need${auth.length === 1 ? 's' : ''} a new sign-in`,
      {
        code: 'refresh_sign_in_needed',
        hint: `run: oauthmail login ${auth[0]!.profile}`,
      },
    );
  }
  const transient = failed.filter((r) => r.exitCode === ExitCode.TRANSIENT);
  if (transient.length) {
    throw new TransientError(`refreshing ${list(transient)} failed for now`, {
      code: 'refresh_transient',
      hint: 'retry later; exit code 6 is safe to retry',
    });
  }
  const first = failed[0]!;
  const e = new OauthmailError(`refreshing ${list(failed)} failed`, {
    code: 'refresh_failed',
    ...(first.fix ? { hint: first.fix } : {}),
  });
  // keep the failing profile's own exit code (e.g. 3 for a configuration problem)
  Object.defineProperty(e, 'exitCode', { value: first.exitCode });
  throw e;
}

export function registerRefresh(program: Command, ctx: Context, runF = runRefresh): void {
  program
    .command('refresh [profile]')
    .description('redeem refresh tokens now to keep sign-ins alive (for cron or a systemd timer)')
    .option('-a, --all', 'every profile')
    .option('-q, --quiet', 'report only the profiles that failed')
    .addHelpText(
      'after',
      `
With --all it also delivers what the local queue holds (oauthmail queue run, one try each).
Exit codes: 0 all refreshed; 4 a profile needs a new sign-in (run the command printed);
6 a temporary failure (network, throttling: safe to retry); 3 a configuration problem.
Examples:
  $ oauthmail refresh work
  $ oauthmail refresh --all --quiet          # in cron, e.g. daily:
  17 4 * * *  oauthmail refresh --all --quiet || logger -t oauthmail "refresh failed: exit $?"`,
    )
    .action((profile: string | undefined, flags: { all?: boolean; quiet?: boolean }, cmd: Command) =>
      runF(refreshOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

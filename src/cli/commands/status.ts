/**
 * `oauthmail status [PROFILE]`: per profile, who is signed in, where the tokens live, when the
 * access token expires, the granted scopes, the local queue, and for each problem the command
 * that fixes it. A sign-in whose last refresh was refused is not signed in, whatever the cache
 * still holds. Exit 4 when a profile needs a sign-in, 5 when the queue holds dead letters, 6 when
 * a message waits longer than OAUTHMAIL_QUEUE_WARN_AGE (1h). Contacts the identity provider only
 * with --verify (each refresh token redeemed now).
 */
import type { Command } from 'commander';
import {
  AuthError,
  ConfigError,
  ExitCode,
  MailServerError,
  TransientError,
  isOauthmailError,
} from '../../errors/index.js';
import type { Context, GlobalOptions } from '../context.js';
import type { TokenStatus } from '../../auth/types.js';

export interface StatusOptions {
  /** One profile (argument, then -p); undefined: every profile. */
  profile: string | undefined;
  /** Redeem each refresh token now. */
  verify: boolean;
}

export function statusOptions(
  args: { profile?: string | undefined },
  flags: { verify?: boolean },
  globals: GlobalOptions,
): StatusOptions {
  return { profile: args.profile ?? globals.profile, verify: !!flags.verify };
}

export async function runStatus(o: StatusOptions, ctx: Context): Promise<void> {
  const { tokenProviderFor } = await import('../../auth/index.js');
  const { resolveProfileName } = await import('../../config/store.js');
  const { readHealth, healthWarnings, thresholdsFrom, refusedSignIn } = await import('../../auth/health.js');
  const { queueStats } = await import('../../mail/queue/spool.js');
  const { spoolFor, parseDuration } = await import('./queue.js');
  const spool = await spoolFor(ctx);
  const [waiting, dead] = await Promise.all([spool.list(false), spool.list(true)]);
  const warnAgeS = parseDuration(ctx.env.OAUTHMAIL_QUEUE_WARN_AGE || '1h', 'OAUTHMAIL_QUEUE_WARN_AGE') / 1000;
  let health = await readHealth(ctx.env);
  const thresholds = thresholdsFrom(ctx.env);
  const config = await ctx.config.load();
  const explicit = o.profile;
  const names = explicit
    ? [resolveProfileName(config, explicit, ctx.env).name]
    : Object.keys(config.profiles).sort();
  const rows: Array<{
    name: string;
    provider: string;
    flow: string;
    user: string | null;
    status?: TokenStatus;
    error?: string;
    fix?: string;
    health?: import('../../auth/health.js').HealthRecord;
    warnings: Array<{ code: string; problem: string; fix: string }>;
    queue: import('../../mail/queue/spool.js').QueueStats;
    verify?: { ok: boolean; exitCode: number; message?: string };
  }> = [];
  let verifyTransient = false;
  for (const name of names) {
    const p = config.profiles[name]!;
    try {
      const provider = await tokenProviderFor(ctx, name, p);
      let status = await provider.status();
      let verify: { ok: boolean; exitCode: number; message?: string } | undefined;
      if (o.verify && (status.signedIn || p.flow === 'client-credentials')) {
        try {
          await provider.getToken({ forceRefresh: true });
          verify = { ok: true, exitCode: 0 };
        } catch (e) {
          const code = isOauthmailError(e) ? e.exitCode : ExitCode.ERROR;
          verify = { ok: false, exitCode: code, message: (e as Error).message };
          if (code === ExitCode.AUTH) {
            // the provider recorded the refusal in the health file: read it again
            health = await readHealth(ctx.env);
          } else {
            verifyTransient ||= code === ExitCode.TRANSIENT;
            status = {
              ...status,
              problems: [
                ...status.problems,
                {
                  problem: `the refresh token could not be checked now: ${verify.message}`,
                  fix: `oauthmail status --verify ${name} (later)`,
                },
              ],
            };
          }
        }
      }
      const rec = health.profiles[name];
      if (!status.signedIn && p.flow !== 'client-credentials') {
        // signed in, but in a keychain this session cannot reach: say that, not "not signed in"
        const kc = await ctx.keychainExplains(name, p, { code: 'not_signed_in' });
        if (kc) throw kc;
      }
      const refused = p.flow === 'client-credentials' ? undefined : refusedSignIn(rec);
      if (refused && (status.signedIn || verify?.exitCode === ExitCode.AUTH)) {
        // the cache may still hold an access token, but the sign-in has ended
        status = {
          ...status,
          signedIn: false,
          problems: [
            {
              problem: `the sign-in has ended: its last refresh was refused on ${refused.at} (${refused.code})`,
              fix: `oauthmail login ${name}`,
            },
            ...status.problems,
          ],
        };
      } else if (verify && !verify.ok && verify.exitCode === ExitCode.AUTH) {
        status = {
          ...status,
          signedIn: false,
          problems: [
            { problem: verify.message ?? 'refresh refused', fix: `oauthmail login ${name}` },
            ...status.problems,
          ],
        };
      }
      // token health (src/auth/health.ts); a secret-expiry problem the provider already
      // reported is not repeated
      const warnings = healthWarnings(
        {
          name,
          provider: p.provider,
          flow: p.flow,
          clientType: p.clientType,
          clientSecretExpires: p.clientSecretExpires,
          signedIn: status.signedIn,
        },
        rec,
        thresholds,
      ).filter((w) => !status.problems.some((x) => x.problem === w.problem));
      rows.push({
        name,
        provider: p.provider,
        flow: p.flow,
        user: p.user ?? null,
        status,
        ...(rec ? { health: rec } : {}),
        warnings,
        queue: queueStats(waiting, dead, name),
        ...(verify ? { verify } : {}),
      });
    } catch (e0) {
      const e = (await ctx.keychainExplains(name, p, e0)) ?? e0;
      const err = e as { message?: string; hint?: string };
      rows.push({
        name,
        provider: p.provider,
        flow: p.flow,
        user: p.user ?? null,
        error: err.message ?? String(e),
        fix: err.hint,
        warnings: [],
        queue: queueStats(waiting, dead, name),
      });
    }
  }
  for (const r of rows) r.warnings.push(...queueProblems(r.queue, warnAgeS));
  const needSignIn = rows
    .filter((r) => (r.error && !keychainUnreachable(r.error)) || (r.status && !r.status.signedIn))
    .map((r) => r.name);
  const unreachable = rows.filter((r) => r.error && keychainUnreachable(r.error)).map((r) => r.name);
  if (ctx.io.json) {
    ctx.io.outJson(
      rows.map((r) => ({
        name: r.name,
        provider: r.provider,
        flow: r.flow,
        user: r.user,
        signedIn: r.status?.signedIn ?? false,
        account: r.status?.account ?? null,
        storage: r.status ? { kind: r.status.storeKind, location: r.status.location } : null,
        accessTokenExpiresOn: r.status?.accessTokenExpiresOn?.toISOString() ?? null,
        scopes: r.status?.scopes ?? [],
        hasRefreshToken: r.status?.hasRefreshToken ?? false,
        problems: r.status?.problems ?? (r.error ? [{ problem: r.error, fix: r.fix ?? '' }] : []),
        health: r.health
          ? {
              obtainedAt: r.health.obtainedAt ?? null,
              lastUsedAt: r.health.lastUsedAt ?? null,
              lastRotatedAt: r.health.lastRotatedAt ?? null,
              lastFailureAt: r.health.lastFailureAt ?? null,
              lastFailureCode: r.health.lastFailureCode ?? null,
            }
          : null,
        warnings: r.warnings,
        queue: r.queue,
        ...(r.verify ? { verify: r.verify } : {}),
      })),
    );
  } else if (rows.length === 0) {
    ctx.io.err('No profiles yet. Create one: oauthmail profile add NAME --client-id ID');
  } else {
    for (const r of rows) {
      const s = r.status;
      const lines = [`${r.name} (${r.provider}, ${r.flow})`];
      const row = (k: string, v: string) => lines.push(`  ${k.padEnd(16)}${v}`);
      if (s) {
        row(
          'signed in',
          s.signedIn
            ? s.account
              ? `yes, as ${s.account}`
              : r.flow === 'client-credentials'
                ? 'app-only (credential stored)'
                : 'yes'
            : 'no',
        );
        if (r.user) row('mailbox', r.user);
        row('tokens in', `${s.location}`);
        if (s.accessTokenExpiresOn) {
          const left = Math.round((s.accessTokenExpiresOn.getTime() - Date.now()) / 60000);
          row(
            'access token',
            left > 0
              ? `expires ${s.accessTokenExpiresOn.toISOString()} (in ${left} min)`
              : `expired ${s.accessTokenExpiresOn.toISOString()}${s.hasRefreshToken ? ' (refreshed on next use)' : ''}`,
          );
        }
        if (s.scopes.length) row('scopes', s.scopes.join(' '));
        const h = r.health;
        if (h?.obtainedAt) row('signed in at', h.obtainedAt);
        if (h?.lastUsedAt)
          row('last refreshed', `${h.lastUsedAt}${h.lastRotatedAt === h.lastUsedAt ? ' (rotated)' : ''}`);
        if (r.queue.waiting || r.queue.dead) row('queue', queueText(r.queue));
        if (r.verify)
          row(
            'verified now',
            r.verify.ok ? 'yes, the refresh token was redeemed' : `no: ${r.verify.message}`,
          );
        for (const p of s.problems) lines.push(`  ! ${p.problem}: ${fixText(p.fix)}`);
        for (const w of r.warnings) lines.push(`  ! warning: ${w.problem}: ${fixText(w.fix)}`);
      } else {
        lines.push(`  ! ${r.error}${r.fix ? ` (${r.fix})` : ''}`);
        if (r.queue.waiting || r.queue.dead) row('queue', queueText(r.queue));
        for (const w of r.warnings) lines.push(`  ! warning: ${w.problem}: ${fixText(w.fix)}`);
      }
      ctx.io.out(lines.join('\n'));
    }
  }
  if (unreachable.length && !needSignIn.length) {
    const first = rows.find((r) => r.name === unreachable[0])!;
    throw new ConfigError(first.error!, {
      code: 'keychain_unreachable',
      ...(first.fix ? { hint: first.fix } : {}),
    });
  }
  if (needSignIn.length) {
    throw new AuthError(
      `${needSignIn.length === 1 ? `profile ${needSignIn[0]} needs` : `profiles ${needSignIn.join(', ')} need`} a sign-in`,
      {
        code: 'not_signed_in',
        hint: `run: oauthmail login ${needSignIn[0]}`,
      },
    );
  }
  const deadRows = rows.filter((r) => r.queue.dead);
  if (deadRows.length) {
    throw new MailServerError(
      `the queue holds ${deadRows.reduce((n, r) => n + r.queue.dead, 0)} dead letter(s): messages that will not be sent`,
      { code: 'queue_dead', hint: 'see them: oauthmail queue list --dead' },
    );
  }
  const late = rows.filter((r) => r.queue.oldestAgeSeconds !== null && r.queue.oldestAgeSeconds >= warnAgeS);
  if (late.length || verifyTransient) {
    throw new TransientError(
      late.length
        ? `queued messages wait longer than ${ctx.env.OAUTHMAIL_QUEUE_WARN_AGE || '1h'} (profile ${late.map((r) => r.name).join(', ')})`
        : 'a refresh token could not be checked now',
      {
        code: late.length ? 'queue_waiting' : 'verify_transient',
        hint: late.length ? 'deliver them: oauthmail queue run (see oauthmail queue list)' : 'retry later',
      },
    );
  }
}

export function registerStatus(program: Command, ctx: Context, runF = runStatus): void {
  program
    .command('status [profile]')
    .description(
      'show sign-in state, token expiry, scopes and storage of each profile (exit 4 if one needs sign-in)',
    )
    .option(
      '--verify',
      'redeem each refresh token now (contacts the identity provider) and report the result',
    )
    .action((profile: string | undefined, flags: { verify?: boolean }, cmd: Command) =>
      runF(statusOptions({ profile }, flags, cmd.optsWithGlobals<GlobalOptions>()), ctx),
    );
}

type QueueStats = import('../../mail/queue/spool.js').QueueStats;

function ago(seconds: number): string {
  if (seconds >= 2 * 86400) return `${Math.floor(seconds / 86400)} days`;
  if (seconds >= 7200) return `${Math.floor(seconds / 3600)} hours`;
  if (seconds >= 120) return `${Math.floor(seconds / 60)} minutes`;
  return `${seconds} seconds`;
}

function queueText(q: QueueStats): string {
  const parts: string[] = [];
  if (q.waiting)
    parts.push(`${q.waiting} waiting (oldest ${ago(q.oldestAgeSeconds ?? 0)}, since ${q.oldestQueuedAt})`);
  if (q.dead) parts.push(`${q.dead} dead`);
  return parts.join(', ');
}

function queueProblems(
  q: QueueStats,
  warnAgeS: number,
): Array<{ code: string; problem: string; fix: string }> {
  const out: Array<{ code: string; problem: string; fix: string }> = [];
  if (q.waiting && (q.oldestAgeSeconds ?? 0) >= warnAgeS) {
    out.push({
      code: 'queue_waiting',
      problem: `${q.waiting} queued message(s), the oldest waiting for ${ago(q.oldestAgeSeconds ?? 0)}`,
      fix: 'oauthmail queue run (and see oauthmail queue list)',
    });
  }
  if (q.dead) {
    out.push({
      code: 'queue_dead',
      problem: `${q.dead} queued message(s) could not be delivered (dead letters)`,
      fix: 'oauthmail queue list --dead',
    });
  }
  return out;
}

/** The profile's store is the keychain and this session cannot reach it: not a missing sign-in. */
function keychainUnreachable(message: string): boolean {
  return /keychain is (unavailable|unreachable)|cannot reach the keychain/i.test(message);
}

/** "run: oauthmail login work" for a command; a fix in words ("publish the app ...") as it is. */
export function fixText(fix: string): string {
  return /^oauthmail\s/.test(fix) ? `run ${fix}` : fix;
}

/**
 * `oauthmail status [PROFILE]`: per profile, who is signed in, where the tokens live, when the
 * access token expires, the granted scopes, and for each problem the command that fixes it.
 * Exit code 4 when a profile needs a sign-in. Never contacts the identity provider.
 */
import type { Command } from 'commander';
import { AuthError } from '../../errors/index.js';
import type { Context } from '../context.js';
import type { TokenStatus } from '../../auth/types.js';

export function registerStatus(program: Command, ctx: Context): void {
  program
    .command('status [profile]')
    .description(
      'show sign-in state, token expiry, scopes and storage of each profile (exit 4 if one needs sign-in)',
    )
    .action(async (nameArg: string | undefined) => {
      const { tokenProviderFor } = await import('../../auth/index.js');
      const { resolveProfileName } = await import('../../config/store.js');
      const { readHealth, healthWarnings, thresholdsFrom } = await import('../../auth/health.js');
      const health = await readHealth(ctx.env);
      const thresholds = thresholdsFrom(ctx.env);
      const config = await ctx.config.load();
      const explicit = nameArg ?? (program.opts().profile as string | undefined);
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
      }> = [];
      for (const name of names) {
        const p = config.profiles[name]!;
        try {
          const provider = await tokenProviderFor(ctx, name, p);
          const status = await provider.status();
          const rec = health.profiles[name];
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
          });
        } catch (e) {
          const err = e as { message?: string; hint?: string };
          rows.push({
            name,
            provider: p.provider,
            flow: p.flow,
            user: p.user ?? null,
            error: err.message ?? String(e),
            fix: err.hint,
            warnings: [],
          });
        }
      }
      const needSignIn = rows.filter((r) => r.error || !r.status?.signedIn).map((r) => r.name);
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
            for (const p of s.problems) lines.push(`  ! ${p.problem}: run ${p.fix}`);
            for (const w of r.warnings) lines.push(`  ! warning: ${w.problem}: run ${w.fix}`);
          } else {
            lines.push(`  ! ${r.error}${r.fix ? ` (${r.fix})` : ''}`);
          }
          ctx.io.out(lines.join('\n'));
        }
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
    });
}

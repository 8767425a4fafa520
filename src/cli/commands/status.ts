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
      }> = [];
      for (const name of names) {
        const p = config.profiles[name]!;
        try {
          const provider = await tokenProviderFor(ctx, name, p);
          rows.push({
            name,
            provider: p.provider,
            flow: p.flow,
            user: p.user ?? null,
            status: await provider.status(),
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
            for (const p of s.problems) lines.push(`  ! ${p.problem}: run ${p.fix}`);
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

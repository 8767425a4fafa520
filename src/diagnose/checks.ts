/**
 * The checks behind `oauthmail test`, in order. Each returns pass, fail or skipped with a one-line
 * reason, the fix for a failure, and its exit code (and that code's name, the kind). A check
 * whose prerequisite failed is skipped and says which one.
 *
 *   1. profile  the profile is complete and consistent (scopes, audience, credentials, servers)
 *   2. token    an access token can be had silently (a refresh proves the stored sign-in still works)
 *   3. claims   what the token allows: audience, scp or roles, user, tenant, app, expiry (JWT), or
 *               the provider's token-info endpoint for opaque tokens (Google)
 *   4. smtp     connect, TLS, EHLO, XOAUTH2/OAUTHBEARER offered, AUTH, without sending
 *   5. imap     connect, TLS, CAPABILITY, AUTHENTICATE, SELECT INBOX (RFC 9051)
 *   6. send     with --send-to only: a short test message
 *
 * The mail checks use the SMTP and IMAP clients of `send` and `fetch` (./checks/smtp.ts,
 * ./checks/imap.ts); the transcript comes from their logs, with the token redacted.
 */
import {
  AuthError,
  ConfigError,
  ExitCode,
  InternalError,
  InterruptedError,
  MailServerError,
  TransientError,
  UsageError,
  type OauthmailError,
} from '../errors/index.js';
import { redact } from '../util/redact.js';
import { checkProfile } from './checks/profile.js';
import { checkClaims, checkToken } from './checks/token.js';
import { checkSmtp } from './checks/smtp.js';
import { checkImap, checkSend } from './checks/imap.js';
import {
  TITLES,
  fromError,
  type Body,
  type CheckId,
  type CheckResult,
  type CheckDeps,
  type Ctx,
  type TestReport,
} from './checks/types.js';

export {
  CHECK_IDS,
  KIND_EXIT,
  type CheckId,
  type CheckStatus,
  type CheckResult,
  type CheckDeps,
  type FailureKind,
  type TestReport,
} from './checks/types.js';
export { renderReport } from './checks/render.js';

async function run(id: CheckId, c: Ctx, body: Body): Promise<CheckResult> {
  const r: CheckResult = {
    id,
    title: TITLES[id],
    status: 'pass',
    summary: '',
    warnings: [],
    details: {},
    durationMs: 0,
  };
  const t0 = Date.now();
  try {
    r.summary = await body(c, r);
  } catch (e) {
    // Ctrl-C or SIGTERM during a token refresh: the run stops (130/143), it is not a finding
    if (e instanceof InterruptedError) throw e;
    const f = fromError(e);
    r.status = 'fail';
    r.summary = redact(f.message);
    r.fix = redact(f.fix);
    r.kind = f.kind;
    r.exitCode = f.exitCode;
    r.code = f.code;
  }
  r.durationMs = Date.now() - t0;
  return r;
}

function skipped(id: CheckId, why: string): CheckResult {
  return { id, title: TITLES[id], status: 'skipped', summary: why, warnings: [], details: {}, durationMs: 0 };
}

/** Run every check in order; dependent checks are skipped after a failure. */
export async function runChecks(deps: CheckDeps): Promise<TestReport> {
  const c: Ctx = { deps };
  const p = deps.profile;
  const checks: CheckResult[] = [];
  const add = (r: CheckResult) => (checks.push(r), r);

  const prof = add(await run('profile', c, checkProfile));
  const tok =
    prof.status === 'pass'
      ? add(await run('token', c, checkToken))
      : add(skipped('token', 'skipped: the profile check failed'));
  const claims =
    tok.status === 'pass'
      ? add(await run('claims', c, checkClaims))
      : add(skipped('claims', `skipped: the ${tok.status === 'fail' ? 'token' : 'profile'} check failed`));
  const ready = claims.status === 'pass';
  const firstFailed = () => checks.find((x) => x.status === 'fail')?.id;

  let smtp: CheckResult | undefined;
  if (!p.capabilities.includes('send'))
    smtp = add(skipped('smtp', 'skipped: the profile does not send (capability send is off)'));
  else if (!ready) smtp = add(skipped('smtp', `skipped: the ${firstFailed()} check failed`));
  else smtp = add(await run('smtp', c, checkSmtp));

  if (!p.capabilities.includes('read'))
    add(skipped('imap', 'skipped: the profile does not read (capability read is off)'));
  else if (!ready) add(skipped('imap', `skipped: the ${firstFailed()} check failed`));
  else add(await run('imap', c, checkImap));

  if (deps.sendTo) {
    if (smtp.status === 'pass') add(await run('send', c, checkSend));
    else add(skipped('send', 'skipped: the smtp check did not pass'));
  }

  const failed = checks.find((x) => x.status === 'fail');
  return {
    version: 1,
    profile: deps.name,
    provider: p.provider,
    user: p.user ?? null,
    ok: !failed,
    exitCode: failed?.exitCode ?? 0,
    checks,
  };
}

/**
 * The error `oauthmail test` ends with: the first failed check, with that failure's own exit code
 * (a usage error stays 2), its code and its fix as the hint; undefined when all passed.
 */
export function checkFailure(report: TestReport): OauthmailError | undefined {
  const first = report.checks.find((c) => c.status === 'fail');
  if (!first) return undefined;
  const msg = `${first.id} check failed: ${first.summary}`;
  const o = { code: first.code ?? 'test_failed', ...(first.fix ? { hint: first.fix } : {}) };
  switch (first.exitCode) {
    case ExitCode.USAGE:
      return new UsageError(msg, o);
    case ExitCode.CONFIG:
      return new ConfigError(msg, o);
    case ExitCode.AUTH:
      return new AuthError(msg, o);
    case ExitCode.MAIL:
      return new MailServerError(msg, o);
    case ExitCode.TRANSIENT:
      return new TransientError(msg, o);
    default:
      return new InternalError(msg, o);
  }
}

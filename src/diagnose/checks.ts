/**
 * The checks behind `oauthmail test`, in order. Each returns pass, fail or skipped with a one-line
 * reason, the fix for a failure, and the kind of failure (which is the exit code's kind). A check
 * whose prerequisite failed is skipped and says which one.
 *
 *   1. profile  the profile is complete and consistent (scopes, audience, credentials, servers)
 *   2. token    an access token can be had silently (a refresh proves the stored sign-in still works)
 *   3. claims   what the token allows: audience, scp or roles, user, tenant, app, expiry (JWT), or
 *               the provider's token-info endpoint for opaque tokens (Google)
 *   4. smtp     connect, TLS, EHLO, XOAUTH2/OAUTHBEARER offered, AUTH, without sending (RFC 5321,
 *               RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 7628 OAUTHBEARER)
 *   5. imap     connect, TLS, CAPABILITY, AUTHENTICATE, SELECT INBOX (RFC 9051)
 *   6. send     with --send-to only: a short test message
 *
 * The SMTP check speaks SMTP itself (a few commands) so that it can report which step failed and
 * keep a transcript; the token and its SASL encoding never appear in it.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Profile } from '../config/schema.js';
import {
  MICROSOFT_APP_ONLY_SCOPE,
  MICROSOFT_SCOPES,
  GOOGLE_MAIL_SCOPE,
  GOOGLE_TOKEN_ENDPOINT,
} from '../config/presets.js';
import { ExitCode, isOauthmailError } from '../errors/index.js';
import type { TokenProvider } from '../auth/types.js';
import { registerSecret, redact } from '../util/redact.js';
import { isLoopbackAddress } from '../mail/tls.js';
import { decodeJwt, summarizeJwt, type TokenSummary } from '../auth/jwt.js';
import { adviseSmtpReply } from '../mail/smtp-replies.js';
import { MICROSOFT_APP_ROLES, MICROSOFT_SCP } from './scopes.js';

export const CHECK_IDS = ['profile', 'token', 'claims', 'smtp', 'imap', 'send'] as const;
export type CheckId = (typeof CHECK_IDS)[number];
export type CheckStatus = 'pass' | 'fail' | 'skipped';
export type FailureKind = 'config' | 'auth' | 'mail' | 'transient' | 'error';

export const KIND_EXIT: Record<FailureKind, number> = {
  error: ExitCode.ERROR,
  config: ExitCode.CONFIG,
  auth: ExitCode.AUTH,
  mail: ExitCode.MAIL,
  transient: ExitCode.TRANSIENT,
};

export interface CheckResult {
  id: CheckId;
  title: string;
  status: CheckStatus;
  /** One line: what was found (pass), what went wrong (fail), or why it did not run (skipped). */
  summary: string;
  /** The fix, for a failure. */
  fix?: string;
  kind?: FailureKind;
  exitCode?: number;
  /** Stable code of the failure, e.g. missing_scope, AADSTS65001, smtp_auth_refused. */
  code?: string;
  /** Things that did not fail the check but are worth knowing. */
  warnings: string[];
  /** What the check saw (never a token). */
  details: Record<string, string | number | boolean | string[] | null>;
  durationMs: number;
}

export interface TestReport {
  version: 1;
  profile: string;
  provider: string;
  user: string | null;
  ok: boolean;
  exitCode: number;
  checks: CheckResult[];
}

export interface CheckDeps {
  name: string;
  profile: Profile;
  /** The profile's TokenProvider (may throw, e.g. provider not supported). */
  provider: () => Promise<TokenProvider>;
  /** Whether the profile's secret or certificate is stored (client-credentials). */
  hasCredential?: () => Promise<boolean>;
  /** A token to test instead of the profile's sign-in (`--token-stdin`). */
  token?: string;
  sendTo?: string;
  caFile?: string;
  insecureTls?: boolean;
  timeoutMs?: number;
  /** Redacted protocol lines for --verbose. */
  transcript?: (line: string) => void;
  /** Token-info for opaque tokens (tests inject; default: HTTPS POST). */
  fetch?: typeof fetch;
  now?: () => Date;
}

class Fail extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly fix: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const KIND_OF_EXIT: Record<number, FailureKind> = {
  1: 'error',
  2: 'config',
  3: 'config',
  4: 'auth',
  5: 'mail',
  6: 'transient',
};

function fromError(e: unknown): Fail {
  if (e instanceof Fail) return e;
  if (isOauthmailError(e)) {
    return new Fail(
      e.message,
      KIND_OF_EXIT[e.exitCode] ?? 'error',
      e.hint ?? 'run again with --verbose',
      e.code,
    );
  }
  const err = e as { message?: string };
  return new Fail(
    redact(err?.message ?? String(e)),
    'error',
    'run again with --verbose for details',
    'unexpected',
  );
}

const TITLES: Record<CheckId, string> = {
  profile: 'profile is complete and consistent',
  token: 'an access token can be obtained',
  claims: 'the token carries the needed permissions',
  smtp: 'SMTP: connect, TLS, EHLO, OAuth offered, AUTH',
  imap: 'IMAP: connect, TLS, CAPABILITY, AUTHENTICATE, SELECT INBOX',
  send: 'a test message can be sent',
};

interface Ctx {
  deps: CheckDeps;
  token?: string;
  summary?: TokenSummary;
  /** The user the token was issued to, when known. */
  tokenUser?: string;
}

type Body = (c: Ctx, r: CheckResult) => Promise<string>;

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
    const f = fromError(e);
    r.status = 'fail';
    r.summary = redact(f.message);
    r.fix = redact(f.fix);
    r.kind = f.kind;
    r.exitCode = KIND_EXIT[f.kind];
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

// ---- 1. profile ------------------------------------------------------------------------------

const GRAPH = 'https://graph.microsoft.com';

async function checkProfile(c: Ctx, r: CheckResult): Promise<string> {
  const { name, profile: p } = c.deps;
  const edit = (kv: string) => `oauthmail profile edit ${name} --set ${kv}`;
  r.details = {
    provider: p.provider,
    flow: p.flow,
    clientType: p.clientType,
    capabilities: p.capabilities,
    scopes: p.scopes,
    user: p.user ?? null,
  };
  if (!p.user)
    throw new Fail(`profile ${name} has no mailbox user`, 'config', edit('user=you@example.com'), 'no_user');
  if (!p.capabilities.length)
    throw new Fail(
      'the profile has no capabilities (send, read)',
      'config',
      edit('capabilities=send,read'),
      'no_capabilities',
    );
  if (p.capabilities.includes('send') && !p.smtp) {
    throw new Fail(
      'the profile sends but has no SMTP server',
      'config',
      `oauthmail profile edit ${name} --smtp HOST:PORT --smtp-security starttls`,
      'no_smtp',
    );
  }
  if (p.capabilities.includes('read') && !p.imap) {
    throw new Fail(
      'the profile reads but has no IMAP server',
      'config',
      `oauthmail profile edit ${name} --imap HOST:PORT --imap-security tls`,
      'no_imap',
    );
  }
  if (
    p.flow === 'client-credentials' &&
    c.deps.hasCredential &&
    !c.deps.token &&
    !(await c.deps.hasCredential())
  ) {
    throw new Fail(
      `a client-credentials profile needs its client ${p.clientType === 'certificate' ? 'certificate' : 'secret'}, and none is stored`,
      'config',
      p.clientType === 'certificate'
        ? `oauthmail profile secret ${name} --certificate FILE.pem`
        : `oauthmail profile secret ${name} --stdin`,
      'no_credential',
    );
  }
  const scopes = p.scopes;
  if (p.provider === 'microsoft') {
    const graphish = scopes.filter(
      (s) =>
        /^(SMTP\.Send|IMAP\.AccessAsUser\.All|POP\.AccessAsUser\.All|Mail\.\w+)$/.test(s) ||
        s.startsWith(GRAPH),
    );
    if (graphish.length) {
      const fixed = scopes.map((s) => {
        const bare = s.replace(`${GRAPH}/`, '');
        return bare === 'SMTP.Send' || bare === 'IMAP.AccessAsUser.All' || bare === 'POP.AccessAsUser.All'
          ? `https://outlook.office.com/${bare}`
          : s;
      });
      throw new Fail(
        `scopes ${graphish.join(', ')} ask Microsoft Graph for the token; the SMTP and IMAP servers refuse Graph tokens`,
        'config',
        `${edit(`scopes="${fixed.filter((s) => !s.startsWith('Mail.')).join(' ')}"`)}, then: oauthmail login ${name}`,
        'graph_scopes',
      );
    }
    if (p.flow === 'client-credentials') {
      if (!scopes.includes(MICROSOFT_APP_ONLY_SCOPE)) {
        throw new Fail(
          `an app-only profile must ask for ${MICROSOFT_APP_ONLY_SCOPE}`,
          'config',
          edit(`scopes=${MICROSOFT_APP_ONLY_SCOPE}`),
          'app_only_scope',
        );
      }
    } else {
      for (const cap of p.capabilities) {
        const want = MICROSOFT_SCOPES[cap];
        if (!scopes.includes(want)) {
          throw new Fail(
            `the profile ${cap === 'send' ? 'sends' : 'reads'} but does not ask for ${want}`,
            'config',
            `${edit(`scopes="${[...scopes, want].join(' ')}"`)}, then: oauthmail login ${name}`,
            'missing_scope',
          );
        }
      }
      if (!scopes.includes('offline_access')) {
        r.warnings.push(
          `no offline_access scope: the sign-in cannot be refreshed and ends with the access token (about an hour)`,
        );
      }
    }
  } else if (p.provider === 'google') {
    if (!scopes.includes(GOOGLE_MAIL_SCOPE)) {
      const hasSend = scopes.some((s) => s.includes('gmail.send'));
      throw new Fail(
        `a Google profile must ask for ${GOOGLE_MAIL_SCOPE}${hasSend ? ' (gmail.send is not accepted by SMTP AUTH)' : ''}`,
        'config',
        `${edit(`scopes=${GOOGLE_MAIL_SCOPE}`)}, then: oauthmail login ${name}`,
        'missing_scope',
      );
    }
  }
  for (const [which, s] of [
    ['smtp', p.smtp],
    ['imap', p.imap],
  ] as const) {
    if (s && s.security === 'none' && !/^(localhost|127\.[\d.]+|::1|\[::1\])$/i.test(s.host)) {
      throw new Fail(
        `${which} security is "none" for ${s.host}: the token would travel in clear text`,
        'config',
        `oauthmail profile edit ${name} --${which}-security ${which === 'smtp' ? 'starttls' : 'tls'}`,
        'tls_required',
      );
    }
  }
  if (p.clientSecretExpires) {
    const days = Math.floor(
      (Date.parse(p.clientSecretExpires + 'T00:00:00Z') - (c.deps.now?.() ?? new Date()).getTime()) /
        86_400_000,
    );
    if (days < 0) r.warnings.push(`the client secret expired on ${p.clientSecretExpires}`);
    else if (days <= 30)
      r.warnings.push(`the client secret expires in ${days} day(s), on ${p.clientSecretExpires}`);
  }
  return `${p.provider} profile, flow ${p.flow}, ${p.capabilities.join(' + ')}, mailbox ${p.user}`;
}

// ---- 2. token --------------------------------------------------------------------------------

async function checkToken(c: Ctx, r: CheckResult): Promise<string> {
  if (c.deps.token) {
    c.token = c.deps.token;
    registerSecret(c.token);
    r.details = { source: 'stdin' };
    return 'using the access token given on stdin (the stored sign-in is not checked)';
  }
  const provider = await c.deps.provider();
  // a forced refresh: a cached access token proves nothing about the refresh token, which is
  // what breaks (expiry, revocation, consent withdrawn) while a cron job is not looking
  const t = await provider.getToken({ forceRefresh: true });
  c.token = t.accessToken;
  registerSecret(c.token);
  r.details = {
    source: 'identity provider',
    account: t.account,
    expiresOn: t.expiresOn ? t.expiresOn.toISOString() : null,
    scopes: t.scopes,
  };
  return `got a new access token${t.account ? ` for ${t.account}` : ' (app-only)'} from the identity provider${t.expiresOn ? `, valid until ${t.expiresOn.toISOString()}` : ''}`;
}

// ---- 3. claims -------------------------------------------------------------------------------

const EXCHANGE_AUDIENCES = new Set([
  'https://outlook.office.com',
  'https://outlook.office365.com',
  '00000002-0000-0ff1-ce00-000000000000',
]);
const GRAPH_AUDIENCES = new Set([GRAPH, '00000003-0000-0000-c000-000000000000']);

async function checkClaims(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p, name } = c.deps;
  const token = c.token!;
  if (p.provider === 'google') return googleTokenInfo(c, r);
  const s = summarizeJwt(token);
  if (!s) {
    r.details = { format: 'opaque' };
    r.warnings.push('the token is opaque (not a JWT): its permissions are checked by the mail servers below');
    return 'opaque token: nothing to read; the mail servers decide';
  }
  c.summary = s;
  c.tokenUser = s.user;
  const now = c.deps.now?.() ?? new Date();
  r.details = {
    audience: s.audience ?? null,
    scopes: s.scopes,
    roles: s.roles,
    user: s.user ?? null,
    tenant: s.tenantId ?? null,
    appId: s.appId ?? null,
    expiresAt: s.expiresAt ? s.expiresAt.toISOString() : null,
  };
  if (p.provider !== 'microsoft') {
    if (s.expiresAt && s.expiresAt <= now)
      throw new Fail(
        `the token expired at ${s.expiresAt.toISOString()}`,
        'auth',
        `run: oauthmail login ${name}`,
        'token_expired',
      );
    return `JWT for ${s.user ?? s.subject ?? 'an unknown subject'}${s.scopes.length ? `, scopes ${s.scopes.join(' ')}` : ''}`;
  }
  const aud = (s.audience ?? '').replace(/\/$/, '');
  if (GRAPH_AUDIENCES.has(aud)) {
    throw new Fail(
      `the token is for Microsoft Graph (aud ${s.audience}), which the SMTP and IMAP servers refuse`,
      'auth',
      `ask for Exchange Online scopes (${p.capabilities.map((x) => MICROSOFT_SCOPES[x]).join(' ')}), not Graph's: check the profile's scopes, then: oauthmail login ${name}`,
      'graph_audience',
    );
  }
  if (!EXCHANGE_AUDIENCES.has(aud)) {
    throw new Fail(
      `the token is for ${s.audience ?? 'no audience'}, not Exchange Online (https://outlook.office.com)`,
      'auth',
      `ask for https://outlook.office.com/... scopes, then: oauthmail login ${name}`,
      'wrong_audience',
    );
  }
  if (s.expiresAt && s.expiresAt <= now) {
    throw new Fail(
      `the token expired at ${s.expiresAt.toISOString()}`,
      'auth',
      `run: oauthmail login ${name}`,
      'token_expired',
    );
  }
  if (p.clientId && s.appId && s.appId !== p.clientId) {
    r.warnings.push(`the token was issued to app ${s.appId}, not the profile's clientId ${p.clientId}`);
  }
  // Entra: delegated tokens carry `scp`, app-only tokens carry `roles` and no `scp`
  const hasScp = typeof decodeJwt(token)?.claims.scp === 'string';
  const appOnly = !hasScp && (s.roles.length > 0 || !s.user);
  if (appOnly) {
    const missing = p.capabilities.filter((cap) => !s.roles.includes(MICROSOFT_APP_ROLES[cap]));
    if (missing.length) {
      const roles = missing.map((m) => MICROSOFT_APP_ROLES[m]);
      throw new Fail(
        `the app-only token lacks the application permission${roles.length > 1 ? 's' : ''} ${roles.join(' and ')} (roles: ${s.roles.join(' ') || 'none'})`,
        'auth',
        `in the app registration add Office 365 Exchange Online → Application permissions → ${roles.join(', ')}, and have an administrator grant admin consent (oauthmail consent-url ${name} --admin); see: oauthmail guide ${name}`,
        'missing_role',
      );
    }
    if (s.user && p.user && s.user.toLowerCase() !== p.user.toLowerCase()) {
      r.warnings.push(
        `the app has mailbox access recorded for ${s.user}, the profile's mailbox is ${p.user}`,
      );
    }
    return `app-only token for Exchange Online, roles ${s.roles.join(' ')}${s.tenantId ? `, tenant ${s.tenantId}` : ''}`;
  }
  const missing = p.capabilities.filter((cap) => !s.scopes.includes(MICROSOFT_SCP[cap]));
  if (missing.length) {
    const names = missing.map((m) => MICROSOFT_SCP[m]);
    throw new Fail(
      `the token lacks ${names.join(' and ')} (scp: ${s.scopes.join(' ') || 'none'})`,
      'auth',
      `the app registration must list ${names.join(', ')} (oauthmail guide ${name}) and the user must consent: oauthmail login ${name} --prompt consent (or an administrator: oauthmail consent-url ${name} --admin)`,
      'missing_scope',
    );
  }
  if (s.user && p.user && s.user.toLowerCase() !== p.user.toLowerCase()) {
    r.warnings.push(
      `the token is for ${s.user} but the profile's mailbox is ${p.user}: this works only if ${s.user} has FullAccess (IMAP) and Send As (SMTP) on it`,
    );
  }
  return `token for ${s.user ?? 'an unknown user'} with ${s.scopes.join(' ')}${s.tenantId ? `, tenant ${s.tenantId}` : ''}`;
}

/** Google access tokens are opaque: ask the token-info endpoint what the token allows. */
async function googleTokenInfo(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p, name } = c.deps;
  const base = p.tokenEndpoint ?? GOOGLE_TOKEN_ENDPOINT;
  const url = base.replace(/\/token$/, '/tokeninfo');
  const f = c.deps.fetch ?? fetch;
  let res: Response;
  try {
    // the token goes in the body, never in a URL that could end up in a log
    res = await f(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: c.token! }).toString(),
      signal: AbortSignal.timeout(c.deps.timeoutMs ?? 15_000),
    });
  } catch (e) {
    throw new Fail(
      `could not reach Google's token-info endpoint ${url}: ${(e as Error).message}`,
      'transient',
      'check the network; this is safe to retry',
      'tokeninfo_network',
    );
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    throw new Fail(
      `Google says the token is not valid (${String(body.error_description ?? body.error ?? `HTTP ${res.status}`)})`,
      'auth',
      `run: oauthmail login ${name}`,
      'token_invalid',
    );
  }
  const scopes = String(body.scope ?? '')
    .split(' ')
    .filter(Boolean);
  const email = typeof body.email === 'string' ? body.email : undefined;
  c.tokenUser = email;
  r.details = {
    format: 'opaque (token-info)',
    scopes,
    user: email ?? null,
    audience: (body.aud as string) ?? null,
    expiresIn: Number(body.expires_in ?? 0) || null,
  };
  if (!scopes.includes(GOOGLE_MAIL_SCOPE)) {
    throw new Fail(
      `the token lacks ${GOOGLE_MAIL_SCOPE} (scopes: ${scopes.join(' ') || 'none'})`,
      'auth',
      `add ${GOOGLE_MAIL_SCOPE} to the consent screen's scopes (oauthmail guide ${name}), then: oauthmail login ${name}`,
      'missing_scope',
    );
  }
  if (email && p.user && email.toLowerCase() !== p.user.toLowerCase()) {
    r.warnings.push(
      `the token is for ${email} but the profile's mailbox is ${p.user}; Gmail will refuse that`,
    );
  }
  return `token for ${email ?? 'an unknown account'} with ${scopes.join(' ')} (from Google's token-info)`;
}

/** The JSON of a SASL error challenge (RFC 7628 §3.2.2), as one clause. */
function saslErrorReason(b64: string): string {
  try {
    const o = JSON.parse(Buffer.from(b64.trim(), 'base64').toString('utf8')) as Record<string, unknown>;
    const status = String(o.status ?? '');
    const why =
      status === 'invalid_token' || status === '401'
        ? 'the token is invalid or expired'
        : status === 'insufficient_scope' || status === '403'
          ? 'the token lacks the scope the server requires'
          : status
            ? `status ${status}`
            : '';
    return [why, typeof o.scope === 'string' ? `required scope: ${o.scope}` : ''].filter(Boolean).join('; ');
  } catch {
    return '';
  }
}

// ---- 4. SMTP ---------------------------------------------------------------------------------

const TLS_VERIFY = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO|HOSTNAME|ALTNAME|ERR_TLS_CERT/;

function tlsFail(host: string, e: NodeJS.ErrnoException, what: string): Fail {
  if (e.code && TLS_VERIFY.test(e.code)) {
    return new Fail(
      `TLS failed: the certificate of ${host} is not trusted (${e.code})`,
      'config',
      "check that the host name is the server's real name; for a private CA pass --ca FILE (PEM)",
      'tls_verify',
    );
  }
  return new Fail(
    `TLS failed on ${what}: ${e.message}`,
    'config',
    'check the port and security: 465 = tls (implicit), 587 = starttls; a plain-text port cannot do TLS',
    'tls_failed',
  );
}

/** Replies as they arrive; `next()` resolves with one whole (possibly multi-line) reply. */
class Replies {
  private buf = '';
  private lines: string[] = [];
  private queue: Array<{
    resolve: (r: { code: number; lines: string[] }) => void;
    reject: (e: Error) => void;
  }> = [];
  private ended: Error | undefined;
  constructor(private readonly log: (l: string) => void) {}
  attach(sock: net.Socket): void {
    sock.on('data', (d: Buffer) => this.push(d.toString('latin1')));
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () =>
      this.fail(Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' })),
    );
  }
  detach(sock: net.Socket): void {
    sock.removeAllListeners('data');
    sock.removeAllListeners('error');
    sock.removeAllListeners('close');
  }
  private push(s: string): void {
    this.buf += s;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      this.log(`S: ${line}`);
      this.lines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) {
        const lines = this.lines;
        this.lines = [];
        this.queue.shift()?.resolve({ code: Number(line.slice(0, 3)), lines });
      }
    }
  }
  private fail(e: Error): void {
    this.ended ??= e;
    for (const q of this.queue.splice(0)) q.reject(e);
  }
  next(): Promise<{ code: number; lines: string[] }> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.queue.push({ resolve, reject }));
  }
}

async function checkSmtp(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p } = c.deps;
  const smtp = p.smtp!;
  const host = smtp.host.replace(/^\[|\]$/g, '');
  const timeout = c.deps.timeoutMs ?? 20_000;
  const log = (l: string) => c.deps.transcript?.(redact(`smtp ${l}`));
  const ca = c.deps.caFile ? readFileSync(c.deps.caFile, 'utf8') : undefined;
  const tlsOpts = {
    rejectUnauthorized: !c.deps.insecureTls,
    minVersion: 'TLSv1.2' as const,
    ...(net.isIP(host) ? {} : { servername: host }),
    ...(ca ? { ca } : {}),
  };
  const replies = new Replies(log);
  const steps: string[] = [];
  r.details = { host, port: smtp.port, security: smtp.security };
  let sock: net.Socket;

  // connect (and the TLS handshake for implicit TLS, RFC 8314)
  sock = await new Promise<net.Socket>((resolve, reject) => {
    const s =
      smtp.security === 'tls'
        ? tls.connect({ host, port: smtp.port, ...tlsOpts }, () => resolve(s))
        : net.connect({ host, port: smtp.port }, () => resolve(s));
    s.setTimeout(timeout, () =>
      s.destroy(Object.assign(new Error(`no answer in ${timeout} ms`), { code: 'ETIMEDOUT' })),
    );
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (
        smtp.security === 'tls' &&
        !/^E(CONNREFUSED|NOTFOUND|HOSTUNREACH|NETUNREACH|AI_AGAIN|TIMEDOUT)$/.test(e.code ?? '')
      )
        reject(tlsFail(host, e, `${host}:${smtp.port}`));
      else
        reject(
          new Fail(
            `could not connect to ${host}:${smtp.port} (${e.code ?? e.message})`,
            'transient',
            "check the network and the profile's smtp host and port; this is safe to retry",
            'smtp_connect',
          ),
        );
    });
  });
  log(`connected to ${host}:${smtp.port}${smtp.security === 'tls' ? ' (TLS)' : ''}`);
  steps.push('connect');
  if (smtp.security === 'tls') steps.push('TLS');
  replies.attach(sock);
  const send = (line: string, shown = line) => {
    log(`C: ${shown}`);
    sock.write(line + '\r\n');
  };
  const expect = async (what: string) => {
    try {
      return await replies.next();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code && (TLS_VERIFY.test(err.code) || /SSL|TLS/.test(err.code))) throw tlsFail(host, err, what);
      throw new Fail(
        `the SMTP connection failed during ${what}: ${err.message}`,
        'transient',
        'this is safe to retry; if it keeps failing, check the port and security',
        'smtp_network',
      );
    }
  };
  try {
    const greet = await expect('the greeting');
    if (greet.code !== 220) {
      throw new Fail(
        `the server did not greet (${greet.lines.join(' ')})`,
        greet.code >= 500 ? 'mail' : 'transient',
        'check the smtp host and port',
        'smtp_greeting',
      );
    }
    const ehlo = async () => {
      send('EHLO oauthmail.localhost');
      const e = await expect('EHLO');
      if (e.code !== 250)
        throw new Fail(
          `EHLO was refused (${e.lines.join(' ')})`,
          'mail',
          'check the smtp host and port',
          'smtp_ehlo',
        );
      return e.lines.map((l) => l.slice(4).trim().toUpperCase());
    };
    let ext = await ehlo();
    steps.push('EHLO');
    if (smtp.security === 'starttls') {
      if (!ext.includes('STARTTLS')) {
        throw new Fail(
          `${host}:${smtp.port} does not offer STARTTLS`,
          'config',
          'use the submission port 587 with starttls, or 465 with --smtp-security tls',
          'smtp_no_starttls',
        );
      }
      send('STARTTLS');
      const st = await expect('STARTTLS');
      if (st.code !== 220)
        throw new Fail(
          `STARTTLS was refused (${st.lines.join(' ')})`,
          'config',
          'check the port and security setting',
          'smtp_starttls_refused',
        );
      replies.detach(sock);
      const plain = sock;
      sock = await new Promise<net.Socket>((resolve, reject) => {
        const s = tls.connect({ socket: plain, ...tlsOpts }, () => resolve(s));
        s.once('error', (e: NodeJS.ErrnoException) => reject(tlsFail(host, e, 'STARTTLS')));
      });
      replies.attach(sock);
      log('TLS established (STARTTLS)');
      steps.push('STARTTLS');
      ext = await ehlo(); // RFC 3207 §4.2: forget what was said before TLS
    }
    const t = sock as tls.TLSSocket;
    if (typeof t.getProtocol === 'function') r.details.tls = t.getProtocol() ?? null;
    const mechs = ext
      .filter((l) => l.startsWith('AUTH ') || l.startsWith('AUTH='))
      .flatMap((l) => l.slice(5).split(/\s+/))
      .filter(Boolean);
    r.details.mechanisms = mechs;
    const hasX = mechs.includes('XOAUTH2');
    const hasB = mechs.includes('OAUTHBEARER');
    let mech: 'XOAUTH2' | 'OAUTHBEARER';
    if (p.sasl === 'xoauth2' ? hasX : p.sasl === 'oauthbearer' ? hasB : hasX || hasB) {
      mech = p.sasl === 'oauthbearer' || (p.sasl === 'auto' && !hasX) ? 'OAUTHBEARER' : 'XOAUTH2';
    } else {
      const want = p.sasl === 'auto' ? 'XOAUTH2 or OAUTHBEARER' : p.sasl.toUpperCase();
      throw new Fail(
        `${host}:${smtp.port} does not offer SASL ${want} (it offers: ${mechs.join(' ') || 'no AUTH at all'})`,
        'mail',
        p.sasl === 'auto'
          ? "this server does not take OAuth tokens: check the profile's smtp host and port (Microsoft 365: smtp.office365.com:587; Gmail: smtp.gmail.com:587)"
          : `let oauthmail pick the mechanism: oauthmail profile edit ${c.deps.name} --sasl auto`,
        'smtp_no_oauth',
      );
    }
    steps.push(`${mech} offered`);
    const user = p.user!;
    const token = c.token!;
    const ir =
      mech === 'XOAUTH2'
        ? Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64')
        : Buffer.from(
            `n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},\x01host=${host}\x01port=${smtp.port}\x01auth=Bearer ${token}\x01\x01`,
          ).toString('base64');
    registerSecret(ir);
    // plain text: the address connected to decides, not the name (mail.localhost can be anywhere)
    if (smtp.security === 'none' && !isLoopbackAddress(sock.remoteAddress)) {
      throw new Fail(
        `smtp security is "none" and ${host} is ${sock.remoteAddress ?? 'an unknown address'}, not loopback: the token would travel in clear text`,
        'config',
        `oauthmail profile edit ${c.deps.name} --smtp-security starttls`,
        'tls_required',
      );
    }
    send(`AUTH ${mech} ${ir}`, `AUTH ${mech} [REDACTED]`);
    let a = await expect('AUTH');
    let serverReason = '';
    if (a.code === 334) {
      // RFC 7628 §3.2.3 / XOAUTH2: an error challenge carrying JSON; answer it to get the final reply
      serverReason = saslErrorReason(a.lines[a.lines.length - 1]!.slice(4));
      send(mech === 'XOAUTH2' ? '' : 'AQ==');
      a = await expect('AUTH');
    }
    r.details.authReply = a.lines.join(' ');
    if (a.code !== 235) {
      const reply = a.lines.join(' ');
      const advice = adviseSmtpReply(reply, {
        user,
        profile: c.deps.name,
        provider: c.deps.profile.provider,
      });
      const tu = c.tokenUser;
      const mismatch = tu && tu.toLowerCase() !== user.toLowerCase();
      const reason = serverReason ? `; server's reason: ${serverReason}` : '';
      throw new Fail(
        mismatch
          ? `SMTP AUTH refused for ${user}: the token was issued to ${tu}, not to the mailbox (${reply})${reason}`
          : `SMTP AUTH refused for ${user} (${reply})${reason}`,
        a.code >= 400 && a.code < 500 ? 'transient' : 'mail',
        mismatch
          ? `set the profile's user to ${tu} (oauthmail profile edit ${c.deps.name} --set user=${tu}), or sign in as ${user}: oauthmail login ${c.deps.name}; a shared mailbox needs Send As for ${tu}`
          : advice.hint,
        mismatch ? 'smtp_wrong_user' : 'smtp_auth_refused',
      );
    }
    steps.push('AUTH');
    send('QUIT');
    await expect('QUIT').catch(() => undefined);
    return `${steps.join(', ')}: signed in to ${host}:${smtp.port} as ${user} with ${mech}`;
  } finally {
    sock.destroy();
  }
}

// ---- 5. IMAP ---------------------------------------------------------------------------------

async function checkImap(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p } = c.deps;
  const { connectImap, closeImap } = await import('../mail/imap.js');
  const { imapErrorFrom } = await import('../mail/imap-replies.js');
  const { staticTokenSource } = await import('../mail/token-source.js');
  const user = p.user!;
  r.details = { host: p.imap!.host, port: p.imap!.port, security: p.imap!.security };
  let conn;
  try {
    conn = await connectImap(
      p,
      { ...staticTokenSource(user, c.token!), profile: c.deps.name },
      {
        ...(c.deps.caFile ? { caFile: c.deps.caFile } : {}),
        ...(c.deps.insecureTls ? { insecureTls: true } : {}),
        connectionTimeoutMs: c.deps.timeoutMs ?? 20_000,
        debug: (l) => c.deps.transcript?.(redact(imapLine(l))),
      },
    );
  } catch (e) {
    const f = fromError(e);
    const tu = c.tokenUser;
    if (f.kind === 'mail' && tu && tu.toLowerCase() !== user.toLowerCase() && /auth/i.test(f.code)) {
      throw new Fail(
        `IMAP AUTHENTICATE refused for ${user}: the token was issued to ${tu}, not to the mailbox (${f.message})`,
        'mail',
        `set the profile's user to ${tu} (oauthmail profile edit ${c.deps.name} --set user=${tu}), or sign in as ${user}; a shared mailbox needs FullAccess for ${tu}`,
        'imap_wrong_user',
      );
    }
    if (f.code === 'tls_verify') throw new Fail(`TLS failed: ${f.message}`, 'config', f.fix, f.code);
    throw new Fail(
      f.message.replace(/PROFILE/g, c.deps.name),
      f.kind,
      f.fix.replace(/PROFILE/g, c.deps.name),
      f.code,
    );
  }
  try {
    const client = conn.client;
    r.details.mechanism = conn.mechanism;
    r.details.capabilities = [...client.capabilities.keys()].sort();
    let exists: number;
    try {
      const box = await client.mailboxOpen('INBOX', { readOnly: true });
      exists = box.exists;
    } catch (e) {
      throw fromError(imapErrorFrom(e, { user, host: p.imap!.host, mailbox: 'INBOX' }));
    }
    r.details.inboxMessages = exists;
    return `connect, TLS, CAPABILITY, AUTHENTICATE ${conn.mechanism}, SELECT INBOX (${exists} message${exists === 1 ? '' : 's'}) on ${p.imap!.host}:${p.imap!.port} as ${user}`;
  } finally {
    await closeImap(conn.client);
  }
}

/** imapflow's JSON log lines as "imap C: ..." / "imap S: ..." (the dialogue), else as they are. */
function imapLine(l: string): string {
  const m = /^imap \w+: (\{.*\})$/.exec(l);
  if (!m) return l;
  try {
    const o = JSON.parse(m[1]!) as { src?: string; msg?: string };
    if (o.src === 's') return `imap S: ${o.msg ?? ''}`;
    if (o.src === 'c') return `imap C: ${o.msg ?? ''}`;
    return `imap ${o.msg ?? l}`;
  } catch {
    return l;
  }
}

// ---- 6. send ---------------------------------------------------------------------------------

async function checkSend(c: Ctx, r: CheckResult): Promise<string> {
  const { profile: p, name } = c.deps;
  const { SmtpClient } = await import('../mail/smtp.js');
  const { buildMessage } = await import('../mail/message.js');
  const { staticTokenSource } = await import('../mail/token-source.js');
  const built = await buildMessage(
    {
      to: [c.deps.sendTo!],
      subject: `oauthmail test message (profile ${name})`,
      text: `This message was sent by "oauthmail test --send-to" to check that ${p.user} can send mail.\n`,
    },
    p,
  );
  const client = await SmtpClient.create(p, staticTokenSource(p.user!, c.token!), {
    ...(c.deps.caFile ? { caFile: c.deps.caFile } : {}),
    ...(c.deps.insecureTls ? { insecureTls: true } : {}),
    retry: { mode: 'none', maxAttempts: 1, initialDelayMs: 0, multiplier: 1, maxDelayMs: 0 },
    debug: (l) => c.deps.transcript?.(redact(l)),
  });
  try {
    const res = await client.send(built);
    r.details = { to: c.deps.sendTo!, messageId: res.messageId, response: res.response };
    return `sent to ${c.deps.sendTo}: ${res.response}`;
  } finally {
    client.close();
  }
}

// ---- rendering -------------------------------------------------------------------------------

/** The report for a terminal: one line per check, the fix under each failure. */
export function renderReport(rep: TestReport): string {
  const out: string[] = [];
  for (const ch of rep.checks) {
    const tag = ch.status === 'pass' ? 'PASS' : ch.status === 'fail' ? 'FAIL' : 'SKIP';
    out.push(`${tag}  ${ch.id.padEnd(9)}${ch.summary}`);
    for (const w of ch.warnings) out.push(`      warning: ${w}`);
    if (ch.status === 'fail') {
      if (ch.fix) out.push(`      fix: ${ch.fix}`);
      out.push(`      (${ch.kind} failure, exit ${ch.exitCode}${ch.code ? `, ${ch.code}` : ''})`);
    }
  }
  const failed = rep.checks.filter((x) => x.status === 'fail').length;
  out.push('');
  out.push(
    rep.ok
      ? `all checks passed for profile ${rep.profile}`
      : `${failed} check${failed > 1 ? 's' : ''} failed for profile ${rep.profile} (exit ${rep.exitCode})`,
  );
  return redact(out.join('\n'));
}

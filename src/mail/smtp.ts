/**
 * The SMTP side: a nodemailer transport built from a profile and a TokenSource.
 *
 * Tokens: SASL XOAUTH2 (Google's and Microsoft's mechanism) through nodemailer's
 * `provisionCallback`, or OAUTHBEARER (RFC 7628) through a custom auth handler. When the server
 * refuses a token that looked valid, we get exactly one forced refresh and one more AUTH, never
 * more: either nodemailer's own retry (the server answered AUTH with a 334 error challenge, as
 * Dovecot and Gmail do; RFC 7628 §3.2.3) or ours (the server answered 535 directly, as Exchange
 * Online does). A second refusal is final until a send succeeds again.
 *
 * Security: TLS is required (STARTTLS, RFC 3207, or implicit TLS, RFC 8314) for every host that is
 * not loopback; certificates are always verified unless the caller asked for --insecure-tls, which
 * warns. A private CA comes in with --ca FILE.
 */
import { format } from 'node:util';
import type { Transporter } from 'nodemailer';
import type { Profile, RetryPolicy } from '../config/schema.js';
import { DEFAULT_RETRY } from '../config/schema.js';
import { registerSecret, redact } from '../util/redact.js';
import { loggerLevels } from '../util/levels.js';
import type { TokenSource } from './token-source.js';
import type { BuiltMessage } from './message.js';
import { classify, toSendError, withRetry } from './retry.js';
import { plainLoopbackAddress, serverTls } from './tls.js';
import { saslErrorAnswer, saslInitialResponse } from './sasl.js';

export interface SmtpOptions {
  /** PEM file of a CA to trust (instead of the system roots) for a private server. */
  caFile?: string;
  /** Skip certificate verification (warned). */
  insecureTls?: boolean;
  /** One pooled transport for many messages (batches). */
  pool?: boolean;
  /** Parallel connections in the pool. */
  maxConnections?: number;
  /** Override the profile's retry policy. */
  retry?: RetryPolicy;
  /** Debug lines (already redacted here too) for --verbose. */
  debug?: (line: string) => void;
  warn?: (line: string) => void;
  /** Tests: a sleep that does not wait. */
  sleep?: (ms: number) => Promise<void>;
  connectionTimeoutMs?: number;
  /** Told before each retry ("retrying in 4 s (2/4): reason"); without it, --verbose only. */
  onRetry?: (line: string) => void;
}

export interface SendResult {
  messageId: string;
  response: string;
  accepted: string[];
  rejected: string[];
  envelope: { from: string; to: string[] };
  attempts: number;
}

/** Counters for tests and --verbose: forced refreshes and AUTH commands sent. */
export interface SmtpStats {
  refreshes: number;
  tokenRequests: number;
}

/** The transport options for a profile (exported for tests: checks TLS rules without connecting). */
export function transportOptions(
  profile: Pick<Profile, 'smtp' | 'timeout'>,
  opts: SmtpOptions = {},
): Record<string, unknown> {
  const { server: smtp, host, tls } = serverTls('smtp', profile.smtp, opts);
  const explicit =
    opts.connectionTimeoutMs ?? (profile.timeout !== undefined ? profile.timeout * 1000 : undefined);
  const timeout = explicit ?? 30_000;
  return {
    host,
    port: smtp.port,
    secure: smtp.security === 'tls',
    requireTLS: smtp.security === 'starttls',
    ignoreTLS: false,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    // a reply after DATA may take a while on a busy server: a minute unless a timeout was asked for
    socketTimeout: explicit ?? 60_000,
    tls,
  };
}

/**
 * The options of one SMTP connection for a profile, as `send` and `test` use them: `base` (host name,
 * port, TLS, timeouts) and `connectTo`, which for plain text (loopback only) replaces the host by
 * the loopback address the name resolves to, never the name itself (nodemailer would resolve it
 * again, DNS first); OAUTHBEARER's host= keeps the name.
 */
export async function connectionOptions(
  profile: Pick<Profile, 'smtp' | 'timeout'>,
  opts: SmtpOptions & { profile?: string } = {},
): Promise<{ base: Record<string, unknown>; connectTo: { host?: string } }> {
  const base = transportOptions(profile, opts);
  const connectTo =
    profile.smtp?.security === 'none' ? { host: await plainLoopbackAddress('smtp', String(base.host)) } : {};
  return { base, connectTo };
}

/** A bunyan-style logger for nodemailer that sends redacted lines to debug. */
function debugLogger(debug: (line: string) => void) {
  const log =
    (level: string) =>
    (_entry: unknown, message: string, ...args: unknown[]) =>
      debug(redact(`smtp ${level}: ${format(message, ...args)}`));
  return { level: log('level'), ...loggerLevels(log) };
}

interface SaslCtx {
  auth: { user?: string; credentials?: { user?: string } };
  sendCommand(cmd: string): Promise<{ status: number; code?: string; text: string; response: string }>;
}

export class SmtpClient {
  readonly stats: SmtpStats = { refreshes: 0, tokenRequests: 0 };
  private refreshed = false;
  private forceNext = false;
  /** What the token source threw during the last attempt (boxed: any value may be thrown). */
  private tokenError: { error: unknown } | undefined;
  private readonly policy: RetryPolicy;

  private constructor(
    private readonly transport: Transporter,
    private readonly source: TokenSource,
    private readonly profile: Profile,
    private readonly opts: SmtpOptions,
  ) {
    this.policy = opts.retry ?? profile.retry ?? DEFAULT_RETRY;
  }

  static async create(profile: Profile, source: TokenSource, opts: SmtpOptions = {}): Promise<SmtpClient> {
    const { base, connectTo } = await connectionOptions(profile, {
      ...(source.profile ? { profile: source.profile } : {}),
      ...opts,
    });
    const { default: nodemailer } = await import('nodemailer');
    // the instance is created below; the callbacks reach it through this holder
    const holder: { c?: SmtpClient } = {};
    const token = (renew: boolean) => holder.c!.token(renew);
    const useBearer = profile.sasl === 'oauthbearer';
    const auth = useBearer
      ? { type: 'custom', method: 'OAUTHBEARER', user: source.user, pass: 'unused' }
      : {
          type: 'OAuth2',
          user: source.user,
          provisionCallback: (
            _user: string,
            renew: boolean,
            cb: (err: Error | null, token?: string, expires?: number) => void,
          ) => {
            // expires = now: nodemailer asks again on every login; the TokenSource keeps the cache
            token(renew).then(
              (t) => cb(null, t, Date.now()),
              (e: Error) => cb(e),
            );
          },
        };
    const options: Record<string, unknown> = {
      ...base,
      ...connectTo,
      auth,
      ...(useBearer ? { customAuth: { OAUTHBEARER: (ctx: SaslCtx) => oauthBearer(ctx, base, token) } } : {}),
      ...(opts.debug ? { logger: debugLogger(opts.debug), debug: false } : { logger: false }),
      ...(opts.pool ? { pool: true, maxConnections: opts.maxConnections ?? 5, maxMessages: Infinity } : {}),
    };
    const transport = nodemailer.createTransport(options as never) as Transporter;
    const c = new SmtpClient(transport, source, profile, opts);
    holder.c = c;
    return c;
  }

  /** A token for AUTH; renew = the server refused the last one. At most one forced refresh per failure. */
  private async token(renew: boolean): Promise<string> {
    const force = renew || this.forceNext;
    if (force) {
      if (this.refreshed) {
        throw Object.assign(new Error('the server refused the token again after a refresh'), {
          code: 'EAUTH_AGAIN',
        });
      }
      this.refreshed = true;
      this.forceNext = false;
      this.stats.refreshes++;
      this.opts.debug?.('the server refused the access token; getting a new one (once)');
    }
    this.stats.tokenRequests++;
    try {
      const t = await this.source.getAccessToken({ forceRefresh: force });
      registerSecret(t);
      return t;
    } catch (e) {
      this.tokenError = { error: e };
      // nodemailer sets `code = 'EAUTH'` on the error it gets from here: hand it a stand-in, so
      // that the original (rethrown by sendOnce) keeps its own code
      throw Object.assign(new Error((e as Error)?.message ?? String(e)), { cause: e });
    }
  }

  private takeTokenError(): { error: unknown } | undefined {
    const te = this.tokenError;
    this.tokenError = undefined;
    return te;
  }

  private async sendOnce(built: BuiltMessage): Promise<SendResult & { attempts: number }> {
    const mail = { ...built.mail, envelope: built.envelope };
    const run = async () => {
      const info = await this.transport.sendMail(mail);
      this.refreshed = false; // a refusal after this send gets its own single refresh
      return info;
    };
    let info;
    try {
      info = await run();
    } catch (e) {
      const te = this.takeTokenError();
      if (te) throw te.error; // the identity provider failed (AuthError → exit 4), not the mail server
      if (classify(e).kind === 'auth' && !this.refreshed && (e as { code?: string }).code === 'EAUTH') {
        // 535 straight away (no 334 challenge): refresh once and log in once more ourselves
        this.forceNext = true;
        try {
          info = await run();
        } catch (e2) {
          const te2 = this.takeTokenError();
          throw te2 ? te2.error : e2;
        }
      } else {
        throw e;
      }
    }
    const i = info as { messageId?: string; response?: string; accepted?: unknown[]; rejected?: unknown[] };
    const addr = (a: unknown) =>
      typeof a === 'string' ? a : ((a as { address?: string })?.address ?? String(a));
    return {
      messageId: i.messageId ?? '',
      response: i.response ?? '',
      accepted: (i.accepted ?? []).map(addr),
      rejected: (i.rejected ?? []).map(addr),
      envelope: built.envelope,
      attempts: 1,
    };
  }

  /** Send one message, retrying temporary failures per the policy; throws an OauthmailError. */
  async send(built: BuiltMessage): Promise<SendResult> {
    let attempts = 0;
    try {
      const r = await withRetry(
        this.policy,
        async (attempt) => {
          attempts = attempt;
          return this.sendOnce(built);
        },
        {
          ...(this.opts.sleep ? { sleep: this.opts.sleep } : {}),
          // on stderr, not only under --verbose: a send that waits must say why and for how long
          onRetry: ({ attempt, delayMs, error }) =>
            (this.opts.onRetry ?? this.opts.debug)?.(
              `retrying in ${delayMs < 10_000 ? (delayMs / 1000).toFixed(1) : Math.round(delayMs / 1000)} s (${attempt + 1}/${this.policy.mode === 'none' ? 1 : this.policy.maxAttempts}): ${redact(oneLine(error))}`,
            ),
        },
      );
      return { ...r, attempts };
    } catch (e) {
      throw toSendError(e, {
        user: this.source.user,
        ...(this.source.profile ? { profile: this.source.profile } : {}),
        ...(this.source.provider ? { provider: this.source.provider } : {}),
        from: built.envelope.from,
        host: this.profile.smtp?.host,
        attempts,
      });
    }
  }

  close(): void {
    this.transport.close();
  }
}

/**
 * SASL OAUTHBEARER (RFC 7628 §3.1): "n,a=USER,^Ahost=H^Aport=P^Aauth=Bearer TOKEN^A^A". On failure
 * the server sends a 334 with a JSON error; the client answers %x01 and gets the final 535
 * (§3.2.3). Then one forced refresh and one more AUTH.
 */
async function oauthBearer(
  ctx: SaslCtx,
  base: Record<string, unknown>,
  token: (renew: boolean) => Promise<string>,
): Promise<void> {
  const user = ctx.auth.user ?? ctx.auth.credentials?.user ?? '';
  const attempt = async (renew: boolean) => {
    const t = await token(renew);
    const ir = saslInitialResponse('OAUTHBEARER', user, t, {
      host: String(base.host),
      port: String(base.port),
    });
    let r = await ctx.sendCommand(`AUTH OAUTHBEARER ${ir}`);
    if (r.status === 334) r = await ctx.sendCommand(saslErrorAnswer('OAUTHBEARER'));
    return r;
  };
  let r = await attempt(false);
  if (r.status === 235) return;
  if (r.status >= 500) r = await attempt(true);
  if (r.status === 235) return;
  throw Object.assign(new Error('Invalid login'), {
    code: 'EAUTH',
    responseCode: r.status,
    response: r.response,
  });
}

/** An error as one short line for a retry notice. */
function oneLine(e: unknown): string {
  const m = (e as Error | undefined)?.message ?? String(e);
  return m.replace(/\s+/g, ' ').trim().slice(0, 200);
}

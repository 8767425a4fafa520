/**
 * Retry policy for sending: which failures are temporary, how long to wait, when to give up, and
 * which error (exit code) the caller sees at the end.
 *
 * RFC 5321 §4.2.1: 4yz replies are transient negative completions ("the command may be
 * repeated"), 5yz are permanent ("the client SHOULD NOT repeat the exact request"). So 5xx is
 * never retried here (the one refresh-and-retry after a refused token lives in smtp.ts).
 * Connection resets, refusals and timeouts are temporary too.
 */
import type { RetryPolicy } from '../config/schema.js';
import {
  AuthError,
  ConfigError,
  MailServerError,
  OauthmailError,
  TransientError,
  isOauthmailError,
} from '../errors/index.js';
import { backoffDelay } from '../net/backoff.js';
import { mentionsRetryableNetworkCode } from '../net/errors.js';
import { retrying } from '../net/retry.js';
import { adviseSmtpReply, type ReplyContext } from './smtp-replies.js';

/** The 4xx replies retried by default (mode "status" with no list of its own). */
export const DEFAULT_RETRY_STATUS = [421, 432, 450, 451, 452];

/** The shape of a nodemailer error (only the fields we read). */
export interface SmtpErrorLike {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
  errno?: string | number;
}

export type FailureKind = 'temporary' | 'permanent' | 'auth' | 'tls' | 'local';

export function classify(err: unknown): { kind: FailureKind; status?: number } {
  if (isOauthmailError(err)) {
    if (err instanceof TransientError) return { kind: 'temporary' };
    if (err instanceof AuthError) return { kind: 'auth' };
    return { kind: 'local' };
  }
  const e = (err ?? {}) as SmtpErrorLike;
  const status = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  if (status !== undefined) {
    if (e.code === 'EAUTH' && status >= 500) return { kind: 'auth', status };
    if (status >= 400 && status < 500) return { kind: 'temporary', status };
    if (status >= 500) return { kind: 'permanent', status };
  }
  const text = `${e.code ?? ''} ${String(e.errno ?? '')} ${e.message ?? ''}`;
  if (
    e.code === 'ETLS' ||
    /certificate|self[- ]signed|unable to verify|UNABLE_TO|CERT_|ERR_TLS_CERT/i.test(text)
  )
    return { kind: 'tls' };
  if (e.code === 'EAUTH') return { kind: 'auth' };
  if (
    mentionsRetryableNetworkCode(text) ||
    e.code === 'ETIMEDOUT' ||
    e.code === 'ECONNECTION' ||
    e.code === 'ESOCKET' ||
    e.code === 'EDNS'
  ) {
    return { kind: 'temporary' };
  }
  return { kind: 'permanent' };
}

/** Does the policy retry this failure? */
export function isRetryable(policy: RetryPolicy, err: unknown): boolean {
  if (policy.mode === 'none') return false;
  const c = classify(err);
  if (c.kind !== 'temporary') return false;
  if (policy.mode === 'any' || c.status === undefined) return true;
  return (policy.statusCodes?.length ? policy.statusCodes : DEFAULT_RETRY_STATUS).includes(c.status);
}

export interface RetryHooks {
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

/** Run fn, retrying per the policy. maxAttempts counts the first try. Throws the last error as is. */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  hooks: RetryHooks = {},
): Promise<T> {
  const max = policy.mode === 'none' ? 1 : Math.max(1, policy.maxAttempts);
  return retrying(fn, {
    ...(hooks.sleep ? { sleep: hooks.sleep } : {}),
    onError: (error, attempt) => {
      if (attempt >= max || !isRetryable(policy, error)) return { retry: false };
      const delayMs = backoffDelay(policy, attempt, hooks.random);
      hooks.onRetry?.({ attempt, delayMs, error });
      return { retry: true, delayMs };
    },
  });
}

/**
 * Turn a send failure into the error the user sees: 6 for temporary failures (retries exhausted
 * or not allowed), 5 for a refusal, 4 when the token could not be had, 3 for a certificate we
 * cannot verify. The server's reply line is the message; never a token (nodemailer masks AUTH).
 */
export function toSendError(
  err: unknown,
  ctx: ReplyContext & { host?: string; attempts?: number } = {},
): OauthmailError {
  if (isOauthmailError(err)) return err;
  const e = (err ?? {}) as SmtpErrorLike;
  const c = classify(err);
  const reply = e.response?.split(/\r?\n/)[0]?.trim();
  const after = ctx.attempts && ctx.attempts > 1 ? ` (after ${ctx.attempts} attempts)` : '';
  switch (c.kind) {
    case 'temporary': {
      if (c.status !== undefined) {
        const a = adviseSmtpReply(reply, ctx);
        return new TransientError(`${a.message}${after}: ${reply}`, {
          code: 'smtp_temporary',
          hint: a.hint,
          cause: err,
        });
      }
      return new TransientError(
        `could not reach the mail server${ctx.host ? ' ' + ctx.host : ''}${after}: ${e.message ?? String(err)}`,
        {
          code: 'smtp_network',
          hint: "check the network and the profile's smtp host and port; this is safe to retry",
          cause: err,
        },
      );
    }
    case 'tls':
      return new ConfigError(
        `the mail server's certificate could not be verified: ${e.message ?? ''}`.trim(),
        {
          code: 'tls_verify',
          hint: 'for a private CA pass --ca FILE (PEM); check that the smtp host name matches the certificate',
          cause: err,
        },
      );
    case 'auth': {
      const a = adviseSmtpReply(reply, ctx);
      return new MailServerError(reply ? `${a.message}: ${reply}` : `${a.message}: ${e.message ?? ''}`, {
        code: 'smtp_auth_refused',
        hint: a.hint,
        cause: err,
        serverCode: c.status,
      });
    }
    case 'permanent':
    default: {
      if (reply) {
        const a = adviseSmtpReply(reply, ctx);
        return new MailServerError(`${a.message}: ${reply}`, {
          code: 'smtp_refused',
          hint: a.hint,
          cause: err,
          serverCode: c.status,
        });
      }
      return new MailServerError(`sending failed: ${e.message ?? String(err)}`, {
        code: 'smtp_failed',
        cause: err,
        serverCode: c.status,
      });
    }
  }
}

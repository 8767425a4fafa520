/**
 * Retry timing: the exponential backoff every retry loop uses, and the decisions for HTTP calls to an
 * identity provider (token endpoint, discovery).
 *
 * The exponential backoff with jitter (backoffDelay) is shared with sending (src/mail/retry.ts) and
 * the send queue; the other functions add the HTTP rules:
 * - RFC 6585 §4 (429) and RFC 9110 §15.6.4 (503) may carry `Retry-After`, either delay-seconds
 *   or an HTTP-date (RFC 9110 §10.2.3); we wait at least that long.
 * - A single wait is capped (MAX_SINGLE_WAIT_MS): a provider asking for minutes gets an exit 6
 *   now rather than a cron job sleeping silently.
 * - 4xx OAuth errors (invalid_grant, invalid_client, ...) are never retried: the same request
 *   gets the same answer (RFC 6749 §5.2).
 */
import type { RetryPolicy } from '../config/schema.js';

/**
 * Wait before retry number `retry` (1 = the first retry): initial × multiplier^(retry-1), capped at
 * maxDelayMs, with "full jitter" between half and all of it so that many cron jobs hit by the
 * same outage do not come back in step.
 */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = Math.min(
    policy.maxDelayMs,
    policy.initialDelayMs * Math.pow(policy.multiplier, Math.max(0, retry - 1)),
  );
  return Math.round(base / 2 + random() * (base / 2));
}

/** Statuses retried when the profile's policy is `any`, or `status` without HTTP codes of its own. */
export const DEFAULT_HTTP_RETRY_STATUS = [429, 503];
/** Also retried under mode `any`: gateway failures in front of the provider. */
const ANY_HTTP_RETRY_STATUS = [429, 500, 502, 503, 504];
/** Longest single wait, whatever the provider's Retry-After or the policy says. */
export const MAX_SINGLE_WAIT_MS = 60_000;

/**
 * `Retry-After` in milliseconds from now, or undefined when absent or unreadable.
 * Accepts delay-seconds ("120") and an HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT").
 */
export function parseRetryAfter(
  value: string | undefined | null,
  now: number = Date.now(),
): number | undefined {
  if (value === undefined || value === null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) {
    const s = Number(v);
    return Number.isSafeInteger(s) ? s * 1000 : undefined;
  }
  // an HTTP-date must name a day; Date.parse alone accepts far too much ("1", "a 2")
  if (!/^[A-Za-z]{3},?\s/.test(v)) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Is this HTTP status worth another try under the policy? */
export function isRetryableHttpStatus(policy: RetryPolicy, status: number): boolean {
  if (policy.mode === 'none') return false;
  if (policy.mode === 'any') return ANY_HTTP_RETRY_STATUS.includes(status);
  // mode status: the profile's list is shared with SMTP (4yz codes); only its HTTP-looking
  // entries (429, 5xx) count here, and with none of those the default applies.
  const own = (policy.statusCodes ?? []).filter((c) => c === 429 || (c >= 500 && c < 600));
  return (own.length ? own : DEFAULT_HTTP_RETRY_STATUS).includes(status);
}

export type RetryVerdict =
  { retry: true; delayMs: number } | { retry: false; reason: 'policy' | 'attempts' | 'too-long' };

/**
 * After failed attempt number `attempt` (1 = the first try), should we try again, and after how
 * long? `retryAfterMs` is the server's wish, if any. maxAttempts counts the first try.
 */
export function nextRetry(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
  maxSingleWaitMs: number = MAX_SINGLE_WAIT_MS,
): RetryVerdict {
  if (policy.mode === 'none') return { retry: false, reason: 'policy' };
  if (attempt >= Math.max(1, policy.maxAttempts)) return { retry: false, reason: 'attempts' };
  if (retryAfterMs !== undefined && retryAfterMs > maxSingleWaitMs)
    return { retry: false, reason: 'too-long' };
  const backoff = Math.min(backoffDelay(policy, attempt, random), maxSingleWaitMs);
  return { retry: true, delayMs: Math.max(backoff, retryAfterMs ?? 0) };
}

/**
 * The retry rules for every HTTP call to an identity provider, whichever library makes it:
 * MSAL (through our INetworkModule, network.ts), google-auth-library (gaxios, given our fetch),
 * openid-client (its customFetch) and our own form posts (generic.ts postForm).
 *
 * The rules (timing in src/net/backoff.ts, the loop in src/net/retry.ts): 429/503 answers (or the profile's own HTTP codes)
 * and network failures that can change on a second try are tried again per the profile's retry
 * policy, waiting at least the server's `Retry-After`; when the tries run out, the last answer is
 * returned to the library (which reports the provider's error, exit 6) or the last network error
 * is thrown (exit 6). Other 4xx answers (OAuth errors, RFC 6749 §5.2) are never retried.
 * `--verbose` shows each request's method, URL without query and status; never a body.
 */
import type { RetryPolicy } from '../config/schema.js';
import { isRetryableHttpStatus, nextRetry, parseRetryAfter } from '../net/backoff.js';
import { RETRYABLE_NETWORK_CODES, networkErrorCode, noAnswerError } from '../net/errors.js';
import { retrying } from '../net/retry.js';
import { noteProviderAnswer, rescueArmed } from '../util/critical.js';
import { request } from './network.js';

export { networkErrorCode } from '../net/errors.js';

export interface HttpRetryOptions {
  /** The profile's retry policy; without one, nothing is retried. */
  retry?: RetryPolicy;
  debug?: (line: string) => void;
  /** For tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Told before each wait (also shown with --verbose through debug). */
  onRetry?: (info: { attempt: number; delayMs: number; status?: number; code?: string }) => void;
}

/**
 * Run `attempt` until it gives an answer not worth retrying, or the policy says stop.
 * `label` is "METHOD origin/path" (no query: it can carry secrets). `discard` frees an answer that
 * is thrown away (a fetch body must be read or cancelled).
 */
export async function withHttpRetry<R>(
  label: string,
  opts: HttpRetryOptions,
  attempt: () => Promise<R>,
  answer: (r: R) => { status: number; retryAfter?: string | null },
  discard?: (r: R) => Promise<void>,
): Promise<R> {
  const policy = opts.retry;
  return retrying(attempt, {
    ...(opts.sleep ? { sleep: opts.sleep } : {}),
    ...(discard ? { discard } : {}),
    onError: (e, n) => {
      const code = networkErrorCode(e);
      opts.debug?.(`${label} → ${code ?? 'error'}`);
      if (!policy || code === undefined || !RETRYABLE_NETWORK_CODES.has(code)) return { retry: false };
      const v = nextRetry(policy, n, undefined, opts.random);
      if (!v.retry) return v;
      opts.debug?.(
        `retrying in ${(v.delayMs / 1000).toFixed(1)} s (attempt ${n + 1} of ${policy.maxAttempts})`,
      );
      opts.onRetry?.({ attempt: n, delayMs: v.delayMs, code });
      return v;
    },
    onResult: (res, n) => {
      const { status, retryAfter } = answer(res);
      opts.debug?.(`${label} → ${status}`);
      if (!policy || !isRetryableHttpStatus(policy, status)) return { retry: false };
      const after = parseRetryAfter(retryAfter ?? undefined);
      const v = nextRetry(policy, n, after, opts.random);
      if (!v.retry) {
        if (v.reason === 'too-long')
          opts.debug?.(
            `the provider asks to wait ${Math.round((after ?? 0) / 1000)} s; not waiting that long`,
          );
        return v;
      }
      opts.debug?.(
        `retrying in ${(v.delayMs / 1000).toFixed(1)} s (attempt ${n + 1} of ${policy.maxAttempts}${after !== undefined ? `, Retry-After ${Math.round(after / 1000)} s` : ''})`,
      );
      opts.onRetry?.({ attempt: n, delayMs: v.delayMs, status });
      return v;
    },
  });
}

/**
 * A fetch that retries per `opts` (for gaxios' fetchImplementation, openid-client's customFetch
 * and postForm). Each try gets its own time limit (timeoutMs), reported as ETIMEDOUT, so that a
 * silent server is retried like a refused connection; a caller's own signal still ends it all.
 */
export function retryingFetch(
  opts: HttpRetryOptions & { timeoutMs?: number },
  base: typeof fetch = fetch,
): typeof fetch {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const once = async (): Promise<Response> => {
      const limit = AbortSignal.timeout(timeoutMs);
      const signal = init?.signal ? AbortSignal.any([init.signal, limit]) : limit;
      try {
        const sent = init?.body;
        const form =
          typeof sent === 'string' ? sent : sent instanceof URLSearchParams ? sent.toString() : undefined;
        if (rescueArmed() && method === 'POST' && form && base === fetch && !(input instanceof Request)) {
          // a refresh is armed (src/util/critical.ts armRescue): node:https hands the answer to
          // the rescue file in the same event that completes it (network.ts request), fewer hops
          // than fetch's streams, so that a rotated refresh token is on disk sooner
          const headers = Object.fromEntries(new Headers(init?.headers).entries());
          if (sent instanceof URLSearchParams && !headers['content-type'])
            headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
          const r = await request('POST', url.href, headers, form, timeoutMs);
          const h = new Headers(Object.entries(r.headers));
          return new Response(r.status === 204 || r.status === 205 ? null : r.text, {
            status: r.status,
            headers: h,
          });
        }
        // a Request's body can be read once; the libraries here pass a URL and a string or form body
        const res = await base(input instanceof Request ? input.clone() : input, { ...init, signal });
        if (!rescueArmed() || method !== 'POST' || !form || res.status !== 200) {
          noteProviderAnswer();
          return res;
        }
        // a refresh is armed (src/util/critical.ts armRescue): read the answer here, so that a
        // rotated refresh token reaches the rescue file before the library parses it
        const text = await res.text();
        noteProviderAnswer(form, text);
        return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
      } catch (e) {
        if (limit.aborted && !init?.signal?.aborted) throw noAnswerError(url.host, timeoutMs, e);
        throw e;
      }
    };
    return withHttpRetry(
      `${method} ${url.origin}${url.pathname}`,
      opts,
      once,
      (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after') }),
      async (r) => {
        await r.body?.cancel();
      },
    );
  };
}

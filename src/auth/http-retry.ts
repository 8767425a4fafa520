/**
 * One retry loop for every HTTP call to an identity provider, whichever library makes it:
 * MSAL (through our INetworkModule, network.ts), google-auth-library (gaxios, given our fetch),
 * openid-client (its customFetch) and our own form posts (generic.ts postForm).
 *
 * The rules (decisions in src/net/backoff.ts): 429/503 answers (or the profile's own HTTP codes)
 * and network failures that can change on a second try are tried again per the profile's retry
 * policy, waiting at least the server's `Retry-After`; when the tries run out, the last answer is
 * returned to the library (which reports the provider's error, exit 6) or the last network error
 * is thrown (exit 6). Other 4xx answers (OAuth errors, RFC 6749 §5.2) are never retried.
 * `--verbose` shows each request's method, URL without query and status; never a body.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RetryPolicy } from '../config/schema.js';
import { isRetryableHttpStatus, nextRetry, parseRetryAfter } from '../net/backoff.js';
import { NETWORK_ERROR_CODES } from '../util/net-errors.js';
import { noteProviderAnswer, rescueArmed } from '../util/critical.js';

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

/** Network failures worth another try: DNS "not found" is not (nor TLS failures, not listed). */
const RETRY_NET_CODES = new Set([
  ...[...NETWORK_ERROR_CODES].filter((c) => c !== 'ENOTFOUND'),
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The error code of a network failure, looking through wrappers (fetch puts it in `cause`). */
export function networkErrorCode(e: unknown): string | undefined {
  for (let c: unknown = e, i = 0; c && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_ERROR_CODES.has(code) || code.startsWith('UND_ERR')))
      return code;
  }
  return undefined;
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
  const pause = opts.sleep ?? ((ms: number) => sleep(ms));
  for (let n = 1; ; n++) {
    let res: R;
    try {
      res = await attempt();
    } catch (e) {
      const code = networkErrorCode(e);
      opts.debug?.(`${label} → ${code ?? 'error'}`);
      if (!policy || code === undefined || !RETRY_NET_CODES.has(code)) throw e;
      const v = nextRetry(policy, n, undefined, opts.random);
      if (!v.retry) throw e;
      opts.debug?.(
        `retrying in ${(v.delayMs / 1000).toFixed(1)} s (attempt ${n + 1} of ${policy.maxAttempts})`,
      );
      opts.onRetry?.({ attempt: n, delayMs: v.delayMs, code });
      await pause(v.delayMs);
      continue;
    }
    const { status, retryAfter } = answer(res);
    opts.debug?.(`${label} → ${status}`);
    if (!policy || !isRetryableHttpStatus(policy, status)) return res;
    const after = parseRetryAfter(retryAfter ?? undefined);
    const v = nextRetry(policy, n, after, opts.random);
    if (!v.retry) {
      if (v.reason === 'too-long')
        opts.debug?.(`the provider asks to wait ${Math.round((after ?? 0) / 1000)} s; not waiting that long`);
      return res;
    }
    opts.debug?.(
      `retrying in ${(v.delayMs / 1000).toFixed(1)} s (attempt ${n + 1} of ${policy.maxAttempts}${after !== undefined ? `, Retry-After ${Math.round(after / 1000)} s` : ''})`,
    );
    opts.onRetry?.({ attempt: n, delayMs: v.delayMs, status });
    await discard?.(res).catch(() => undefined);
    await pause(v.delayMs);
  }
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
        // a Request's body can be read once; the libraries here pass a URL and a string or form body
        const res = await base(input instanceof Request ? input.clone() : input, { ...init, signal });
        const sent = init?.body;
        const form =
          typeof sent === 'string' ? sent : sent instanceof URLSearchParams ? sent.toString() : undefined;
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
        if (limit.aborted && !init?.signal?.aborted)
          throw Object.assign(new Error(`no answer from ${url.host} in ${timeoutMs} ms`), {
            code: 'ETIMEDOUT',
            cause: e,
          });
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

/**
 * One Graph request with the retry rules of "Microsoft Graph throttling guidance": on 429 (and 503)
 * wait the `Retry-After` seconds and repeat; without Retry-After, back off exponentially; give up
 * after a few attempts or when the wait asked for is longer than we wait at once (exit 6 now,
 * rather than a cron job sleeping silently). A refused token is refreshed once and the request
 * repeated (the cached token may have been revoked before it expired).
 */
import { MAX_SINGLE_WAIT_MS, backoffDelay, parseRetryAfter } from '../../net/backoff.js';
import type { RetryPolicy } from '../../config/schema.js';
import { MailServerError } from '../../errors/index.js';
import {
  graphError,
  graphNetworkError,
  retryRule,
  type GraphErrorBody,
  type GraphRequestContext,
} from './graph-errors.js';

export interface RetryNotice {
  attempt: number;
  waitMs: number;
  status?: number;
  reason: string;
}

export interface GraphHttpOptions {
  fetch: typeof globalThis.fetch;
  /** A valid access token; forceRefresh after a 401. */
  token: (opts?: { forceRefresh?: boolean }) => Promise<string>;
  /** attempts in all (first try included); default 5 */
  maxAttempts: number;
  /** the wait between tries without Retry-After */
  backoff: RetryPolicy;
  /** longest single wait; a longer Retry-After fails at once */
  maxWaitMs: number;
  sleep: (ms: number) => Promise<void>;
  onRetry?: (n: RetryNotice) => void;
  /** per request, in ms; default 120 s */
  timeoutMs: number;
}

export const DEFAULT_GRAPH_BACKOFF: RetryPolicy = {
  mode: 'any',
  maxAttempts: 5,
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 30_000,
};
export const DEFAULT_HTTP: Omit<GraphHttpOptions, 'token'> = {
  fetch: (...a) => globalThis.fetch(...a),
  maxAttempts: 5,
  backoff: DEFAULT_GRAPH_BACKOFF,
  maxWaitMs: MAX_SINGLE_WAIT_MS,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  timeoutMs: 120_000,
};

export interface GraphRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  url: string;
  body?: Buffer | string;
  contentType?: string;
  headers?: Record<string, string>;
  /** false for upload-session URLs, which are pre-authenticated ("do not send Authorization") */
  auth?: boolean;
  ctx: GraphRequestContext;
}

export interface GraphResponse {
  status: number;
  headers: Headers;
  body: Buffer;
  json<T = unknown>(): T;
}

async function readAll(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

function parseError(buf: Buffer): GraphErrorBody | undefined {
  try {
    return JSON.parse(buf.toString('utf8')) as GraphErrorBody;
  } catch {
    return undefined;
  }
}

/** Send one request, retrying as the rules above say; a non-2xx answer throws a typed error. */
export async function graphRequest(o: GraphHttpOptions, r: GraphRequest): Promise<GraphResponse> {
  let refreshed = false;
  for (let attempt = 1; ; attempt++) {
    const headers: Record<string, string> = { ...r.headers };
    if (r.auth !== false) headers.Authorization = `Bearer ${await o.token({ forceRefresh: refreshed })}`;
    if (r.contentType) headers['Content-Type'] = r.contentType;
    let res: Response;
    try {
      res = await o.fetch(r.url, {
        method: r.method,
        headers,
        ...(r.body !== undefined ? { body: r.body } : {}),
        signal: AbortSignal.timeout(o.timeoutMs),
      });
    } catch (e) {
      const err = graphNetworkError(e, r.ctx, r.url);
      if (!r.ctx.idempotent || attempt >= o.maxAttempts) throw err;
      const waitMs = backoffDelay(o.backoff, attempt);
      o.onRetry?.({ attempt, waitMs, reason: err.message });
      await o.sleep(waitMs);
      continue;
    }
    const body = await readAll(res);
    if (res.status >= 200 && res.status < 300) {
      return {
        status: res.status,
        headers: res.headers,
        body,
        json: <T>() => JSON.parse(body.toString('utf8')) as T,
      };
    }
    const errBody = parseError(body);
    if (res.status === 401 && r.auth !== false && !refreshed) {
      refreshed = true;
      attempt--;
      continue;
    }
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    const rule = retryRule(res.status);
    const may = rule === 'always' || (rule === 'idempotent' && r.ctx.idempotent);
    const err = graphError(res.status, errBody, r.ctx, retryAfterMs);
    if (!may || attempt >= o.maxAttempts) throw err;
    if (retryAfterMs !== undefined && retryAfterMs > o.maxWaitMs) throw err;
    const waitMs = retryAfterMs ?? backoffDelay(o.backoff, attempt);
    o.onRetry?.({ attempt, waitMs, status: res.status, reason: err.message });
    await o.sleep(waitMs);
  }
}

/** A Graph link (@odata.nextLink, deltaLink, uploadUrl) must stay on the API's origin: the token goes with it. */
export function checkLink(link: string, base: string, ctx: GraphRequestContext): string {
  const ok = (() => {
    try {
      return new URL(link).origin === new URL(base).origin;
    } catch {
      return false;
    }
  })();
  if (!ok)
    throw new MailServerError(
      `Microsoft Graph (${ctx.action}) answered a link to another host; refused so that the token stays with Graph.`,
      {
        code: 'graph_foreign_link',
      },
    );
  return link;
}

/**
 * MSAL's HTTP client (INetworkModule), on node:https.
 *
 * Why our own: (1) `--verbose` shows each request's method, URL without query and status,
 * and never a body; (2) device-code polling is made polite per RFC 8628 §3.5: MSAL 7 polls
 * once right after the device-code response and treats `slow_down` as fatal, so we wait the
 * server's `interval` before every poll, and on `slow_down` add 5 s to it for all later polls
 * and hand MSAL an `authorization_pending` so that it keeps going; (3) unreadable error bodies
 * (an HTML 502 from a proxy) become an OAuth-shaped error that MSAL can report; (4) 429/503
 * answers and network errors are retried per the profile's retry policy (./http-retry.ts, the
 * rules every provider shares, on the one loop of src/net/retry.ts).
 */
import https from 'node:https';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { withHttpRetry, type HttpRetryOptions } from './http-retry.js';
import { noAnswerError } from '../net/errors.js';
import { noteProviderAnswer } from '../util/critical.js';

export interface NetworkOptions extends HttpRetryOptions {
  /** Called when the server asked to slow down (RFC 8628 §3.5). */
  onSlowDown?: (intervalSeconds: number) => void;
  timeoutMs?: number;
}

const DEVICE_GRANT =
  /(?:^|&)grant_type=(?:device_code|urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code)(?:&|$)/;

export function createNetworkModule(opts: NetworkOptions = {}): INetworkModule {
  let intervalMs = 5000;
  let lastPoll = 0;

  async function send<T>(
    method: 'GET' | 'POST',
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    const body = typeof options?.body === 'string' ? options.body : undefined;
    const isPoll = method === 'POST' && body !== undefined && DEVICE_GRANT.test(body);
    if (isPoll) {
      const wait = lastPoll + intervalMs - Date.now();
      if (wait > 0) await sleep(wait);
      lastPoll = Date.now();
    }
    const u = new URL(url);
    const res = await requestWithRetry(method, u, options?.headers ?? {}, body);
    let parsed: unknown;
    try {
      parsed = res.text ? JSON.parse(res.text) : {};
    } catch {
      parsed =
        res.status >= 400
          ? {
              error: res.status === 429 || res.status >= 500 ? 'temporarily_unavailable' : 'invalid_request',
              error_description: `HTTP ${res.status} with a body that is not JSON`,
            }
          : {};
    }
    const b = parsed as Record<string, unknown>;
    if (
      method === 'POST' &&
      /\/devicecode(?:\?|$)/.test(u.pathname + u.search) &&
      typeof b.interval === 'number'
    ) {
      intervalMs = Math.max(1, b.interval) * 1000;
      lastPoll = Date.now();
    }
    if (isPoll && b.error === 'slow_down') {
      intervalMs += 5000;
      opts.onSlowDown?.(intervalMs / 1000);
      return { headers: res.headers, status: 400, body: { error: 'authorization_pending' } as T };
    }
    return { headers: res.headers, status: res.status, body: parsed as T };
  }

  function requestWithRetry(
    method: string,
    u: URL,
    headers: Record<string, string>,
    body: string | undefined,
  ): ReturnType<typeof request> {
    return withHttpRetry(
      `${method} ${u.origin}${u.pathname}`,
      opts,
      () => request(method, u.href, headers, body, opts.timeoutMs ?? 30_000),
      (r) => ({ status: r.status, retryAfter: r.headers['retry-after'] }),
    );
  }

  return {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>('GET', url, options),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>('POST', url, options),
  };
}

/** One HTTP(S) request on node:https; the answer is handed to noteProviderAnswer in its 'end' event. */
export function request(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'http:' ? http : https;
    const h: Record<string, string | number> = { ...headers };
    if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
    const req = mod.request(u, { method, headers: h, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        noteProviderAnswer(body, text);
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers))
          if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
        resolve({ status: res.statusCode ?? 0, headers: out, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(noAnswerError(u.host, timeoutMs)));
    req.on('error', reject);
    req.end(body);
  });
}

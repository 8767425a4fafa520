import { describe, it, expect } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_HTTP_RETRY_STATUS,
  MAX_SINGLE_WAIT_MS,
  isRetryableHttpStatus,
  nextRetry,
  parseRetryAfter,
} from '../../src/net/backoff.js';
import { createNetworkModule } from '../../src/auth/network.js';
import { retryingFetch } from '../../src/auth/http-retry.js';
import type { RetryPolicy } from '../../src/config/schema.js';

const any: RetryPolicy = {
  mode: 'any',
  maxAttempts: 3,
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 30_000,
};

/** A token endpoint that gives these answers in turn (the last one for ever). */
async function server(answers: Array<{ status: number; headers?: Record<string, string>; body: unknown }>) {
  let calls = 0;
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const a = answers[Math.min(calls, answers.length - 1)]!;
      calls++;
      res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers ?? {}) });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/tenant/oauth2/v2.0/token`;
  return { url, calls: () => calls, close: () => new Promise((r) => srv.close(r)) };
}
const busy = { status: 429, headers: { 'retry-after': '2' }, body: { error: 'temporarily_unavailable' } };

describe('Retry-After', () => {
  it('reads delay-seconds and HTTP-dates; ignores junk', () => {
    const now = Date.parse('Mon, 23 Nov 2026 10:00:00 GMT');
    expect(parseRetryAfter('5', now)).toBe(5000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Mon, 23 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 09:00:00 GMT', now)).toBe(0);
    for (const bad of [undefined, null, '', '-1', '1.5', 'soon', '12abc', '1 2', '99999999999999999999'])
      expect(parseRetryAfter(bad, now)).toBeUndefined();
  });
});

describe('which statuses are retried', () => {
  it('any: 429 and 5xx gateways; status: 429/503 unless the list names HTTP codes; none: nothing; 4xx OAuth errors never', () => {
    for (const s of [429, 500, 502, 503, 504]) expect(isRetryableHttpStatus(any, s)).toBe(true);
    for (const s of [400, 401, 403, 404]) expect(isRetryableHttpStatus(any, s)).toBe(false);
    const status: RetryPolicy = { ...any, mode: 'status', statusCodes: [421, 451] };
    expect(DEFAULT_HTTP_RETRY_STATUS.every((s) => isRetryableHttpStatus(status, s))).toBe(true);
    expect(isRetryableHttpStatus(status, 502)).toBe(false);
    expect(isRetryableHttpStatus({ ...status, statusCodes: [502] }, 502)).toBe(true);
    expect(isRetryableHttpStatus({ ...status, statusCodes: [502] }, 429)).toBe(false);
    expect(isRetryableHttpStatus({ ...any, mode: 'none' }, 503)).toBe(false);
  });
});

describe('nextRetry', () => {
  it('backs off exponentially with jitter, honours Retry-After, stops at maxAttempts, refuses waits over the cap', () => {
    expect(nextRetry(any, 1, undefined, () => 1)).toEqual({ retry: true, delayMs: 1000 });
    expect(nextRetry(any, 2, undefined, () => 1)).toEqual({ retry: true, delayMs: 2000 });
    expect(nextRetry(any, 2, undefined, () => 0)).toEqual({ retry: true, delayMs: 1000 });
    expect(nextRetry(any, 1, 7000, () => 1)).toEqual({ retry: true, delayMs: 7000 });
    expect(nextRetry(any, 3, 1000)).toEqual({ retry: false, reason: 'attempts' });
    expect(nextRetry(any, 1, MAX_SINGLE_WAIT_MS + 1)).toEqual({ retry: false, reason: 'too-long' });
    expect(nextRetry({ ...any, mode: 'none' }, 1)).toEqual({ retry: false, reason: 'policy' });
    const big: RetryPolicy = { ...any, maxAttempts: 20, initialDelayMs: 600_000, maxDelayMs: 3_600_000 };
    expect((nextRetry(big, 5) as { delayMs: number }).delayMs).toBeLessThanOrEqual(MAX_SINGLE_WAIT_MS);
  });
});

describe('MSAL network module retries', () => {
  it('429 with Retry-After is retried after at least that long, then succeeds', async () => {
    const s = await server([busy, busy, { status: 200, body: { access_token: 'x' } }]);
    const waits: number[] = [];
    const net = createNetworkModule({
      retry: any,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
      random: () => 0,
    });
    const r = await net.sendPostRequestAsync<{ access_token?: string }>(s.url, {
      body: 'grant_type=refresh_token',
    });
    await s.close();
    expect(r.status).toBe(200);
    expect(s.calls()).toBe(3);
    expect(waits).toEqual([2000, 2000]);
  });

  it('when the tries run out the last answer is handed over; an OAuth 400 is never retried', async () => {
    const s = await server([busy]);
    const net = createNetworkModule({ retry: any, sleep: async () => {} });
    const r = await net.sendPostRequestAsync<{ error?: string }>(s.url, { body: 'grant_type=refresh_token' });
    expect(r.status).toBe(429);
    expect(r.body.error).toBe('temporarily_unavailable');
    expect(s.calls()).toBe(3);
    await s.close();
    const s2 = await server([{ status: 400, body: { error: 'invalid_grant' } }]);
    const r2 = await createNetworkModule({ retry: any, sleep: async () => {} }).sendPostRequestAsync(s2.url, {
      body: 'grant_type=refresh_token',
    });
    expect(r2.status).toBe(400);
    expect(s2.calls()).toBe(1);
    await s2.close();
  });

  it('a refused connection is retried per the policy, then rethrown', async () => {
    const s = await server([busy]);
    const url = s.url;
    await s.close();
    const waits: number[] = [];
    const net = createNetworkModule({
      retry: any,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await expect(net.sendPostRequestAsync(url, { body: 'x=1' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    expect(waits).toHaveLength(2);
    const none = createNetworkModule({
      retry: { ...any, mode: 'none' },
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await expect(none.sendPostRequestAsync(url, { body: 'x=1' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    expect(waits).toHaveLength(2);
  });
});

describe('the fetch used by Google and custom providers', () => {
  it('429 with Retry-After is retried after at least that long; the answer after it is returned', async () => {
    const s = await server([busy, { status: 200, body: { access_token: 'x' } }]);
    const waits: number[] = [];
    const lines: string[] = [];
    const f = retryingFetch({
      retry: any,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
      random: () => 0,
      debug: (l) => lines.push(l),
    });
    const r = await f(s.url, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token' }) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ access_token: 'x' });
    expect(s.calls()).toBe(2);
    expect(waits).toEqual([2000]);
    expect(lines[0]).toBe(`POST ${new URL(s.url).origin}/tenant/oauth2/v2.0/token → 429`);
    await s.close();
  });

  it('an OAuth 400 is handed over at once; without a policy nothing is retried', async () => {
    const s = await server([{ status: 400, body: { error: 'invalid_grant' } }]);
    const f = retryingFetch({ retry: any, sleep: async () => {} });
    expect((await f(s.url, { method: 'POST', body: 'x=1' })).status).toBe(400);
    expect(s.calls()).toBe(1);
    const s2 = await server([busy]);
    expect((await retryingFetch({})(s2.url, { method: 'POST', body: 'x=1' })).status).toBe(429);
    expect(s2.calls()).toBe(1);
    await s.close();
    await s2.close();
  });

  it('a refused connection is retried, then thrown with its code; a silent server times out as ETIMEDOUT', async () => {
    const s = await server([busy]);
    const url = s.url;
    await s.close();
    const waits: number[] = [];
    const f = retryingFetch({
      retry: any,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    const e = await f(url, { method: 'POST', body: 'x=1' }).catch((x: unknown) => x);
    expect((e as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    expect(waits).toHaveLength(2);

    const silent = http.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    let tries = 0;
    const slow = retryingFetch({
      retry: { ...any, maxAttempts: 2 },
      sleep: () => {
        tries++;
        return Promise.resolve();
      },
      timeoutMs: 200,
    });
    const port = (silent.address() as AddressInfo).port;
    await expect(
      slow(`http://127.0.0.1:${port}/token`, { method: 'POST', body: 'x=1' }),
    ).rejects.toMatchObject({
      code: 'ETIMEDOUT',
    });
    expect(tries).toBe(1);
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  });
});

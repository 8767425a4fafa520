/**
 * The one retry loop: run an attempt; after a thrown error (or an answer worth another try) ask the
 * caller's decision whether and when to try again; wait; repeat. What is retried and how long to
 * wait are the callers' (src/auth/http-retry.ts for identity providers, src/mail/retry.ts for
 * sending), with the timing of ./backoff.ts.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';

/** Try again after delayMs, or stop (rethrow the error, or return the answer). */
export type Decision = { retry: true; delayMs: number } | { retry: false };

export interface RetryLoop<R> {
  /** After failed attempt `attempt` (1 = the first try). */
  onError(error: unknown, attempt: number): Decision;
  /** After an answer; without it, every answer is returned. */
  onResult?(result: R, attempt: number): Decision;
  /** Frees an answer that is thrown away (a fetch body must be read or cancelled). */
  discard?(result: R): Promise<void>;
  /** For tests: a sleep that does not wait. */
  sleep?: (ms: number) => Promise<void>;
}

export async function retrying<R>(run: (attempt: number) => Promise<R>, loop: RetryLoop<R>): Promise<R> {
  const pause = loop.sleep ?? ((ms: number) => sleepFor(ms));
  for (let attempt = 1; ; attempt++) {
    let result: R;
    try {
      result = await run(attempt);
    } catch (e) {
      const d = loop.onError(e, attempt);
      if (!d.retry) throw e;
      await pause(d.delayMs);
      continue;
    }
    const d = loop.onResult?.(result, attempt) ?? { retry: false };
    if (!d.retry) return result;
    await loop.discard?.(result).catch(() => undefined);
    await pause(d.delayMs);
  }
}

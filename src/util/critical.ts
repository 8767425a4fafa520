/**
 * Critical sections that SIGINT and SIGTERM must not cut short.
 *
 * A refresh that the provider answers with a rotated refresh token burns the old one at once
 * (Entra, most custom providers). From the moment the request leaves until the new token is in
 * the store, the only copy of a working refresh token is in this process's memory: dying there
 * loses the sign-in. So `critical(fn)` runs fn with SIGINT and SIGTERM recorded instead of
 * acted on, and when fn has finished (the write is done) raises InterruptedError (exit 130 or
 * 143, as a shell reports those signals), which unwinds through the lock's release to main().
 *
 * The signal rules (and who else may claim a signal) live in util/interrupt.ts: a command that
 * stops in an orderly way (fetch, send --batch, watch, exec) claims the signal, and then the
 * critical section does not raise. SIGKILL cannot be deferred; for it the providers keep the
 * window from the provider's answer to the durable write short (the key derived and the store
 * prepared before the request), and `sinceProviderAnswer()` measures that window for --verbose.
 */
import { activeInterrupt, Interrupt } from './interrupt.js';

// outside main() (a library caller, a unit test): this process's signals, for the section only
let own: Interrupt | undefined;
let ownDepth = 0;

/** Run fn with SIGINT/SIGTERM deferred; if one came meanwhile, throw InterruptedError after fn. */
export async function critical<T>(fn: () => Promise<T>): Promise<T> {
  const active = activeInterrupt();
  if (active) return active.critical(fn);
  if (ownDepth++ === 0) own = Interrupt.forProcess();
  const it = own!;
  try {
    return await it.critical(fn);
  } finally {
    if (--ownDepth === 0) {
      it.dispose();
      own = undefined;
    }
  }
}

/** Whether a SIGINT/SIGTERM is waiting for the current critical section to end. */
export function interruptPending(): boolean {
  return (activeInterrupt() ?? own)?.interruptPending ?? false;
}

let answeredAt: number | undefined;
let rescuedAfter: number | undefined;

/** Keepers of rotated refresh tokens, by the refresh token the request redeems (see armRescue). */
const rescuers = new Map<string, (next: string) => void>();

/**
 * Until the returned disarm function is called, an answer of the token endpoint to a request that
 * redeems `oldRefreshToken` hands its new refresh token to `keep` at once, synchronously, before
 * the OAuth library sees it (src/secrets/rescue.ts: the rescue file). Arm it right before the
 * refresh request, disarm it once the store has the answer.
 */
export function armRescue(oldRefreshToken: string, keep: (next: string) => void): () => void {
  rescuers.set(oldRefreshToken, keep);
  return () => {
    if (rescuers.get(oldRefreshToken) === keep) rescuers.delete(oldRefreshToken);
  };
}

/** armRescue with the keeper `store` gives for `profile` (a no-op for a store without rescue files). */
export function armStoreRescue(
  store: { rescuer?(profile: string, old: string): (next: string) => void },
  profile: string,
  oldRefreshToken: string | undefined,
): () => void {
  const keep = oldRefreshToken ? store.rescuer?.(profile, oldRefreshToken) : undefined;
  return keep && oldRefreshToken ? armRescue(oldRefreshToken, keep) : () => undefined;
}

/** Whether an answer's body is wanted by noteProviderAnswer (a refresh is armed). */
export function rescueArmed(): boolean {
  return rescuers.size > 0;
}

/** The refresh token a form or JSON request body redeems. */
function redeemed(body: string): string | undefined {
  if (body.startsWith('{')) {
    try {
      const j = JSON.parse(body) as { refresh_token?: unknown };
      return typeof j.refresh_token === 'string' ? j.refresh_token : undefined;
    } catch {
      return undefined;
    }
  }
  return new URLSearchParams(body).get('refresh_token') ?? undefined;
}

/**
 * The identity provider's token endpoint just answered (network.ts, http-retry.ts); with the
 * request and answer bodies, a rotated refresh token goes to the armed keeper at once.
 */
export function noteProviderAnswer(requestBody?: string, answerBody?: string): void {
  answeredAt = performance.now();
  if (!rescuers.size || !requestBody || !answerBody) return;
  const old = redeemed(requestBody);
  const keep = old === undefined ? undefined : rescuers.get(old);
  if (!keep) return;
  let next: unknown;
  try {
    next = (JSON.parse(answerBody) as { refresh_token?: unknown }).refresh_token;
  } catch {
    return;
  }
  if (typeof next !== 'string' || !next || next === old) return;
  keep(next);
  rescuedAfter = performance.now() - answeredAt;
}

/** --verbose: how long the provider's answer existed only in memory (the window a SIGKILL can hit). */
export function debugStoredAfterAnswer(debug: (line: string) => void): void {
  const ms = sinceProviderAnswer();
  if (rescuedAfter !== undefined)
    debug(
      `rotated refresh token kept in the rescue file ${rescuedAfter.toFixed(2)} ms after the provider's answer`,
    );
  if (ms !== undefined) debug(`token cache stored ${ms.toFixed(1)} ms after the provider's answer`);
}

/** Milliseconds since the provider's last answer, or undefined if none came in this process. */
export function sinceProviderAnswer(): number | undefined {
  return answeredAt === undefined ? undefined : performance.now() - answeredAt;
}

/**
 * `queue run`: deliver what is queued, oldest first, under the queue lock (./lock.ts).
 *
 * Per message: deliver, then remove the file. A runner killed between the server's 250 and the
 * removal sends that message once more on the next run, with the same bytes and so the same
 * Message-ID (receivers and people can tell the copy); killed anywhere else, nothing is sent
 * twice and nothing is lost (the file stays until it is delivered or buried).
 *
 * A message refused for good goes to dead/ with the server's reply; one older than the maximum
 * age goes there too. After a temporary failure the message gets its next attempt time from the
 * profile's retry policy (backoff), and a failure that is not about the message (network, sign-in,
 * keychain) stops this run's attempts for that profile: the others would fail the same way.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { RetryPolicy } from '../../config/schema.js';
import { DEFAULT_RETRY } from '../../config/schema.js';
import { isOauthmailError } from '../../errors/index.js';
import { backoffDelay } from '../../net/backoff.js';
import { queueLockHolder, tryQueueLock } from './lock.js';
import { errorLine, queueDecision } from './policy.js';
import type { QueueEntry, Spool } from './spool.js';

/** Postfix's maximal_queue_lifetime: 5 days. */
export const DEFAULT_MAX_AGE_MS = 5 * 86_400_000;

export interface RunDeps {
  spool: Spool;
  locksDir: string;
  deliver: (entry: QueueEntry) => Promise<{ response: string }>;
  now?: () => Date;
  maxAgeMs?: number;
  policyFor?: (profile: string) => RetryPolicy;
  /** Try every message now, ignoring the backoff's next attempt time. */
  force?: boolean;
  /** Only these profiles / ids. */
  profile?: string;
  ids?: string[];
  /** A line per message, for --verbose and the CLI's report. */
  onEvent?: (ev: RunEvent) => void;
}

export type RunEvent =
  | { kind: 'delivered'; id: string; profile: string; response: string }
  | {
      kind: 'deferred';
      id: string;
      profile: string;
      error: string;
      nextAttemptAt: string;
      /** The failure's own exit code: 4 sign-in needed, 3 configuration (keychain), 6 temporary. */
      exitCode: number;
      hint?: string;
    }
  | { kind: 'dead'; id: string; profile: string; reason: string };

export interface RunReport {
  /** A live runner held the lock (its pid); nothing was done. */
  busy?: number;
  delivered: number;
  deferred: number;
  dead: number;
  /** Not tried this run: backoff not over, or its profile already failed this run. */
  skipped: number;
  events: RunEvent[];
}

const TMP_MAX_AGE_MS = 3_600_000;

function age(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s >= 2 * 86400) return `${Math.floor(s / 86400)} days`;
  if (s >= 7200) return `${Math.floor(s / 3600)} hours`;
  if (s >= 120) return `${Math.floor(s / 60)} minutes`;
  return `${s} seconds`;
}

export async function runQueue(deps: RunDeps): Promise<RunReport> {
  const report: RunReport = { delivered: 0, deferred: 0, dead: 0, skipped: 0, events: [] };
  const { spool } = deps;
  if ((await spool.ids()).length === 0) return report;
  const lock = await tryQueueLock(deps.locksDir);
  if (!lock) {
    report.busy = (await queueLockHolder(deps.locksDir)) ?? 0;
    return report;
  }
  const now = deps.now ?? (() => new Date());
  const maxAge = deps.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const emit = (ev: RunEvent) => {
    report.events.push(ev);
    deps.onEvent?.(ev);
  };
  const blocked = new Set<string>();
  try {
    await sweepTmp(spool, now());
    for (const id of await spool.ids()) {
      if (deps.ids && !deps.ids.includes(id)) continue;
      if (await spool.isDead(id)) {
        await spool.remove(id); // buried, then killed before the removal
        continue;
      }
      const entry = await spool.read(id).catch(() => undefined);
      if (!entry) continue;
      const m = entry.meta;
      if (deps.profile !== undefined && m.profile !== deps.profile) continue;
      const t = now();
      const waited = t.getTime() - Date.parse(m.queuedAt);
      if (waited > maxAge) {
        const reason = `expired: waited ${age(waited)} (maximum ${age(maxAge)})${m.lastError ? `; last error: ${m.lastError}` : ''}`;
        await spool.bury(entry, reason, t);
        report.dead++;
        emit({ kind: 'dead', id, profile: m.profile, reason });
        continue;
      }
      if (
        blocked.has(m.profile) ||
        (!deps.force && m.nextAttemptAt && Date.parse(m.nextAttemptAt) > t.getTime())
      ) {
        report.skipped++;
        continue;
      }
      try {
        const r = await deps.deliver(entry);
        await spool.remove(id);
        report.delivered++;
        emit({ kind: 'delivered', id, profile: m.profile, response: r.response });
      } catch (e) {
        const d = queueDecision(e);
        const line = errorLine(e);
        const at = now();
        if (!d.queue) {
          const reason = `refused: ${line}`;
          await spool.bury(entry, reason, at);
          report.dead++;
          emit({ kind: 'dead', id, profile: m.profile, reason });
          continue;
        }
        const attempts = m.attempts + 1;
        const policy = deps.policyFor?.(m.profile) ?? DEFAULT_RETRY;
        const next = new Date(at.getTime() + backoffDelay(policy, attempts));
        await spool.update(entry, {
          ...m,
          attempts,
          lastAttemptAt: at.toISOString(),
          lastError: line,
          nextAttemptAt: next.toISOString(),
        });
        report.deferred++;
        emit({
          kind: 'deferred',
          id,
          profile: m.profile,
          error: line,
          nextAttemptAt: next.toISOString(),
          exitCode: isOauthmailError(e) ? e.exitCode : 1,
          ...(isOauthmailError(e) && e.hint ? { hint: e.hint } : {}),
        });
        // a 4xx on this message says nothing about the next one; anything else does
        if (!(isOauthmailError(e) && e.code === 'smtp_temporary')) blocked.add(m.profile);
      }
    }
  } finally {
    await lock.release();
  }
  return report;
}

/** Temp files left by a writer killed mid-write (an hour old: no live writer takes that long). */
async function sweepTmp(spool: Spool, now: Date): Promise<void> {
  const names = await fsp.readdir(spool.dirs.tmp).catch(() => [] as string[]);
  for (const n of names) {
    const f = path.join(spool.dirs.tmp, n);
    const st = await fsp.stat(f).catch(() => undefined);
    if (st && now.getTime() - st.mtimeMs > TMP_MAX_AGE_MS) await fsp.rm(f, { force: true });
  }
}

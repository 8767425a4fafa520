/**
 * Token health: per profile, when the refresh token was obtained, last redeemed ("used") and last
 * rotated, and how long earlier sign-ins lasted before they died. Kept in `<dataDir>/health.json`
 * (atomic write, mode 0600) so that `oauthmail status` can warn BEFORE a sign-in dies:
 *
 * - Microsoft: a refresh token unused for 90 days dies (AADSTS700082, "inactive"); warn after 60.
 * - Google: an app whose OAuth consent screen is in "Testing" status gets refresh tokens that
 *   die after 7 days; if a sign-in lasted at most about 7 days, say so and how to fix it.
 * - Any provider: a client secret within 30 days of its expiry date.
 *
 * Never a token in this file: only timestamps, the provider name and error codes.
 * Writing health is best effort: a failure here must never fail a token or a refresh.
 */
import path from 'node:path';
import { resolvePaths } from '../config/paths.js';
import { atomicWriteFile, ensurePrivateDir, readFileIfExists } from '../util/fs.js';

export interface HealthRecord {
  provider: string;
  /** Sign-in (or import) that produced the current refresh token. */
  obtainedAt?: string;
  /** Last time the refresh token was redeemed at the identity provider. */
  lastUsedAt?: string;
  /** Last time the identity provider handed back a different refresh token. */
  lastRotatedAt?: string;
  /** Last time a refresh was refused and a new sign-in was needed. */
  lastFailureAt?: string;
  lastFailureCode?: string;
  /** Seconds each earlier sign-in lasted before a refresh was refused (newest last, at most 5). */
  lifetimes?: number[];
}

export interface HealthFile {
  version: 1;
  profiles: Record<string, HealthRecord>;
}

export type HealthEvent =
  { kind: 'sign-in' } | { kind: 'refresh'; rotated: boolean } | { kind: 'refresh-refused'; code: string };

export function healthFilePath(env: NodeJS.ProcessEnv): string {
  return path.join(resolvePaths(env).dataDir, 'health.json');
}

export async function readHealth(env: NodeJS.ProcessEnv): Promise<HealthFile> {
  const text = await readFileIfExists(healthFilePath(env)).catch(() => undefined);
  if (text) {
    try {
      const j = JSON.parse(text) as HealthFile;
      if (j && j.version === 1 && j.profiles && typeof j.profiles === 'object') {
        // own keys only: a profile named `constructor` must not find Object's
        return {
          version: 1,
          profiles: Object.assign(Object.create(null), j.profiles) as HealthFile['profiles'],
        };
      }
    } catch {
      // a damaged health file only loses history; it is rebuilt on the next event
    }
  }
  return { version: 1, profiles: Object.create(null) as HealthFile['profiles'] };
}

/** Apply an event to a record (pure; exported for tests). */
export function applyEvent(
  prev: HealthRecord | undefined,
  provider: string,
  ev: HealthEvent,
  now: Date,
): HealthRecord {
  const at = now.toISOString();
  const r: HealthRecord = { ...(prev ?? {}), provider };
  if (ev.kind === 'sign-in') {
    r.obtainedAt = at;
    r.lastUsedAt = at;
    r.lastRotatedAt = at;
    delete r.lastFailureAt;
    delete r.lastFailureCode;
  } else if (ev.kind === 'refresh') {
    r.lastUsedAt = at;
    if (ev.rotated) r.lastRotatedAt = at;
    r.obtainedAt ??= at;
  } else {
    // record how long the sign-in lasted, once per death
    if (r.obtainedAt && !r.lastFailureAt) {
      const lived = Math.round((now.getTime() - Date.parse(r.obtainedAt)) / 1000);
      r.lifetimes = [...(r.lifetimes ?? []), lived].slice(-5);
    }
    // a refusal after a refresh that worked is a new end of the sign-in, with its own date
    if (!r.lastFailureAt || (r.lastUsedAt && Date.parse(r.lastUsedAt) > Date.parse(r.lastFailureAt))) {
      r.lastFailureAt = at;
    }
    r.lastFailureCode = ev.code;
  }
  return r;
}

/**
 * The sign-in ended: its last refresh was refused (revoked, expired, consent withdrawn, password
 * changed) and no sign-in or working refresh came after. A cached access token may still work
 * for a while, but the next refresh will not: `status` reports this as not signed in.
 */
export function refusedSignIn(rec: HealthRecord | undefined): { at: string; code: string } | undefined {
  if (!rec?.lastFailureAt || !rec.lastFailureCode) return undefined;
  if (rec.lastUsedAt && Date.parse(rec.lastUsedAt) > Date.parse(rec.lastFailureAt)) return undefined;
  return { at: rec.lastFailureAt, code: rec.lastFailureCode };
}

type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

/**
 * Record an event for a profile under the `health` lock (read-modify-write across processes).
 * Best effort: errors are swallowed (reported through `debug`).
 */
export async function recordHealth(
  deps: { env: NodeJS.ProcessEnv; lock: LockFn; debug?: (m: string) => void },
  profile: string,
  provider: string,
  ev: HealthEvent,
  now = new Date(),
): Promise<void> {
  try {
    await deps.lock('health', async () => {
      const file = healthFilePath(deps.env);
      const h = await readHealth(deps.env);
      h.profiles[profile] = applyEvent(h.profiles[profile], provider, ev, now);
      await ensurePrivateDir(path.dirname(file));
      await atomicWriteFile(file, JSON.stringify(h, null, 2) + '\n');
    });
  } catch (e) {
    deps.debug?.(`could not record token health for ${profile}: ${(e as Error).message}`);
  }
}

/** Forget a profile (after logout or profile removal). Best effort. */
export async function forgetHealth(
  deps: { env: NodeJS.ProcessEnv; lock: LockFn },
  profile: string,
): Promise<void> {
  await moveHealth(deps, profile, undefined);
}

/** A renamed profile keeps its record (`to`), a removed one loses it (`to` undefined). Best effort. */
export async function moveHealth(
  deps: { env: NodeJS.ProcessEnv; lock: LockFn },
  from: string,
  to: string | undefined,
): Promise<void> {
  try {
    await deps.lock('health', async () => {
      const h = await readHealth(deps.env);
      const rec = h.profiles[from];
      if (!rec) return;
      delete h.profiles[from];
      if (to !== undefined) h.profiles[to] = rec;
      await atomicWriteFile(healthFilePath(deps.env), JSON.stringify(h, null, 2) + '\n');
    });
  } catch {
    // best effort: a stale record only shows old dates in `status`
  }
}

// ---- rules ------------------------------------------------------------------------------------

const DAY = 86_400;

export interface HealthThresholds {
  /** Warn when a Microsoft refresh token has not been redeemed for this long (default 60 days). */
  idleWarnSeconds: number;
  /** Microsoft's inactivity limit, for the "dies in N days" sentence (default 90 days). */
  idleLimitSeconds: number;
  /** A sign-in that lasted at most this long suggests Google "Testing" status (default 7.5 days). */
  shortLifetimeSeconds: number;
  /** Warn when the client secret expires within this many days (default 30). */
  secretWarnDays: number;
}

function envSeconds(env: NodeJS.ProcessEnv, key: string, def: number): number {
  const v = env[key];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : def;
}

/** Thresholds, overridable through the environment (tests, and people with other policies). */
export function thresholdsFrom(env: NodeJS.ProcessEnv): HealthThresholds {
  return {
    idleWarnSeconds: envSeconds(env, 'OAUTHMAIL_HEALTH_IDLE_WARN_SECONDS', 60 * DAY),
    idleLimitSeconds: envSeconds(env, 'OAUTHMAIL_HEALTH_IDLE_LIMIT_SECONDS', 90 * DAY),
    shortLifetimeSeconds: envSeconds(env, 'OAUTHMAIL_HEALTH_SHORT_LIFETIME_SECONDS', 7.5 * DAY),
    secretWarnDays: envSeconds(env, 'OAUTHMAIL_HEALTH_SECRET_WARN_DAYS', 30),
  };
}

export interface HealthWarning {
  code: 'refresh_token_idle' | 'google_testing_status' | 'client_secret_expiring' | 'client_secret_expired';
  problem: string;
  fix: string;
}

function span(seconds: number): string {
  if (seconds >= 2 * DAY) return `${Math.floor(seconds / DAY)} days`;
  if (seconds >= 7200) return `${Math.floor(seconds / 3600)} hours`;
  if (seconds >= 120) return `${Math.floor(seconds / 60)} minutes`;
  return `${Math.max(0, Math.floor(seconds))} seconds`;
}

export interface HealthInput {
  name: string;
  provider: string;
  flow: string;
  clientType?: string;
  clientSecretExpires?: string;
  signedIn: boolean;
}

/** The warnings for one profile (pure; `now` and thresholds injected for tests). */
export function healthWarnings(
  p: HealthInput,
  rec: HealthRecord | undefined,
  t: HealthThresholds,
  now = new Date(),
): HealthWarning[] {
  const out: HealthWarning[] = [];
  const appOnly = p.flow === 'client-credentials';
  if (p.provider === 'microsoft' && !appOnly && p.signedIn && rec) {
    const last = rec.lastUsedAt ?? rec.obtainedAt;
    if (last) {
      const idle = (now.getTime() - Date.parse(last)) / 1000;
      if (idle > t.idleWarnSeconds) {
        const left = t.idleLimitSeconds - idle;
        out.push({
          code: 'refresh_token_idle',
          problem:
            `the refresh token has not been used for ${span(idle)}; Microsoft ends a sign-in unused for ${span(t.idleLimitSeconds)}` +
            (left > 0 ? ` (in about ${span(left)})` : ' (it may have ended already)'),
          fix: `oauthmail refresh ${p.name} (and schedule: oauthmail refresh --all)`,
        });
      }
    }
  }
  if (p.provider === 'google' && !appOnly && rec?.lifetimes?.some((s) => s <= t.shortLifetimeSeconds)) {
    const shortest = Math.min(...rec.lifetimes);
    out.push({
      code: 'google_testing_status',
      problem: `an earlier sign-in lasted only ${span(shortest)}: the Google app is probably in "Testing" status, where refresh tokens end after 7 days`,
      fix:
        'publish the app (Google Cloud console → OAuth consent screen → Publish app), then oauthmail login ' +
        p.name,
    });
  }
  if (p.clientSecretExpires && p.clientType === 'secret') {
    const days = Math.floor(
      (Date.parse(p.clientSecretExpires + 'T00:00:00Z') - now.getTime()) / (DAY * 1000),
    );
    const fix = `create a new secret, then: oauthmail profile secret ${p.name} --stdin --expires YYYY-MM-DD`;
    if (days < 0) {
      out.push({
        code: 'client_secret_expired',
        problem: `the client secret expired on ${p.clientSecretExpires}`,
        fix,
      });
    } else if (days <= t.secretWarnDays) {
      out.push({
        code: 'client_secret_expiring',
        problem: `the client secret expires in ${days} day${days === 1 ? '' : 's'} (${p.clientSecretExpires})`,
        fix,
      });
    }
  }
  return out;
}

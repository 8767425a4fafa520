/**
 * Two guards with a clock of their own (tests move it):
 * - AuthGuard: bad passwords per client address. After `slowAfter` failures each further answer
 *   waits (1 s, 2 s, 4 s... at most 8 s); after `lockAfter` the address is refused (454, RFC 4954
 *   §6 "temporary authentication failure") for `lockSeconds`, even with the right password. A
 *   success forgets the address's failures. Failures older than the lock time are forgotten.
 * - RateLimit: messages per device per minute (a sliding window of one minute).
 */
import type { AuthThrottle } from './config.js';

export type Clock = () => number;

interface Failures {
  times: number[];
  lockedUntil?: number;
}

export class AuthGuard {
  private readonly byAddress = new Map<string, Failures>();

  constructor(
    private throttle: AuthThrottle,
    private readonly now: Clock = Date.now,
  ) {}

  setThrottle(t: AuthThrottle): void {
    this.throttle = t;
  }

  private entry(address: string): Failures {
    const t = this.now();
    let f = this.byAddress.get(address);
    if (!f) {
      f = { times: [] };
      this.byAddress.set(address, f);
    }
    const horizon = t - this.throttle.lockSeconds * 1000;
    f.times = f.times.filter((x) => x > horizon);
    if (f.lockedUntil !== undefined && f.lockedUntil <= t) {
      delete f.lockedUntil;
      f.times = [];
    }
    return f;
  }

  /** Seconds the address stays refused, or 0. */
  lockedFor(address: string): number {
    const f = this.entry(address);
    return f.lockedUntil === undefined ? 0 : Math.ceil((f.lockedUntil - this.now()) / 1000);
  }

  /** A bad password: returns how long to wait before answering (ms). */
  failed(address: string): number {
    const f = this.entry(address);
    f.times.push(this.now());
    const n = f.times.length;
    if (n >= this.throttle.lockAfter) f.lockedUntil = this.now() + this.throttle.lockSeconds * 1000;
    if (n < this.throttle.slowAfter) return 0;
    return Math.min(8000, 1000 * 2 ** (n - this.throttle.slowAfter));
  }

  succeeded(address: string): void {
    this.byAddress.delete(address);
  }

  /** Addresses refused now (for metrics). */
  lockedCount(): number {
    let n = 0;
    for (const a of [...this.byAddress.keys()]) if (this.lockedFor(a) > 0) n++;
    return n;
  }
}

export class RateLimit {
  private readonly sent = new Map<string, number[]>();

  constructor(private readonly now: Clock = Date.now) {}

  /** Count one message for `device`; false when it is over `perMinute` in the last minute. */
  take(device: string, perMinute: number): boolean {
    const t = this.now();
    const list = (this.sent.get(device) ?? []).filter((x) => x > t - 60_000);
    if (list.length >= perMinute) {
      this.sent.set(device, list);
      return false;
    }
    list.push(t);
    this.sent.set(device, list);
    return true;
  }
}

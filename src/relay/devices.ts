/**
 * The devices the running relay knows (relay.json's users), with their allowlists compiled and
 * their effective limits. Replaced as a whole on SIGHUP, so a session sees one consistent set.
 */
import type { BlockList } from 'node:net';
import { allowed, parseAllow } from './addresses.js';
import { DEFAULT_MAX_SIZE, DEFAULT_RATE_PER_MINUTE, type RelayConfig, type RelayUser } from './config.js';

export interface Device {
  user: RelayUser;
  /** The profile that sends its mail. */
  profile: string;
  maxSize: number;
  ratePerMinute: number;
  allow?: BlockList;
}

export class Devices {
  private readonly byName = new Map<string, Device>();
  private readonly list: Device[] = [];
  /** The largest size any device may send: the SIZE the relay announces (RFC 1870). */
  readonly maxSize: number;

  constructor(config: RelayConfig, defaultProfile: string | undefined) {
    const globalMax = config.maxSize ?? DEFAULT_MAX_SIZE;
    for (const u of config.users) {
      const d: Device = {
        user: u,
        profile: u.profile ?? defaultProfile ?? '',
        maxSize: Math.min(u.maxSize ?? globalMax, globalMax),
        ratePerMinute: u.ratePerMinute ?? DEFAULT_RATE_PER_MINUTE,
        ...(u.allowFrom?.length ? { allow: parseAllow(u.allowFrom) } : {}),
      };
      this.byName.set(u.name.toLowerCase(), d);
      this.list.push(d);
    }
    this.maxSize = globalMax;
  }

  get size(): number {
    return this.list.length;
  }

  byUser(name: string): Device | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** The device allowed to send without AUTH from this address (the first in the file). */
  byAddress(address: string | undefined): Device | undefined {
    return this.list.find((d) => d.allow && allowed(d.allow, address));
  }

  all(): readonly Device[] {
    return this.list;
  }
}

/** What `list` and `fetch` select: flags -> Filters -> an IMAP SEARCH (RFC 9051 §6.4.4). */
import type { SearchObject } from 'imapflow';
import { UsageError } from '../../errors/index.js';

export interface Filters {
  unseen?: boolean;
  since?: Date;
  before?: Date;
  from?: string;
  subject?: string;
  limit?: number;
}

/** The IMAP SEARCH for the filters; ALL when there are none. */
export function buildSearch(f: Filters): SearchObject {
  const q: SearchObject = {};
  if (f.unseen) q.seen = false;
  if (f.since) q.since = f.since;
  if (f.before) q.before = f.before;
  if (f.from) q.from = f.from;
  if (f.subject) q.subject = f.subject;
  if (Object.keys(q).length === 0) q.all = true;
  return q;
}

/** Parse a --since/--before value: YYYY-MM-DD, an ISO date-time, or a relative "7d"/"12h". */
export function parseDate(value: string, flag: string, now = new Date()): Date {
  const rel = /^(\d+)([dhw])$/.exec(value.trim());
  if (rel) {
    const n = Number(rel[1]);
    const ms = rel[2] === 'h' ? 3_600_000 : rel[2] === 'w' ? 7 * 86_400_000 : 86_400_000;
    return new Date(now.getTime() - n * ms);
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const d = new Date(value + 'T00:00:00Z');
    if (!Number.isNaN(d.getTime()) && d.toISOString().startsWith(value)) return d;
  } else if (/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const d = new Date(value);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new UsageError(`${flag} ${JSON.stringify(value)}: not a date`, {
    code: 'bad_date',
    hint: `use YYYY-MM-DD (e.g. ${flag} 2025-01-31) or a relative age like 7d, 12h, 2w`,
  });
}

/** Filter flags shared by `list` and `fetch`, as commander hands them over. */
export interface FilterFlags {
  unseen?: boolean;
  since?: string;
  before?: string;
  from?: string;
  subject?: string;
  limit?: string;
}

export function filtersFrom(flags: FilterFlags): Filters {
  const f: Filters = {};
  if (flags.unseen) f.unseen = true;
  if (flags.since !== undefined) f.since = parseDate(flags.since, '--since');
  if (flags.before !== undefined) f.before = parseDate(flags.before, '--before');
  if (flags.from !== undefined) f.from = flags.from;
  if (flags.subject !== undefined) f.subject = flags.subject;
  if (flags.limit !== undefined) {
    const n = Number(flags.limit);
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError('--limit must be a whole number of at least 1', { code: 'bad_usage' });
    f.limit = n;
  }
  return f;
}

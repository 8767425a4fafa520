/**
 * Sets of IMAP UIDs as sorted, disjoint ranges, written the way IMAP writes a sequence set
 * (RFC 9051 §9 "sequence-set": "1:5,9,12:20"). `fetch` keeps the set of UIDs it has saved per
 * mailbox in this form: a high-water mark is not enough once filters are used (`--unseen`, `--from`
 * save some UIDs and skip others below the highest one).
 */
export type UidRanges = ReadonlyArray<readonly [number, number]>;

/** "1:5,9" for these UIDs (any order, duplicates allowed). */
export function uidSet(uids: readonly number[]): string {
  return formatUidRanges(addUids([], uids));
}

export function formatUidRanges(r: UidRanges): string {
  return r.map(([a, b]) => (a === b ? String(a) : `${a}:${b}`)).join(',');
}

/** Parse a set written by formatUidRanges; undefined when it is not one (a damaged state file). */
export function parseUidRanges(s: string): UidRanges | undefined {
  if (s === '') return [];
  const out: Array<[number, number]> = [];
  for (const part of s.split(',')) {
    const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < a || b > 0xffffffff) return undefined;
    out.push([a, b]);
  }
  return addRanges([], out);
}

/** The union of `r` and `uids`, merged (adjacent ranges joined). */
export function addUids(r: UidRanges, uids: readonly number[]): UidRanges {
  return addRanges(
    r,
    uids.map((u) => [u, u] as const),
  );
}

function addRanges(r: UidRanges, more: ReadonlyArray<readonly [number, number]>): UidRanges {
  const all = [...r, ...more].sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of all) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Split UIDs (ascending) into those in the set and those not in it, keeping their order. */
export function splitByUidRanges(
  sortedUids: readonly number[],
  r: UidRanges,
): { inside: number[]; outside: number[] } {
  const inside: number[] = [];
  const outside: number[] = [];
  let i = 0;
  for (const u of sortedUids) {
    while (i < r.length && r[i]![1] < u) i++;
    if (i < r.length && r[i]![0] <= u) inside.push(u);
    else outside.push(u);
  }
  return { inside, outside };
}

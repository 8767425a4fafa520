import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addUids,
  formatUidRanges,
  parseUidRanges,
  splitByUidRanges,
  uidSet,
} from '../../src/mail/uid-ranges.js';
import { fuzzParams } from '../support/fuzz.js';

describe('UID sets (what fetch remembers having saved)', () => {
  it('writes IMAP sequence sets: ranges merged, adjacent ones joined', () => {
    expect(uidSet([5, 1, 2, 3, 9, 3, 10, 12])).toBe('1:3,5,9:10,12');
    expect(uidSet([])).toBe('');
    expect(formatUidRanges(addUids(parseUidRanges('1:3,7')!, [4, 5, 6]))).toBe('1:7');
  });

  it('refuses what it did not write', () => {
    for (const bad of ['x', '1:', ':3', '3:1', '0', '1,,2', '1;2', '-1', '99999999999', ' 1'])
      expect(parseUidRanges(bad), bad).toBeUndefined();
    expect(parseUidRanges('')).toEqual([]);
  });

  it('splits UIDs into saved and not saved exactly as a plain set would', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 120 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 120 }),
        (savedList, matchedList) => {
          const saved = new Set(savedList);
          const ranges = parseUidRanges(uidSet(savedList))!;
          const matched = [...new Set(matchedList)].sort((a, b) => a - b);
          const { inside, outside } = splitByUidRanges(matched, ranges);
          expect(inside).toEqual(matched.filter((u) => saved.has(u)));
          expect(outside).toEqual(matched.filter((u) => !saved.has(u)));
        },
      ),
      fuzzParams(300),
    );
  });
});

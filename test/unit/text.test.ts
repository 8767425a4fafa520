// plainText: how a value from JSON reads in a {{placeholder}} of a batch line and in `profile show`.
import { describe, expect, it } from 'vitest';
import { plainText } from '../../src/util/text.js';

describe('plainText', () => {
  it('reads strings, numbers, booleans and arrays as String() does', () => {
    for (const v of ['Ann', '', 42, 1.5, true, false, null, ['a', 'b'], [1, null, undefined, 'x'], []]) {
      expect(plainText(v)).toBe(String(v));
    }
  });

  it('reads an object as its JSON, not "[object Object]"', () => {
    expect(plainText({ city: 'Oslo' })).toBe('{"city":"Oslo"}');
    expect(plainText([{ a: 1 }, 'b'])).toBe('{"a":1},b');
  });
});

import { describe, it, expect } from 'vitest';
import { waitText } from '../../src/cli/signin/browser.js';

describe('the sign-in wait as printed', () => {
  it('--timeout 15 reads "15 s", not "1 min"; long waits in minutes', () => {
    expect(waitText(15_000)).toBe('15 s');
    expect(waitText(90_000)).toBe('90 s');
    expect(waitText(300_000)).toBe('5 min');
  });
});

import { describe, expect, it } from 'vitest';
import { compareKeys, destinationKeyFor } from '../../functions/core/plan/keys.js';

describe('compareKeys', () => {
  it('orders by UTF-8 bytes, as S3 and DynamoDB do, not by UTF-16 code units', () => {
    // U+1F600 is 0xF0... in UTF-8 but a surrogate (0xD83D) in UTF-16; U+FF01 is 0xEF... / 0xFF01.
    expect('a😀' < 'a！').toBe(true);
    expect(compareKeys('a😀', 'a！')).toBeGreaterThan(0);
    const keys = ['b', 'a😀', 'a！', 'a', 'A', 'a b', 'é'];
    expect([...keys].sort(compareKeys)).toEqual(['A', 'a', 'a b', 'a！', 'a😀', 'b', 'é']);
  });

  it('treats equal keys as equal', () => {
    expect(compareKeys('x/ü', 'x/ü')).toBe(0);
  });
});

describe('destinationKeyFor', () => {
  it('swaps the source prefix for the destination prefix', () => {
    expect(destinationKeyFor('in/2024/a.csv', 'in/', 'mirror/a/')).toBe('mirror/a/2024/a.csv');
    expect(destinationKeyFor('a.csv', '', '')).toBe('a.csv');
  });
});

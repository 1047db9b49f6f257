import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareKeys } from '../../functions/core/plan/keys.js';
import {
  inRange,
  ledgerSplits,
  rangeIndexOf,
  rangesBetween,
  splitsEvery,
} from '../../functions/core/plan/shards.js';

/** Keys from an alphabet where UTF-16 order and UTF-8 byte order disagree ('😀' vs '！'). */
const key = fc
  .array(fc.constantFrom('a', 'b', '/', '0', '9', '~', 'é', '！', '😀', ' '), { minLength: 1, maxLength: 6 })
  .map((characters) => characters.join(''));

async function* keysOf(keys: string[]) {
  for (const k of keys) yield { key: k };
}

describe('rangesBetween: shards that cover the key space', () => {
  it('puts every key in exactly one range, the one rangeIndexOf finds', () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 12 }), fc.array(key, { maxLength: 40 }), (splits, keys) => {
        const ranges = rangesBetween(splits);
        for (const k of [...keys, ...splits]) {
          const holders = ranges.flatMap((range, index) => (inRange(k, range) ? [index] : []));
          expect(holders).toEqual([rangeIndexOf(k, ranges)]);
        }
      }),
    );
  });

  it('cuts in byte order, each range starting where the one before ends, open at both ends', () => {
    // Strictly: a range open at one end has no bound there at all (a shard task's JSON says so).
    expect(rangesBetween(['b😀', 'a', 'b！', 'a'])).toStrictEqual([
      { through: 'a' },
      { after: 'a', through: 'b！' },
      { after: 'b！', through: 'b😀' },
      { after: 'b😀' },
    ]);
  });

  it('gives one range over everything when there is no cut', () => {
    expect(rangesBetween([])).toStrictEqual([{}]);
    expect(inRange('', {})).toBe(true);
  });

  it('holds a cut key in the range it closes, not the next', () => {
    const ranges = rangesBetween(['m']);

    expect(inRange('m', ranges[0] ?? {})).toBe(true);
    expect(inRange('m', ranges[1] ?? {})).toBe(false);
    expect(rangeIndexOf('m', ranges)).toBe(0);
    expect(rangeIndexOf('m0', ranges)).toBe(1);
  });
});

describe('splitsEvery: cuts from the ledger a pass left', () => {
  it('cuts after every Nth key, so each shard but the last holds N keys', async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);

    const splits = await splitsEvery(keysOf(keys), 3);

    expect(splits).toEqual(['k2', 'k5', 'k8']);
    const ranges = rangesBetween(splits);
    expect(ranges.map((range) => keys.filter((k) => inRange(k, range)).length)).toEqual([3, 3, 3, 1]);
  });

  it('makes no cut in a ledger smaller than one shard', async () => {
    expect(await splitsEvery(keysOf(['a', 'b']), 3)).toEqual([]);
  });

  it('tells a ledger smaller than one shard from none, which only a first pass has', async () => {
    expect(await ledgerSplits(keysOf(['a', 'b']), 3)).toEqual({ splits: [], keys: 2 });
    expect(await ledgerSplits(keysOf([]), 3)).toEqual({ splits: [], keys: 0 });
  });

  it('refuses a shard size that is not a whole number of keys', async () => {
    for (const size of [0, -1, 1.5, Number.NaN]) {
      await expect(splitsEvery(keysOf(['a']), size)).rejects.toThrow(
        `keysPerShard is a whole number of keys, at least 1; got ${size}`,
      );
    }
  });

  it('keeps the cuts in the ledger order, which is S3 byte order', async () => {
    const keys = ['a', 'a！', 'a😀', 'b'].sort(compareKeys);

    expect(await splitsEvery(keysOf(keys), 1)).toEqual(keys);
  });
});

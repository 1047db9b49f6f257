/**
 * Shards: a job's key space cut into contiguous ranges `(after, through]`, so that each range can be planned
 * on its own. A range's listing and its ledger Query come back in the same byte order, so the merge-join
 * (plan.ts) works on a shard unchanged.
 *
 * The ranges cover every key by construction: the first has no lower bound, the last has no upper bound, and
 * each starts exactly where the one before ends. A key between two shards cannot be missed, and none is in
 * two. Where the cuts fall only decides how even the shards are: every N keys of the ledger a pass left
 * (`splitsEvery`).
 */
import { compareKeys } from './keys.js';
import type { KeyRange } from './list-source.js';

/**
 * The ranges cut at `splits` (in any order; repeats count once): one more range than distinct cut points.
 * No cuts gives one range over the whole key space.
 */
export function rangesBetween(splits: Iterable<string>): KeyRange[] {
  const cuts = [...new Set(splits)].sort(compareKeys);
  const ranges: KeyRange[] = [];
  let after: string | undefined;
  for (const through of cuts) {
    ranges.push(after === undefined ? { through } : { after, through });
    after = through;
  }
  ranges.push(after === undefined ? {} : { after });
  return ranges;
}

/** Whether `key` lies in `range`: strictly after `after`, up to and including `through`. */
export function inRange(key: string, range: KeyRange): boolean {
  return (
    (range.after === undefined || compareKeys(key, range.after) > 0) &&
    (range.through === undefined || compareKeys(key, range.through) <= 0)
  );
}

/**
 * The index of the range that holds `key`, among ranges made by `rangesBetween` (sorted, contiguous), by
 * binary search: the first range whose upper bound is not below the key.
 */
export function rangeIndexOf(key: string, ranges: readonly KeyRange[]): number {
  let low = 0;
  // Stryker disable next-line ArithmeticOperator: a high past the end meets only undefined bounds, which move it down as the open last range does
  let high = ranges.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    const through = ranges[middle]?.through;
    if (through !== undefined && compareKeys(key, through) > 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Cut points every `keysPerShard` keys of a stream in key order (a job's ledger after a pass): shards of
 * `keysPerShard` keys each, the last one holding the rest and any keys added after it.
 */
export async function splitsEvery(
  keys: AsyncIterable<{ key: string }>,
  keysPerShard: number,
): Promise<string[]> {
  return (await ledgerSplits(keys, keysPerShard)).splits;
}

/**
 * `splitsEvery`'s cuts and the keys the stream held: a pass starter searches the source for cuts only when
 * there were none (a first pass), not when a ledger was merely smaller than one shard.
 */
export async function ledgerSplits(
  keys: AsyncIterable<{ key: string }>,
  keysPerShard: number,
): Promise<{ splits: string[]; keys: number }> {
  if (!Number.isSafeInteger(keysPerShard) || keysPerShard < 1) {
    throw new RangeError(`keysPerShard is a whole number of keys, at least 1; got ${keysPerShard}`);
  }
  const splits: string[] = [];
  let count = 0;
  for await (const { key } of keys) {
    // Stryker disable next-line AssignmentOperator: counting down cuts at the same keys (-N % N is -0, which equals 0)
    count += 1;
    if (count % keysPerShard === 0) splits.push(key);
  }
  return { splits, keys: count };
}

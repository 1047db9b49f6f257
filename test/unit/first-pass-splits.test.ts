import { ListObjectsV2Command, type ListObjectsV2CommandInput, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { firstPassSplits } from '../../functions/core/plan/first-pass-splits.js';
import { compareKeys } from '../../functions/core/plan/keys.js';
import { inRange, rangesBetween } from '../../functions/core/plan/shards.js';
import { listing } from './fake-listing.js';

const s3Mock = mockClient(S3Client);
const s3 = new S3Client({ region: 'us-east-1' });

/** How many of `keys` each range cut at `splits` holds. */
const shardSizes = (splits: string[], keys: readonly string[]) =>
  rangesBetween(splits).map((range) => keys.filter((key) => inRange(key, range)).length);

const numbered = (stem: string, count: number) =>
  Array.from({ length: count }, (_, n) => `${stem}${String(n).padStart(4, '0')}`);

describe('firstPassSplits: cuts for a pass whose ledger gave none', () => {
  beforeEach(() => s3Mock.reset());

  it('cuts every keysPerShard keys when the first page lists everything', async () => {
    // Prepare
    const keys = numbered('in/k', 10);
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    // Act
    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 3);

    // Assess
    expect(found).toMatchObject({ splits: ['in/k0002', 'in/k0005', 'in/k0008'], requests: 1, keysSeen: 10 });
    expect(s3Mock).toHaveReceivedCommandWith(ListObjectsV2Command, {
      Bucket: 'src',
      Prefix: 'in/',
      MaxKeys: 1000,
    });
  });

  it('makes no cut under an empty prefix, in one request', async () => {
    s3Mock.on(ListObjectsV2Command).callsFake(listing(['other/a']));

    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 3);

    expect(found).toEqual({ splits: [], requests: 1, keysSeen: 0, unmeasured: 0 });
  });

  it('cuts at the folders of a nested source, descending where the top level has too few', async () => {
    // Two top-level folders, each with three subfolders of 40 keys: 240 keys, pages of 10.
    const keys = ['a', 'b'].flatMap((top) =>
      ['x', 'y', 'z'].flatMap((sub) => numbered(`in/${top}/${sub}/`, 40)),
    );
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    // 19 requests: too few to list the 24 pages through, so some stretches stay unlisted.
    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 40, {
      limits: { pageSize: 10, maxRequests: 19 },
    });

    // The folders the probes skipped over are cuts, so no shard holds more than one subfolder's keys.
    expect(found.unmeasured).toBeGreaterThan(0);
    expect(found.splits).toEqual(expect.arrayContaining(['in/a/z/', 'in/b/y/', 'in/b/z/']));
    expect(Math.max(...shardSizes(found.splits, keys))).toBeLessThanOrEqual(40);
    expect(s3Mock).toHaveReceivedCommandWith(ListObjectsV2Command, { Prefix: 'in/a/', Delimiter: '/' });
  });

  it('lists on through the stretches the probes left when requests remain, and cuts exactly', async () => {
    // The same 240 keys: the 50 requests read them through, so the shards are the six subfolders.
    const keys = ['a', 'b'].flatMap((top) =>
      ['x', 'y', 'z'].flatMap((sub) => numbered(`in/${top}/${sub}/`, 40)),
    );
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 40, {
      limits: { pageSize: 10 },
    });

    expect(found).toMatchObject({ unmeasured: 0, keysSeen: 240 });
    expect(shardSizes(found.splits, keys)).toEqual([40, 40, 40, 40, 40, 40]);
  });

  it('makes the target number of shards, none empty, from a flat source the budget reads through', async () => {
    // The fan-out benchmark's source: 20,000 keys in pages of 1,000. Before, 23 shards, 11 of them empty.
    const keys = numbered('in/obj-0', 20_000);
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    const one = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 100_000);
    const four = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 5_000);

    expect(one).toMatchObject({ splits: [], unmeasured: 0, keysSeen: 20_000 });
    expect(one.requests).toBeLessThanOrEqual(50);
    // 20,000 is a whole number of shards: no cut at the last key, which would leave an empty last shard.
    expect(shardSizes(four.splits, keys)).toEqual([5_000, 5_000, 5_000, 5_000]);
  }, 60_000); // about 4 s alone: the fake listing scans 20,000 keys per request

  it('drops a cut that would close a shard its pages showed empty', async () => {
    // A first page of 10 keys under in/a, then keys only far past the successor points probed (in/b…in/z).
    const keys = [...numbered('in/a', 10), ...numbered('in/zz', 30)];
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 10, {
      limits: { pageSize: 10 },
    });

    expect(shardSizes(found.splits, keys)).toEqual([10, 10, 10, 10]);
  });

  it('spreads StartAfter probes over a flat key space, so no shard holds most of it', async () => {
    // 1,000 keys with no folder, pages of 20: the first page sees only in/part-0000 to in/part-0019.
    const keys = numbered('in/part-', 1000);
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 100, {
      limits: { pageSize: 20 },
    });

    const sizes = shardSizes(found.splits, keys);
    expect(sizes.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
    expect(s3Mock).toHaveReceivedCommandWith(ListObjectsV2Command, { StartAfter: 'in/part-05', MaxKeys: 20 });
  });

  it('never makes more requests than its bound, nor more cuts', async () => {
    const keys = Array.from({ length: 300 }, (_, n) => `in/f${n}/only`);
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 1, {
      limits: { pageSize: 5, maxRequests: 7, maxCuts: 12 },
    });

    expect(s3Mock.commandCalls(ListObjectsV2Command)).toHaveLength(found.requests);
    expect(found.requests).toBeLessThanOrEqual(7);
    // More folders were seen than cuts are allowed: the cuts are thinned to the bound.
    expect(found.splits).toHaveLength(12);
  });

  it('orders its cuts as S3 does, by UTF-8 bytes, for characters above U+FFFF', async () => {
    // In UTF-16 '😀' (U+1F600) sorts before '！' (U+FF01); in UTF-8 bytes, after.
    const keys = ['！', '😀', 'z'].flatMap((top) => numbered(`in/${top}/`, 15));
    s3Mock.on(ListObjectsV2Command).callsFake(listing(keys));

    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 15, {
      limits: { pageSize: 10 },
    });

    // In bytes 'z' < '！' < '😀': the first page holds in/z/, and the probes walk on into the other two
    // (a UTF-16 sort would have probed in/😀/ first and counted its keys before in/！/'s).
    expect(found.splits).toEqual(['in/z/0014', 'in/！/0014']);
    expect(shardSizes(found.splits, keys)).toEqual([15, 15, 15]);
  });

  it('ends the search with the cuts it has when S3 refuses a probe, instead of failing the pass', async () => {
    const keys = numbered('in/part-', 100);
    const list = listing(keys);
    s3Mock.on(ListObjectsV2Command).callsFake((input: ListObjectsV2CommandInput) => {
      if (input.StartAfter !== undefined) throw Object.assign(new Error('slow down'), { name: 'SlowDown' });
      return list(input);
    });

    const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, 10, {
      limits: { pageSize: 20 },
    });

    expect(found.failure).toContain('slow down');
    // The first page's cuts, and one around the rest, which nothing measured.
    expect(found.splits).toEqual(['in/part-0009', 'in/part-0019']);
    expect(found.unmeasured).toBe(1);
  });
});

describe('firstPassSplits: the shards cover every key exactly once', () => {
  beforeEach(() => s3Mock.reset());

  /** Keys from an alphabet where UTF-16 order and UTF-8 byte order disagree, with folders. */
  const key = fc
    .array(fc.constantFrom('a', 'b', '/', '0', '9', '~', 'é', '！', '😀'), { minLength: 1, maxLength: 5 })
    .map((characters) => `in/${characters.join('')}`);

  it('for random key sets, page sizes and bounds', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(key, { maxLength: 80 }),
        fc.array(fc.string({ maxLength: 4 }), { maxLength: 5 }),
        fc.record({
          keysPerShard: fc.integer({ min: 1, max: 30 }),
          pageSize: fc.integer({ min: 1, max: 12 }),
          maxRequests: fc.integer({ min: 1, max: 20 }),
          maxCuts: fc.integer({ min: 1, max: 40 }),
        }),
        async (keys, outside, { keysPerShard, ...limits }) => {
          s3Mock.reset();
          s3Mock.on(ListObjectsV2Command).callsFake(listing([...keys, ...outside]));

          const found = await firstPassSplits(s3, { bucket: 'src', prefix: 'in/' }, keysPerShard, { limits });

          const ranges = rangesBetween(found.splits);
          for (const k of keys) expect(ranges.filter((range) => inRange(k, range))).toHaveLength(1);
          expect(found.requests).toBeLessThanOrEqual(limits.maxRequests);
          expect(found.splits.length).toBeLessThanOrEqual(limits.maxCuts);
          // The cuts come sorted in byte order, each once.
          for (let i = 1; i < found.splits.length; i += 1) {
            expect(compareKeys(found.splits[i - 1] ?? '', found.splits[i] ?? '')).toBeLessThan(0);
          }
          // Where every stretch was listed and no cut thinned out, no shard is larger than asked.
          const under = [...new Set([...keys, ...outside])].filter((k) => k.startsWith('in/'));
          if (found.unmeasured === 0 && found.splits.length < limits.maxCuts) {
            expect(found.keysSeen).toBe(under.length);
            expect(Math.max(...shardSizes(found.splits, under))).toBeLessThanOrEqual(keysPerShard);
            // Counted through, the shards are as many as the keys need, and none is empty.
            expect(shardSizes(found.splits, under)).toHaveLength(
              Math.max(1, Math.ceil(under.length / keysPerShard)),
            );
            if (under.length > 0) expect(Math.min(...shardSizes(found.splits, under))).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

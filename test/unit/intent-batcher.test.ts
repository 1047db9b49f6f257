import { describe, expect, it, vi } from 'vitest';
import { type BatchedCopy, IntentBatcher } from '../../functions/core/run/intent-batcher.js';
import type { StateStore } from '../../functions/core/state/state-store.js';

const copyOf = (key: string, size = 10): BatchedCopy => ({
  step: {
    action: 'copy',
    reason: 'new',
    object: { key, etag: '"e"', size, lastModified: new Date(0), storageClass: 'STANDARD' },
  },
  slot: { key, settled: false },
});

const batcher = () => {
  const putUploadIntent = vi.fn(async () => {});
  return {
    putUploadIntent,
    batcher: new IntentBatcher({ putUploadIntent } as unknown as StateStore, 'job', 'run-1'),
  };
};

describe('IntentBatcher', () => {
  it('is full at 100 keys', () => {
    const { batcher: b } = batcher();
    for (let i = 0; i < 99; i += 1) expect(b.add(copyOf(`k${i}`))).toBe(false);
    expect(b.add(copyOf('k99'))).toBe(true);
  });

  it('is full at 64 KiB of key bytes, counted in UTF-8', () => {
    const { batcher: b } = batcher();
    // 'é' is 2 bytes in UTF-8: each key is 1,024 bytes but 513 characters, so 64 of them are 64 KiB.
    const key = `${'é'.repeat(511)}ab`;
    for (let i = 0; i < 63; i += 1) expect(b.add(copyOf(key))).toBe(false);
    expect(b.add(copyOf(key))).toBe(true);
  });

  it('announces one intent per batch, numbered, with each key and size, and starts a new batch after', async () => {
    const { batcher: b, putUploadIntent } = batcher();
    b.add(copyOf('a', 1));
    b.add(copyOf('b', 2));
    const first = await b.announce();
    expect(first?.copies.map((copy) => copy.slot.key)).toEqual(['a', 'b']);
    expect(putUploadIntent).toHaveBeenCalledWith('job', 'run-1', 1, {
      since: first?.since,
      objects: [
        { key: 'a', size: 1 },
        { key: 'b', size: 2 },
      ],
    });
    expect(Date.parse(first?.since ?? '')).not.toBeNaN();
    expect(await b.announce()).toBeUndefined();
    b.add(copyOf('c', 3));
    await b.announce();
    expect(putUploadIntent).toHaveBeenLastCalledWith(
      'job',
      'run-1',
      2,
      expect.objectContaining({ objects: [{ key: 'c', size: 3 }] }),
    );
    expect(putUploadIntent).toHaveBeenCalledTimes(2);
  });

  it('forgets the bytes of an announced or dropped batch', async () => {
    const { batcher: b } = batcher();
    const big = (i: number) => copyOf(`${i}`.padEnd(1024, 'x'));
    for (let i = 0; i < 63; i += 1) b.add(big(i));
    await b.announce();
    expect(b.add(big(100))).toBe(false);
    for (let i = 0; i < 62; i += 1) b.add(big(i));
    expect(b.drop()).toHaveLength(63);
    expect(b.add(big(200))).toBe(false);
  });

  it('sends a waiting batch after 1,000 plan steps, counted from its first copy, and never an empty one', () => {
    const { batcher: b } = batcher();
    for (let i = 0; i < 2_000; i += 1) expect(b.countStep()).toBe(false);
    b.add(copyOf('a'));
    for (let i = 0; i < 999; i += 1) expect(b.countStep()).toBe(false);
    expect(b.countStep()).toBe(true);
  });

  it("counts the wait from the batch's first copy, not its latest", () => {
    const { batcher: b } = batcher();
    b.add(copyOf('a'));
    for (let i = 0; i < 500; i += 1) b.countStep();
    b.add(copyOf('b'));
    for (let i = 0; i < 499; i += 1) expect(b.countStep()).toBe(false);
    expect(b.countStep()).toBe(true);
  });

  it('drops the waiting copies without announcing them', async () => {
    const { batcher: b, putUploadIntent } = batcher();
    b.add(copyOf('a'));
    expect(b.drop().map((copy) => copy.slot.key)).toEqual(['a']);
    expect(await b.announce()).toBeUndefined();
    expect(putUploadIntent).not.toHaveBeenCalled();
  });
});

import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PART_SIZE,
  followSourceParts,
  MAX_OBJECT_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  planParts,
} from '../../functions/core/copy/part-plan.js';

const MiB = 1024 * 1024;

describe('planParts', () => {
  it('keeps the default 8 MiB parts for objects that fit 10,000 of them', () => {
    expect(planParts(0)).toEqual({ partSize: DEFAULT_PART_SIZE, partCount: 1, queueSize: 4 });
    expect(planParts(DEFAULT_PART_SIZE * 3 + 1)).toMatchObject({ partSize: DEFAULT_PART_SIZE, partCount: 4 });
    expect(planParts(DEFAULT_PART_SIZE * MAX_PARTS)).toMatchObject({
      partSize: DEFAULT_PART_SIZE,
      partCount: MAX_PARTS,
    });
  });

  it('grows the part to a whole MiB once 8 MiB parts would pass 10,000 (78 GiB + 1 byte)', () => {
    const plan = planParts(DEFAULT_PART_SIZE * MAX_PARTS + 1);
    expect(plan).toMatchObject({
      partSize: 9 * MiB,
      partCount: Math.ceil((DEFAULT_PART_SIZE * MAX_PARTS + 1) / (9 * MiB)),
    });
  });

  it('cuts a 100 GB object into at most 10,000 parts of 10 MiB', () => {
    const size = 100 * 1000 ** 3;
    const plan = planParts(size);
    expect(plan.partSize).toBe(10 * MiB);
    expect(plan.queueSize).toBe(3); // 30 MiB of parts in flight, within the 32 MiB per object
    expect(plan.partCount).toBe(9537);
    expect(plan.partCount * plan.partSize).toBeGreaterThanOrEqual(size);
    expect((plan.partCount - 1) * plan.partSize).toBeLessThan(size);
  });

  it('cuts a 5 TiB object into 9,987 parts of 525 MiB, within S3 limits', () => {
    const plan = planParts(MAX_OBJECT_SIZE);
    expect(plan).toMatchObject({ partSize: 525 * MiB, partCount: 9987 });
    expect(plan.partCount).toBeLessThanOrEqual(MAX_PARTS);
    expect(plan.partSize).toBeLessThanOrEqual(MAX_PART_SIZE);
  });

  it('honours a larger or smaller (down to 5 MiB) part size asked for, and refuses what S3 refuses', () => {
    expect(planParts(12 * MiB, MIN_PART_SIZE)).toEqual({ partSize: 5 * MiB, partCount: 3, queueSize: 6 });
    expect(planParts(12 * MiB, 64 * MiB)).toEqual({ partSize: 64 * MiB, partCount: 1, queueSize: 1 });
    expect(() => planParts(12 * MiB, MiB)).toThrow(
      new RangeError(`a part is ${MIN_PART_SIZE} to ${MAX_PART_SIZE} bytes, got ${MiB}`),
    );
    expect(() => planParts(MAX_OBJECT_SIZE + 1)).toThrow(/5 TiB/);
  });
});

describe('followSourceParts', () => {
  it("copies a multipart source in its own parts when they are equal and within S3's limits", () => {
    const sizes = [16 * MiB, 16 * MiB, 3 * MiB];

    const plan = followSourceParts(35 * MiB, sizes);

    expect(plan).toEqual({ partSize: 16 * MiB, partCount: 3, queueSize: 2 });
  });

  it('leaves any other layout to planParts', () => {
    expect(followSourceParts(20 * MiB, [12 * MiB, 8 * MiB])).toEqual({
      partSize: 12 * MiB,
      partCount: 2,
      queueSize: 2,
    });
    expect(followSourceParts(20 * MiB, [8 * MiB, 12 * MiB])).toBeUndefined(); // last part larger
    expect(followSourceParts(20 * MiB, [8 * MiB, 4 * MiB, 8 * MiB])).toBeUndefined(); // unequal parts
    expect(followSourceParts(8 * MiB, [4 * MiB, 4 * MiB])).toBeUndefined(); // parts under 5 MiB
    expect(followSourceParts(30 * MiB, [16 * MiB, 16 * MiB])).toBeUndefined(); // sizes disagree
    expect(followSourceParts(16 * MiB, [16 * MiB])).toBeUndefined(); // one part: not multipart
  });

  it("takes S3's limits inclusively: 10,000 parts, parts of exactly 5 MiB or 5 GiB, a last part as large as the others", () => {
    const parts = (count: number, partSize: number) => Array.from({ length: count }, () => partSize);
    const follows = (sizes: number[]) =>
      followSourceParts(
        sizes.reduce((sum, size) => sum + size, 0),
        sizes,
      );

    expect(follows(parts(MAX_PARTS, MIN_PART_SIZE))?.partCount).toBe(MAX_PARTS);
    expect(follows(parts(MAX_PARTS + 1, MIN_PART_SIZE))).toBeUndefined();
    expect(follows(parts(2, MIN_PART_SIZE))?.partSize).toBe(MIN_PART_SIZE);
    expect(follows(parts(2, MIN_PART_SIZE - 1))).toBeUndefined();
    expect(follows(parts(2, MAX_PART_SIZE))?.partSize).toBe(MAX_PART_SIZE);
    expect(follows(parts(2, MAX_PART_SIZE + 1))).toBeUndefined();
    expect(follows([16 * MiB, 16 * MiB, 16 * MiB])).toEqual({
      partSize: 16 * MiB,
      partCount: 3,
      queueSize: 2,
    });
  });

  it('judges the last part, not the second, against the first', () => {
    expect(followSourceParts(52 * MiB, [16 * MiB, 16 * MiB, 20 * MiB])).toBeUndefined();
  });
});

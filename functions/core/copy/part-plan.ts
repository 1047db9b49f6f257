/**
 * How an object is cut into multipart-upload parts. S3's limits: a part is 5 MiB to 5 GiB (the last may be
 * smaller), an upload has at most 10,000 parts, and an object is at most 5 TiB.
 */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** S3: every part but the last is at least 5 MiB. */
export const MIN_PART_SIZE = 5 * MiB;
/** S3: no part is larger than 5 GiB. */
export const MAX_PART_SIZE = 5 * GiB;
/** S3: part numbers run from 1 to 10,000. */
export const MAX_PARTS = 10_000;
/** S3: no object is larger than 5 TiB. */
export const MAX_OBJECT_SIZE = 5 * 1024 * GiB;
/**
 * The part size for objects up to DEFAULT_PART_SIZE × MAX_PARTS (about 78 GiB). With QUEUE_SIZE parts in
 * flight it sets the memory per object being copied: 32 MiB, plus the part being filled.
 */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** Parts of one object in flight at the default part size. */
export const QUEUE_SIZE = 4;
/**
 * Part buffers in flight per object stay within this (32 MiB), whatever the part size: an object with
 * parts larger than 8 MiB gets fewer in flight, down to one, so four huge objects at once do not need
 * gigabytes. A 5 TiB object's 525 MiB parts go one at a time.
 */
const PART_BYTES_IN_FLIGHT = QUEUE_SIZE * DEFAULT_PART_SIZE;

/** The parts of one object, and how many are uploaded at once. */
export interface PartPlan {
  partSize: number;
  partCount: number;
  /** Parts in flight at once (besides the one being filled). */
  queueSize: number;
}

/**
 * The part size for an object of `size` bytes: at least `minPartSize` (the default, or a job's choice),
 * and large enough that the object fits in 10,000 parts, rounded up to a whole MiB; and how many parts
 * go at once, within PART_BYTES_IN_FLIGHT. A 5 TiB object gets 525 MiB parts, one in flight.
 *
 * @throws RangeError for sizes S3 cannot store, or a part size outside S3's limits.
 */
export function planParts(size: number, minPartSize = DEFAULT_PART_SIZE): PartPlan {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_OBJECT_SIZE) {
    throw new RangeError(`an S3 object is 0 to ${MAX_OBJECT_SIZE} bytes (5 TiB), got ${size}`);
  }
  if (minPartSize < MIN_PART_SIZE || minPartSize > MAX_PART_SIZE) {
    throw new RangeError(`a part is ${MIN_PART_SIZE} to ${MAX_PART_SIZE} bytes, got ${minPartSize}`);
  }
  const fitting = Math.ceil(Math.ceil(size / MAX_PARTS) / MiB) * MiB;
  const partSize = Math.min(MAX_PART_SIZE, Math.max(minPartSize, fitting));
  return {
    partSize,
    partCount: Math.max(1, Math.ceil(size / partSize)),
    queueSize: Math.max(1, Math.floor(PART_BYTES_IN_FLIGHT / partSize)),
  };
}

/**
 * The source's own part layout, when it can be the upload's: a multipart source whose parts are all one
 * size (the last no larger) within S3's part limits. Copying in the source's parts gives the copy the
 * source's ETag and lets the MD5 each source part is checked with serve as that part's Content-MD5, so no
 * byte is hashed twice. Undefined for any other source; then planParts decides.
 */
export function followSourceParts(size: number, sourcePartSizes: readonly number[]): PartPlan | undefined {
  const [first] = sourcePartSizes;
  const last = sourcePartSizes.at(-1);
  if (first === undefined || last === undefined || sourcePartSizes.length < 2) return undefined;
  if (sourcePartSizes.length > MAX_PARTS || first < MIN_PART_SIZE || first > MAX_PART_SIZE) return undefined;
  if (last > first || !sourcePartSizes.slice(0, -1).every((partSize) => partSize === first)) return undefined;
  if (sourcePartSizes.reduce((sum, partSize) => sum + partSize, 0) !== size) return undefined;
  return {
    partSize: first,
    partCount: sourcePartSizes.length,
    queueSize: Math.max(1, Math.floor(PART_BYTES_IN_FLIGHT / first)),
  };
}

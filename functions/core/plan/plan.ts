/**
 * The plan room: what to do with each key, decided by merging the source listing with the ledger.
 *
 * - plan.ts (this file): the streaming merge-join of the two sorted streams into plan steps;
 * - list-source.ts: the source listing as an async generator over ListObjectsV2 pages, by key range;
 * - keys.ts: the byte order both streams share, the key size limit, and source → destination keys.
 */
import type { LedgerEntry } from '../state/state-store.js';
import { compareKeys } from './keys.js';
import type { SourceObject } from './list-source.js';

/**
 * Storage classes whose objects must be restored before a GET. Intelligent-Tiering's archive tiers do not
 * show in a listing: their GET is refused (InvalidObjectState) and the copy reports them archived.
 */
const ARCHIVED_STORAGE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/** What the planner decided for one key. */
export type PlanStep =
  | { action: 'copy'; reason: 'new' | 'changed' | 'retry'; object: SourceObject; previous?: LedgerEntry }
  | { action: 'unchanged'; object: SourceObject }
  | { action: 'archived'; object: SourceObject }
  | { action: 'deleted'; entry: LedgerEntry };

/**
 * Merge-joins the source listing with the ledger, both sorted by UTF-8 bytes, in one pass: O(N) time,
 * memory for one page of each, and no per-object DynamoDB read.
 *
 * A key is copied when it is new, when its ETag, size or LastModified differs from the version last
 * copied, or when its last attempt failed. ETag catches same-size rewrites; LastModified is compared
 * for *equality*, never as a watermark, so a multipart object whose LastModified predates the last run
 * (S3 stamps the upload's start) is still caught, and so is a rewrite with the same bytes but new
 * metadata, which keeps its ETag. Keys only in the ledger were deleted at the source.
 */
export async function* planSteps(
  source: AsyncIterable<SourceObject>,
  ledger: AsyncIterable<LedgerEntry>,
): AsyncGenerator<PlanStep> {
  const sourceIterator = source[Symbol.asyncIterator]();
  const ledgerIterator = ledger[Symbol.asyncIterator]();
  let object = await next(sourceIterator);
  let entry = await next(ledgerIterator);
  let previousKey: string | undefined;

  while (object !== undefined || entry !== undefined) {
    // Stryker disable next-line UnaryOperator: with the ledger exhausted, any order but 0 takes the same path
    const order = object === undefined ? 1 : entry === undefined ? -1 : compareKeys(object.key, entry.key);
    if (order > 0 && entry !== undefined) {
      yield { action: 'deleted', entry };
      entry = await next(ledgerIterator);
      continue;
    }
    if (object === undefined) break;
    if (previousKey !== undefined && compareKeys(previousKey, object.key) >= 0) {
      // The merge is only correct on sorted input; refuse rather than copy the wrong set.
      throw new Error(`source listing out of order: "${object.key}" after "${previousKey}"`);
    }
    previousKey = object.key;
    const match = order === 0 ? entry : undefined;
    yield decide(object, match);
    object = await next(sourceIterator);
    if (match) entry = await next(ledgerIterator);
  }
}

function decide(object: SourceObject, entry: LedgerEntry | undefined): PlanStep {
  // A restored copy can be read (until the restore expires); one copied before it was archived is unchanged.
  const unreadable = ARCHIVED_STORAGE_CLASSES.has(object.storageClass) && !object.restored;
  if (unreadable && !sameVersion(object, entry)) return { action: 'archived', object };
  if (entry === undefined) return { action: 'copy', reason: 'new', object };
  if (entry.etag === undefined) return { action: 'copy', reason: 'retry', object, previous: entry };
  if (!sameVersion(object, entry)) return { action: 'copy', reason: 'changed', object, previous: entry };
  return { action: 'unchanged', object };
}

/** The ledger holds a completed copy of exactly this version: same ETag, size and LastModified. */
function sameVersion(object: SourceObject, entry: LedgerEntry | undefined): boolean {
  return (
    entry?.etag === object.etag &&
    entry.size === object.size &&
    // The instants, not their text: parsing the ledger's ISO string is cheaper than formatting the listed
    // date, once per listed key. An entry without lastModified parses to NaN, which equals nothing.
    Date.parse(entry.lastModified ?? '') === object.lastModified.getTime()
  );
}

async function next<T>(iterator: AsyncIterator<T>): Promise<T | undefined> {
  const result = await iterator.next();
  return result.done ? undefined : result.value;
}

/**
 * The condition a copy's write carries (If-None-Match for a new key, If-Match on this sync's last copy), and,
 * when S3 refuses it, whether one more attempt under another condition is safe.
 */
import type { PutObjectCommandInput } from '@aws-sdk/client-s3';
import { awsErrorCode } from '../errors.js';
import type { CopyRequest } from './copy-object.js';
import { stripQuotes } from './integrity.js';
import { DestinationOccupiedError } from './occupied-destination.js';

/**
 * When a conditional write was refused, whether one more attempt under another condition is safe:
 * - the copy this sync wrote earlier is gone (a consumer moved it): write where nothing is;
 * - the job mirrors, so it may replace what is there: replace exactly the object it saw;
 * - the destination holds what an interrupted run of this job wrote (its intent is in the ledger, and
 *   the object is the size it was writing and no older than the intent): replace exactly that object.
 */
export function conditionForSecondAttempt(
  error: unknown,
  condition: WriteCondition,
  request: CopyRequest,
): WriteCondition | undefined {
  if (condition.IfMatch && awsErrorCode(error).name === 'NoSuchKey') return { IfNoneMatch: '*' };
  if (!(error instanceof DestinationOccupiedError)) return undefined;
  if (request.overwrite) return error.found ? { IfMatch: error.found.etag } : {};
  const interrupted = request.interruptedWrite;
  if (!interrupted || !error.found) return undefined;
  const { etag, size, lastModified } = error.found;
  const writtenAfterIntent = lastModified.getTime() >= Date.parse(interrupted.since) - CLOCK_SKEW_MS;
  return interrupted.sizes.includes(size) && writtenAfterIntent ? { IfMatch: etag } : undefined;
}

/** Allowance between this machine's clock and S3's (which also truncates LastModified to seconds). */
const CLOCK_SKEW_MS = 5_000;

export type WriteCondition = Pick<PutObjectCommandInput, 'IfMatch' | 'IfNoneMatch'>;

/**
 * Writes are conditional even for mirror jobs: a refused write then shows whether the destination
 * already holds these very bytes (adopted, not uploaded twice) before anything is replaced.
 */
export function writeCondition(request: Pick<CopyRequest, 'previousDestinationEtag'>): WriteCondition {
  if (request.previousDestinationEtag)
    return { IfMatch: `"${stripQuotes(request.previousDestinationEtag)}"` };
  return { IfNoneMatch: '*' };
}

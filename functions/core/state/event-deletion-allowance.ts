/**
 * The deletions a mirror job's events may make per time window (docs/event-driven.md, "The deletion cap
 * of events"), kept in the state table so that every copy worker, in every container and batch, draws on
 * one allowance. The copy mapping hands a worker one record at a time, so a count kept in memory would
 * bound nothing: a producer emptying its bucket by mistake would empty the destination too.
 *
 *   pk = "job#<jobId>"  sk = "event-deletions#<window start, ISO>"            taken: deletions granted in the window
 *   pk = "job#<jobId>"  sk = "event-deletion#<sha256(key)>#<sequencer>"    one change's grant, written once
 *
 * Windows are fixed, aligned on multiples of their length since the epoch (on the hour for 60 minutes):
 * a burst that straddles a boundary may take two windows' allowance. Both items carry `purgeAt`, the
 * table's TTL attribute.
 */
import { createHash } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describeError, StateStoreError } from '../errors.js';
import { isConflict, MAX_CONFLICT_ATTEMPTS, pauseAfterConflict, reasons } from './transaction-conflicts.js';

/** A window's count is kept a day past its end, for an operator reading why deletions stopped. */
const WINDOW_RETENTION_SECONDS = 24 * 3600;
/**
 * A change's grant is kept 14 days, SQS's longest message retention: any redelivery of its event (a delete
 * that failed after the grant, say) finds it and is not counted again.
 */
const GRANT_RETENTION_SECONDS = 14 * 24 * 3600;
/** A window of the allowance: `[start, end)`. */
export interface DeletionWindow {
  start: Date;
  end: Date;
}

/** What asking for one deletion gave: granted, or refused as the window's `max` deletions were taken. */
export interface DeletionReservation {
  granted: boolean;
  window: DeletionWindow;
}

/** The change whose deletion is asked for, and the job's allowance. */
export interface DeletionRequest {
  jobId: string;
  key: string;
  /** The S3 event's sequencer: with the key, what names one change, however often it is delivered. */
  sequencer: string;
  /** Deletions allowed per window (the job's `maxDeletesPerRun`). */
  max: number;
  windowMinutes: number;
  now: Date;
}

/** The window `now` falls in, for windows of `windowMinutes`. */
export function deletionWindow(now: Date, windowMinutes: number): DeletionWindow {
  const length = windowMinutes * 60_000;
  const start = Math.floor(now.getTime() / length) * length;
  return { start: new Date(start), end: new Date(start + length) };
}

/** Reads and takes a job's event deletion allowance in the state table. */
export class EventDeletionAllowance {
  readonly #doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly tableName: string,
  ) {
    this.#doc = DynamoDBDocumentClient.from(client);
  }

  /**
   * Takes one deletion off the allowance of the window `request.now` falls in, in one transaction: the
   * change's grant, written once, and `ADD taken 1` on the window's count under `taken < max`. A change
   * granted before (its event delivered again, in this window or a later one) is granted again without
   * counting twice. With `max` 0 nothing is granted, and nothing is read.
   *
   * @throws StateStoreError when the table cannot be written (the event's record fails and comes back:
   *   nothing is deleted without the allowance)
   */
  async reserve(request: DeletionRequest): Promise<DeletionReservation> {
    const window = deletionWindow(request.now, request.windowMinutes);
    if (request.max <= 0) return { granted: false, window };
    const pk = `job#${request.jobId}`;
    const nowSeconds = Math.floor(request.now.getTime() / 1000);
    const transaction = new TransactWriteCommand({
      TransactItems: [
        {
          Put: {
            TableName: this.tableName,
            Item: {
              pk,
              sk: `event-deletion#${sha256(request.key)}#${request.sequencer}`,
              key: request.key,
              window: window.start.toISOString(),
              purgeAt: nowSeconds + GRANT_RETENTION_SECONDS,
            },
            // Written once: a second delivery of the change finds it and takes nothing more.
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Update: {
            TableName: this.tableName,
            Key: { pk, sk: `event-deletions#${window.start.toISOString()}` },
            UpdateExpression: 'SET purgeAt = :purgeAt, windowEnd = :end ADD taken :one',
            // The cap: once `max` deletions were granted in the window, the next is refused.
            ConditionExpression: 'attribute_not_exists(taken) OR taken < :max',
            ExpressionAttributeValues: {
              ':one': 1,
              ':max': request.max,
              ':end': window.end.toISOString(),
              ':purgeAt': Math.floor(window.end.getTime() / 1000) + WINDOW_RETENTION_SECONDS,
            },
          },
        },
      ],
    });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#doc.send(transaction);
        return { granted: true, window };
      } catch (error) {
        const [granted, count] = reasons(error);
        if (granted === 'ConditionalCheckFailed') return { granted: true, window };
        if (count === 'ConditionalCheckFailed') return { granted: false, window };
        // Workers deleting at the same moment contend for the window's count: one goes again.
        if (isConflict(granted, count) && attempt < MAX_CONFLICT_ATTEMPTS) {
          await pauseAfterConflict(attempt);
          continue;
        }
        throw new StateStoreError(
          `state table "${this.tableName}": reserving an event deletion of job "${request.jobId}" failed: ` +
            `${describeError(error)}. The event comes back and deletes nothing until the allowance can be read; ` +
            'check that DynamoDB is reachable from here and the function may write the table',
          { cause: error, table: this.tableName, operation: 'reserveEventDeletion (TransactWriteItems)' },
        );
      }
    }
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The state table itself, shared by the state room's files: the client and table a StateStore opened,
 * the capacity its requests consumed, the item keys, and the rules every request follows (errors that
 * name the table and the operation; the fence on every ledger and checkpoint write).
 */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsErrorCode, describeError, LeaseLostError, StateStoreError } from '../errors.js';

/*
 * One table holds every job's state; all keys are strings.
 *
 *   pk = "ledger#<jobId>"  sk = <raw source key>       what was copied: one item per source key
 *   pk = "job#<jobId>"     sk = "lease"                 who is running the job, until when
 *   pk = "job#<jobId>"     sk = "checkpoint"            where an unfinished pass resumes; last complete pass
 *   pk = "job#<jobId>"     sk = "run#<startedAt>#<id>"  one record per run
 *   pk = "job#<jobId>"     sk = "intent#<runId>#<n>"    keys a run is about to upload (deleted when done)
 *   pk = "job#<jobId>"     sk = "upload#<sha256(key)>"  a multipart upload a run started (deleted when done)
 *   pk = "jobs"            sk = <jobId>                 a job stored as data, scheduled by `jobs add` (job-store.ts)
 *
 * The ledger's sort key is the raw S3 key, with no prefix: DynamoDB sorts string sort keys by UTF-8 bytes,
 * the order S3 lists in, so the planner merges a Query with a listing without sorting either. Both cap
 * keys at 1,024 bytes. A ledger partition takes about 1,000 writes/s; a job copying faster than that
 * would shard its ledger by a hash of the key (and merge the shards' sorted streams).
 */

/**
 * Sends one request to the state table; a failure other than a refused condition becomes a
 * StateStoreError naming the table, the operation and the likely fix. The job store shares it.
 */
export async function callStateTable<T>(
  table: string,
  operation: string,
  send: () => Promise<T>,
): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) throw error;
    throw new StateStoreError(
      `state table "${table}": ${operation} failed: ${describeError(error)}. ` +
        (awsErrorCode(error).name === 'ResourceNotFoundException'
          ? 'Check STATE_TABLE_NAME and the region: the table does not exist there'
          : 'Check that DynamoDB is reachable from here (endpoint, region, network) and the table exists'),
      { cause: error, table, operation },
    );
  }
}

/** Totals a run reports about DynamoDB. */
export interface CapacityCounter {
  readCapacityUnits: number;
  writeCapacityUnits: number;
}

/** One state table as the room's files use it: opened once per StateStore, its capacity counted there. */
export interface StateTable {
  readonly doc: DynamoDBDocumentClient;
  readonly name: string;
  readonly capacity: CapacityCounter;
}

/** Opens `name` through `client`; attributes left undefined are dropped, not refused. */
export function openStateTable(client: DynamoDBClient, name: string, capacity: CapacityCounter): StateTable {
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return { doc, name, capacity };
}

/**
 * Sends one request, naming the table and the operation when it fails (an unreachable endpoint, a
 * missing table, throttling past the SDK's retries). A refused condition is passed through: the
 * callers turn it into what it means (a lost lease, a held lease).
 */
export function call<T>(table: StateTable, operation: string, send: () => Promise<T>): Promise<T> {
  return callStateTable(table.name, operation, send);
}

/** The partition of a job's ledger, and of its other records. */
export const ledgerPk = (jobId: string) => `ledger#${jobId}`;
export const jobPk = (jobId: string) => `job#${jobId}`;
/** The fencing rule of every ledger and checkpoint write: a newer lease holder (higher fence) owns the item. */
export const fenceCondition = (fence: number) => ({
  ConditionExpression: 'attribute_not_exists(fence) OR fence <= :fence',
  ExpressionAttributeValues: { ':fence': fence },
});

/** Why a ledger write refused for its fence stops the run. */
export const ledgerLost = (jobId: string, key: string) =>
  `job ${jobId}: a newer run has written "${key}"; this run lost its lease and stops`;

/** Sends a fenced write; a refused fence means a newer run owns the item, and this one stops. */
export async function fencedWrite<T>(lostMessage: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new LeaseLostError(lostMessage, { cause: error });
    }
    throw error;
  }
}

import { type DynamoDBClient, ReturnConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import type { StateStore } from './state-store.js';

/** `status` lists at most this many failed keys; the count covers them all. */
const MAX_LISTED_FAILURES = 20;

/** One key whose last copy attempt failed, as the ledger records it. */
export interface LedgerFailure {
  key: string;
  reason: string;
  attempts: number;
  at: string;
}

/** A job at a glance: its last run, how far behind it is, what keeps failing, and who holds it. */
export interface JobStatus {
  jobId: string;
  /** The newest run record (the RunSummary the sync stored), if the job ever ran. */
  lastRun?: Record<string, unknown>;
  /** Seconds the destination lagged the source at the end of the last run, when the run recorded it. */
  replicationLagSeconds?: number;
  failureCount: number;
  /** The first failures in key order, at most {@link MAX_LISTED_FAILURES}. */
  failures: LedgerFailure[];
  /** The lease item; `held` is whether it is unexpired now. */
  lease?: { owner: string; expiresAt: string; fence: number; held: boolean };
}

/** What reading a job's status needs: the state store, and the same table for the failure query. */
export interface JobStatusDependencies {
  state: StateStore;
  dynamodb: DynamoDBClient;
  tableName: string;
}

/**
 * Streams the ledger entries of `jobId` that carry a `failure`, in key order. The Query reads the whole
 * ledger partition (a FilterExpression does not reduce read units), which is the price of a report run
 * by hand; the sync itself never calls this.
 */
export async function* listLedgerFailures(
  dynamodb: DynamoDBClient,
  tableName: string,
  jobId: string,
): AsyncGenerator<LedgerFailure> {
  const doc = DynamoDBDocumentClient.from(dynamodb);
  let startKey: QueryCommandInput['ExclusiveStartKey'];
  do {
    const page = await doc.send(
      new QueryCommand({
        TableName: tableName,
        // Same key layout as state-store.ts: the ledger partition of the job.
        KeyConditionExpression: 'pk = :pk',
        FilterExpression: 'attribute_exists(failure)',
        ExpressionAttributeValues: { ':pk': `ledger#${jobId}` },
        ProjectionExpression: 'sk, failure',
        ExclusiveStartKey: startKey,
        ReturnConsumedCapacity: ReturnConsumedCapacity.NONE,
      }),
    );
    for (const item of page.Items ?? []) {
      const failure = (item.failure ?? {}) as Partial<LedgerFailure>;
      yield {
        key: String(item.sk),
        reason: failure.reason ?? 'unknown',
        attempts: failure.attempts ?? 1,
        at: failure.at ?? '',
      };
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** Reads a job's status without writing anything. */
export async function readJobStatus(
  deps: JobStatusDependencies,
  jobId: string,
  now = Date.now(),
): Promise<JobStatus> {
  const [runs, lease] = await Promise.all([deps.state.recentRuns(jobId, 1), deps.state.readLease(jobId)]);
  const failures: LedgerFailure[] = [];
  let failureCount = 0;
  for await (const failure of listLedgerFailures(deps.dynamodb, deps.tableName, jobId)) {
    failureCount += 1;
    if (failures.length < MAX_LISTED_FAILURES) failures.push(failure);
  }
  const lastRun = runs[0];
  const lag = lastRun?.replicationLagSeconds;
  return {
    jobId,
    lastRun,
    replicationLagSeconds: typeof lag === 'number' ? lag : undefined,
    failureCount,
    failures,
    lease: lease && {
      owner: lease.owner,
      expiresAt: new Date(lease.expiresAt).toISOString(),
      fence: lease.fence,
      held: lease.expiresAt > now,
    },
  };
}

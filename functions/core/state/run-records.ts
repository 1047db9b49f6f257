/**
 * A job's checkpoint and run records, and the questions asked of the whole table about which jobs it holds.
 */
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  type ScanCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { call, fenceCondition, fencedWrite, jobPk, ledgerPk, type StateTable } from './state-table.js';

/** Where a pass stopped, and when one last finished. */
export interface Checkpoint {
  /** The pass has settled every key up to and including this one; the next run starts after it. */
  resumeAfter?: string;
  lastCompletePass?: { runId: string; finishedAt: string };
}

/** The checkpoint as stored (a consistent read); empty when the job has none. */
export async function readCheckpoint(table: StateTable, jobId: string): Promise<Checkpoint> {
  const result = await call(table, 'readCheckpoint (GetItem)', () =>
    table.doc.send(
      new GetCommand({
        TableName: table.name,
        Key: { pk: jobPk(jobId), sk: 'checkpoint' },
        ConsistentRead: true,
      }),
    ),
  );
  const { resumeAfter, lastCompletePass } = (result.Item ?? {}) as Checkpoint;
  return { resumeAfter, lastCompletePass };
}

/** Saves the checkpoint, fenced like the ledger. */
export async function writeCheckpoint(
  table: StateTable,
  jobId: string,
  checkpoint: Checkpoint,
  fence: number,
): Promise<void> {
  // A stale run must not move a newer run's resume position.
  await fencedWrite(`job ${jobId}: a newer run owns the checkpoint; stopping`, () =>
    call(table, 'writeCheckpoint (PutItem)', () =>
      table.doc.send(
        new PutCommand({
          TableName: table.name,
          Item: { pk: jobPk(jobId), sk: 'checkpoint', fence, ...checkpoint },
          ...fenceCondition(fence),
        }),
      ),
    ),
  );
}

/** Stores a run's summary; `status` reads the newest ones. */
export async function putRunRecord(
  table: StateTable,
  jobId: string,
  record: { runId: string; startedAt: string } & object,
): Promise<void> {
  await call(table, 'putRunRecord (PutItem)', () =>
    table.doc.send(
      new PutCommand({
        TableName: table.name,
        Item: { pk: jobPk(jobId), sk: `run#${record.startedAt}#${record.runId}`, ...record },
      }),
    ),
  );
}

/** The newest run records of a job, newest first. */
export async function recentRuns(
  table: StateTable,
  jobId: string,
  limit = 10,
): Promise<Record<string, unknown>[]> {
  const result = await call(table, 'recentRuns (Query)', () =>
    table.doc.send(
      new QueryCommand({
        TableName: table.name,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :run)',
        ExpressionAttributeValues: { ':pk': jobPk(jobId), ':run': 'run#' },
        ScanIndexForward: false,
        Limit: limit,
      }),
    ),
  );
  return result.Items ?? [];
}

/**
 * Whether the table holds anything of `jobId`: a lease, checkpoint, run record, intent or upload
 * (pk "job#..."), a ledger item, or the job itself in the job store (pk "jobs", which a stored job that
 * has not run yet only has). Three one-item Queries, so a mistyped id costs three reads.
 */
export async function hasJobRecords(table: StateTable, jobId: string): Promise<boolean> {
  const any = (pk: string, sk?: string) =>
    call(table, 'hasJobRecords (Query)', () =>
      table.doc.send(
        new QueryCommand({
          TableName: table.name,
          KeyConditionExpression: sk === undefined ? 'pk = :pk' : 'pk = :pk AND sk = :sk',
          ExpressionAttributeValues: { ':pk': pk, ...(sk !== undefined && { ':sk': sk }) },
          ProjectionExpression: 'pk',
          Limit: 1,
        }),
      ),
    );
  const found = await Promise.all([any(jobPk(jobId)), any(ledgerPk(jobId)), any('jobs', jobId)]);
  return found.some((result) => (result.Items?.length ?? 0) > 0);
}

/**
 * The job ids found in the first `maxItems` items of the table, sorted. This is a Scan: the table has no
 * index by job, so it reads items of every kind, ledger items included, and stops after `maxItems`
 * (billed on what it reads, not on the projection). On a table whose ledgers hold more than `maxItems`
 * items it may miss jobs; `complete` says whether it read the whole table.
 */
export async function sampleJobIds(
  table: StateTable,
  maxItems: number,
): Promise<{ jobIds: string[]; complete: boolean }> {
  const jobIds = new Set<string>();
  let read = 0;
  let startKey: ScanCommandInput['ExclusiveStartKey'];
  do {
    const page = await call(table, 'sampleJobIds (Scan)', () =>
      table.doc.send(
        new ScanCommand({
          TableName: table.name,
          ProjectionExpression: 'pk, sk',
          Limit: maxItems - read,
          ExclusiveStartKey: startKey,
        }),
      ),
    );
    for (const item of page.Items ?? []) {
      const pk = String(item.pk);
      const jobId = pk.startsWith('job#')
        ? pk.slice(4)
        : pk.startsWith('ledger#')
          ? pk.slice(7)
          : pk === 'jobs'
            ? String(item.sk)
            : undefined;
      if (jobId) jobIds.add(jobId);
    }
    read += page.Items?.length ?? 0;
    startKey = page.LastEvaluatedKey;
  } while (startKey && read < maxItems);
  return { jobIds: [...jobIds].sort(), complete: startKey === undefined };
}

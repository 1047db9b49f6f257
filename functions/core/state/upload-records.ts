/**
 * What a run writes before it uploads, so that a run that dies is traced: upload intents (the keys a batch
 * is about to write) and multipart upload records (an upload started, or cut and continuable).
 */
import { createHash } from 'node:crypto';
import { ReturnConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { call, jobPk, type StateTable } from './state-table.js';

/** Keys one run was about to upload, written before the uploads start. */
export interface UploadIntent {
  /** The item's sort key, for deleting it once the uploads are settled. */
  id: string;
  since: string;
  objects: { key: string; size: number }[];
}

/**
 * A multipart upload a run of the job started, written before its first part: a run that dies leaves it,
 * and a later run aborts it (see clean-orphan-uploads.ts). A copy cut by the deadline keeps it, with
 * `resume`, and the next run continues it.
 */
export interface MultipartUploadRecord {
  /** The source key. */
  key: string;
  destinationKey: string;
  /** '' while the upload is being created: the record is written first, so a run killed then is traced. */
  uploadId: string;
  runId: string;
  /**
   * The fan-out task delivery that started it (RunSettings.delivery): each delivery has its own record, so
   * one that completes its upload forgets only its own, never a duplicate's that is still open.
   */
  delivery?: string;
  /** Just before CreateMultipartUpload was sent. */
  startedAt: string;
  /** The source version the parts hold: the upload is continued only for this ETag. */
  sourceEtag: string;
  size: number;
  partSize: number;
  /** Set when the deadline cut the copy and the parts can be continued. */
  resume?: {
    /** Parts 1..completedParts are uploaded. */
    completedParts: number;
    /** Where the next read starts: 0, or a source part boundary at or before the first missing part. */
    readStart: number;
    /** MD5s (16 bytes each, concatenated) of the source parts before `readStart` (multipart sources). */
    sourcePartMd5s?: Uint8Array;
    /** MD5 of the bytes from `readStart` to the end of the part it falls inside, when not a part start. */
    tailMd5?: Uint8Array;
    /**
     * MD5s (16 bytes each, concatenated) of the uploaded parts wholly after `readStart`, parts
     * ceil(readStart / partSize) + 1 to completedParts, as sent with each part's Content-MD5: the next read
     * is checked against them, since a part's ETag is not its MD5 in an SSE-KMS destination.
     */
    partMd5s?: Uint8Array;
    /** The ETags S3 gave those same parts: the upload is continued only if it still lists them. */
    partEtags?: string[];
    cutAt: string;
  };
}

// A source key can take all 1,024 bytes a sort key allows, so upload records are keyed by its hash.
const uploadSk = (key: string, delivery?: string) =>
  `upload#${createHash('sha256').update(key).digest('base64url')}${delivery ? `#${delivery}` : ''}`;

/** The sort-key prefix of a run's upload intents (a batch number or a fan-out task id follows). */
export function intentPrefix(runId: string): string {
  return `intent#${runId}#`;
}

/**
 * Records, before a batch of uploads starts, which keys it will write: if the run then dies between
 * an upload and its ledger entry, the next run knows those destination objects may be its own. One
 * item per batch, not per key, keeps this to a few writes per thousand objects.
 */
export async function putUploadIntent(
  table: StateTable,
  jobId: string,
  runId: string,
  batch: number | string,
  intent: Omit<UploadIntent, 'id'>,
): Promise<string> {
  const id = `${intentPrefix(runId)}${String(batch).padStart(6, '0')}`;
  const result = await call(table, 'putUploadIntent (PutItem)', () =>
    table.doc.send(
      new PutCommand({
        TableName: table.name,
        Item: {
          pk: jobPk(jobId),
          sk: `${intentPrefix(runId)}${String(batch).padStart(6, '0')}`,
          ...intent,
        },
        ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
      }),
    ),
  );
  table.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
  return id;
}

/** Upload intents of a job, optionally of one run only. */
export async function readUploadIntents(
  table: StateTable,
  jobId: string,
  runId?: string,
): Promise<UploadIntent[]> {
  const intents: UploadIntent[] = [];
  let startKey: QueryCommandInput['ExclusiveStartKey'];
  do {
    const page = await call(table, 'readUploadIntents (Query)', () =>
      table.doc.send(
        new QueryCommand({
          TableName: table.name,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :intent)',
          ExpressionAttributeValues: {
            ':pk': jobPk(jobId),
            ':intent': runId ? intentPrefix(runId) : 'intent#',
          },
          ExclusiveStartKey: startKey,
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    table.capacity.readCapacityUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
    for (const item of page.Items ?? []) {
      intents.push({ id: item.sk, since: item.since, objects: item.objects });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return intents;
}

/** Deletes upload intents whose uploads are all settled in the ledger. */
export async function deleteUploadIntents(table: StateTable, jobId: string, ids: string[]): Promise<void> {
  await Promise.all(
    ids.map((id) =>
      call(table, 'deleteUploadIntents (DeleteItem)', () =>
        table.doc.send(new DeleteCommand({ TableName: table.name, Key: { pk: jobPk(jobId), sk: id } })),
      ),
    ),
  );
}

/** Records a multipart upload a run started, or where a cut one stands. */
export async function putMultipartUpload(
  table: StateTable,
  jobId: string,
  record: MultipartUploadRecord,
): Promise<void> {
  const result = await call(table, 'putMultipartUpload (PutItem)', () =>
    table.doc.send(
      new PutCommand({
        TableName: table.name,
        Item: { pk: jobPk(jobId), sk: uploadSk(record.key, record.delivery), ...record },
        ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
      }),
    ),
  );
  table.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
}

/** The multipart uploads runs of the job started and did not finish (completed or aborted). */
export async function readMultipartUploads(
  table: StateTable,
  jobId: string,
): Promise<MultipartUploadRecord[]> {
  const records: MultipartUploadRecord[] = [];
  let startKey: QueryCommandInput['ExclusiveStartKey'];
  do {
    const page = await call(table, 'readMultipartUploads (Query)', () =>
      table.doc.send(
        new QueryCommand({
          TableName: table.name,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :upload)',
          ExpressionAttributeValues: { ':pk': jobPk(jobId), ':upload': 'upload#' },
          ExclusiveStartKey: startKey,
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    table.capacity.readCapacityUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
    for (const item of page.Items ?? []) {
      const { pk: _pk, sk: _sk, ...record } = item;
      records.push(record as MultipartUploadRecord);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return records;
}

/** Forgets a multipart upload (of `delivery`, if a fan-out task's) once it is completed or aborted. */
export async function deleteMultipartUpload(
  table: StateTable,
  jobId: string,
  key: string,
  delivery?: string,
): Promise<void> {
  await call(table, 'deleteMultipartUpload (DeleteItem)', () =>
    table.doc.send(
      new DeleteCommand({
        TableName: table.name,
        Key: { pk: jobPk(jobId), sk: uploadSk(key, delivery) },
      }),
    ),
  );
}

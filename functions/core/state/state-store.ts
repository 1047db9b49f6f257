/**
 * The state room: everything the job keeps in DynamoDB between runs, written only under the lease fence.
 *
 * - state-store.ts (this file): the table: ledger, lease, checkpoint, upload intents, multipart uploads,
 *   run records;
 * - resume-tracker.ts: the settled prefix of a pass and the periodic checkpoint that saves it;
 * - interrupted-writes.ts: what runs that died may have written, from their upload intents;
 * - release-lease.ts: handing the lease back when a run ends.
 */
import { createHash } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  ReturnConsumedCapacity,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  ScanCommand,
  type ScanCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  awsErrorCode,
  describeError,
  JobAlreadyRunningError,
  LeaseLostError,
  StateStoreError,
} from '../errors.js';
import type { KeyRange } from '../plan/list-source.js';

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

/** What the ledger remembers about one source key. */
export interface LedgerEntry {
  key: string;
  /** Source ETag of the version last copied; absent when no copy has succeeded yet. */
  etag?: string;
  size?: number;
  lastModified?: string;
  /** SHA-256 (base64) of the bytes copied, computed on the stream. */
  sha256?: string;
  destinationKey?: string;
  /** Destination ETag this sync wrote; a later overwrite is conditional on it. */
  destinationEtag?: string;
  /**
   * How the copy was checked: the stored ETag against MD5s of the streamed bytes, or SDK checksums; for a
   * server-side copy (S3 moved the bytes of the version pinned by the listed ETag), the destination's ETag
   * equal to the source's (`copy-etag`), or only the pin and the part ranges' sizes (`copy-pinned`).
   */
  verifiedBy?: 'etag-md5' | 'sdk-checksum' | 'copy-etag' | 'copy-pinned';
  copiedAt?: string;
  runId?: string;
  /**
   * Written just before an upload starts and cleared when it is recorded: if the run dies in between,
   * the next run knows the object at the destination may be this job's own unrecorded write.
   */
  pending?: UnrecordedWrite;
  /** Set while the last attempt at the current source version failed. */
  failure?: { reason: string; attempts: number; at: string; etag?: string };
  /**
   * When a run first found this key needing a copy and left it uncopied (failed, cut by the deadline, or
   * not started before it): kept by every later run that leaves it uncopied, gone once a copy is
   * recorded. The replication lag counts from it, not from LastModified, so a backfill of old objects
   * does not look like a sync falling behind.
   */
  firstSeenAt?: string;
  /**
   * The S3 sequencer of the last change an event applied to this key, in the stored form (upper case,
   * right-padded: events/sequencer.ts `storedSequencer`), so a condition's string `<` orders it. Absent
   * when no event has applied a change since the key was last written by a pass.
   */
  sequencer?: string;
}

/** The job's lease, with the fencing token that orders its holders. */
export interface Lease {
  owner: string;
  expiresAt: number;
  fence: number;
  /** When the holder took the lease (epoch ms); absent on leases taken before it was recorded. */
  acquiredAt?: number;
}

/** Where a pass stopped, and when one last finished. */
export interface Checkpoint {
  /** The pass has settled every key up to and including this one; the next run starts after it. */
  resumeAfter?: string;
  lastCompletePass?: { runId: string; finishedAt: string };
}

/** Destination writes a run may have made without recording them: of one of these sizes, after `since`. */
export interface UnrecordedWrite {
  sizes: number[];
  since: string;
}

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

/** Totals a run reports about DynamoDB. */
export interface CapacityCounter {
  readCapacityUnits: number;
  writeCapacityUnits: number;
}

const ledgerPk = (jobId: string) => `ledger#${jobId}`;
// A source key can take all 1,024 bytes a sort key allows, so upload records are keyed by its hash.
const uploadSk = (key: string, delivery?: string) =>
  `upload#${createHash('sha256').update(key).digest('base64url')}${delivery ? `#${delivery}` : ''}`;
const jobPk = (jobId: string) => `job#${jobId}`;
/** The fencing rule of every ledger and checkpoint write: a newer lease holder (higher fence) owns the item. */
const fenceCondition = (fence: number) => ({
  ConditionExpression: 'attribute_not_exists(fence) OR fence <= :fence',
  ExpressionAttributeValues: { ':fence': fence },
});
const ledgerLost = (jobId: string, key: string) =>
  `job ${jobId}: a newer run has written "${key}"; this run lost its lease and stops`;

/*
 * A ledger item as stored. A no-change run Queries the whole ledger, and a Query is billed on the size of
 * the items it reads (a ProjectionExpression does not lower it), so the item is kept small: short names,
 * times as epoch milliseconds, the SHA-256 as 32 raw bytes, the destination key relative to the source
 * key, and the destination ETag only when it differs from the source's. About 190 B for a typical key:
 * ~23 read units per 1,000 unchanged keys instead of ~44 (test/integration/ledger-cost.test.ts).
 * `etag`, `fence`, `pending` and `failure` keep their names: conditions and ledgerFailures use them;
 * so does any field added to LedgerEntry without a compact form here.
 * Items written with the older long names are still read.
 */
interface LedgerItem {
  pk: string;
  sk: string;
  fence?: number;
  etag?: string;
  /** size */
  n?: number;
  /** lastModified, epoch ms */
  lm?: number;
  /** sha256, raw */
  h?: Uint8Array;
  /** destinationKey as `<n>|<head>`: head + key.slice(n) */
  dk?: string;
  /** destinationEtag, unquoted; absent when it equals etag, '' when there is none */
  de?: string;
  /** verifiedBy: 0 etag-md5, 1 sdk-checksum, 2 copy-etag, 3 copy-pinned */
  v?: number;
  /** copiedAt, epoch ms */
  ca?: number;
  /** runId */
  r?: string;
  pending?: UnrecordedWrite;
  failure?: LedgerEntry['failure'];
}

const VERIFIED_BY = ['etag-md5', 'sdk-checksum', 'copy-etag', 'copy-pinned'] as const;
const unquote = (etag: string) => etag.replace(/^"|"$/g, '');

/** Encodes `destinationKey` by what it shares with the end of `key` (usually all but the prefix). */
function relativeKey(key: string, destinationKey: string): string {
  let common = 0;
  while (
    // Stryker disable next-line LogicalOperator,ConditionalExpression,EqualityOperator: past either end the index reads undefined, which equals no character, so the comparison below stops the loop anyway
    common < key.length &&
    // Stryker disable next-line ConditionalExpression,EqualityOperator: as above
    common < destinationKey.length &&
    key[key.length - 1 - common] === destinationKey[destinationKey.length - 1 - common]
  ) {
    common += 1;
  }
  return `${key.length - common}|${destinationKey.slice(0, destinationKey.length - common)}`;
}

function absoluteKey(key: string, relative: string): string {
  const bar = relative.indexOf('|');
  return relative.slice(bar + 1) + key.slice(Number(relative.slice(0, bar)));
}

function toLedgerItem(jobId: string, entry: LedgerEntry, fence: number): LedgerItem {
  const {
    key,
    etag,
    size,
    lastModified,
    sha256,
    destinationKey,
    destinationEtag,
    verifiedBy,
    copiedAt,
    runId,
    pending,
    failure,
    ...others
  } = entry;
  return {
    // Fields added to LedgerEntry later keep their own names.
    ...others,
    pk: ledgerPk(jobId),
    sk: key,
    fence,
    etag,
    n: size,
    lm: lastModified === undefined ? undefined : Date.parse(lastModified),
    h: sha256 === undefined ? undefined : Buffer.from(sha256, 'base64'),
    dk: destinationKey === undefined ? undefined : relativeKey(key, destinationKey),
    // Absent means "same as etag"; '' means there is none.
    de:
      destinationEtag === undefined
        ? etag === undefined
          ? undefined
          : ''
        : etag !== undefined && unquote(etag) === unquote(destinationEtag)
          ? undefined
          : unquote(destinationEtag),
    v: verifiedBy === undefined ? undefined : VERIFIED_BY.indexOf(verifiedBy),
    ca: copiedAt === undefined ? undefined : Date.parse(copiedAt),
    r: runId,
    pending,
    failure,
  };
}

function fromLedgerItem(item: Record<string, unknown>): LedgerEntry {
  if (['size', 'lastModified', 'sha256', 'destinationKey', 'runId'].some((name) => name in item)) {
    // Written before the compact form: the attributes are the entry's own names.
    const { pk: _pk, sk, fence: _fence, ...rest } = item;
    return { key: sk as string, ...rest } as LedgerEntry;
  }
  const stored = item as unknown as LedgerItem;
  const { pk: _pk, sk: key, fence: _fence, etag: _e, n, lm, h, dk, de, v, ca, r, ...others } = stored;
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const entry: LedgerEntry = {
    ...(others as Partial<LedgerEntry>),
    key,
    etag: stored.etag,
    size: n,
    lastModified: iso(lm),
    sha256: h === undefined ? undefined : Buffer.from(h).toString('base64'),
    destinationKey: dk === undefined ? undefined : absoluteKey(key, dk),
    destinationEtag:
      de === '' ? undefined : (de ?? (stored.etag === undefined ? undefined : unquote(stored.etag))),
    verifiedBy: v === undefined ? undefined : VERIFIED_BY[v],
    copiedAt: iso(ca),
    runId: r,
  };
  for (const name of Object.keys(entry) as (keyof LedgerEntry)[]) {
    if (entry[name] === undefined) delete entry[name];
  }
  return entry;
}

/** The sort-key prefix of a run's upload intents (a batch number or a fan-out task id follows). */
export function intentPrefix(runId: string): string {
  return `intent#${runId}#`;
}

/** DynamoDB-backed state for sync jobs. */
export class StateStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly capacity: CapacityCounter = { readCapacityUnits: 0, writeCapacityUnits: 0 };

  /**
   * Sends one request, naming the table and the operation when it fails (an unreachable endpoint, a
   * missing table, throttling past the SDK's retries). A refused condition is passed through: the
   * callers turn it into what it means (a lost lease, a held lease).
   */
  async #call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    return callStateTable(this.#table, operation, send);
  }

  /** `client` and `tableName` stay readable: the doctor run by the function checks the same table. */
  /** Sends a fenced write; a refused fence means a newer run owns the item, and this one stops. */
  async #fenced<T>(lostMessage: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new LeaseLostError(lostMessage, { cause: error });
      }
      throw error;
    }
  }

  constructor(
    readonly client: DynamoDBClient,
    readonly tableName: string,
  ) {
    this.#doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#table = tableName;
  }

  /** Streams a job's ledger in sort-key (UTF-8 byte) order, restricted to `range`. */
  async *ledger(jobId: string, range: KeyRange = {}): AsyncGenerator<LedgerEntry> {
    const names: Record<string, string> = { '#pk': 'pk' };
    const values: Record<string, unknown> = { ':pk': ledgerPk(jobId) };
    let condition = '#pk = :pk';
    if (range.through !== undefined) {
      names['#sk'] = 'sk';
      values[':through'] = range.through;
      condition += ' AND #sk <= :through';
    }
    const fetchPage = (startKey: QueryCommandInput['ExclusiveStartKey']): Promise<QueryCommandOutput> =>
      this.#call('ledger (Query)', () =>
        this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
            KeyConditionExpression: condition,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
          }),
        ),
      );
    // One page ahead, as in listSource, so the merge waits on neither stream.
    let next: ReturnType<typeof fetchPage> | undefined = fetchPage(
      range.after === undefined ? undefined : { pk: ledgerPk(jobId), sk: range.after },
    );
    try {
      while (next) {
        const page: QueryCommandOutput = await next;
        this.capacity.readCapacityUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
        next = page.LastEvaluatedKey ? fetchPage(page.LastEvaluatedKey) : undefined;
        for (const item of page.Items ?? []) yield fromLedgerItem(item);
      }
    } finally {
      // Stryker disable next-line ConditionalExpression: Promise.resolve(undefined).catch does nothing
      if (next) Promise.resolve(next).catch(() => {});
    }
  }

  /**
   * The ledger entries of `jobId` whose last attempt failed, in key order. The Query reads the whole
   * ledger partition (a FilterExpression does not reduce read units): the price of a report run by hand;
   * the sync itself never calls this.
   */
  async *ledgerFailures(jobId: string): AsyncGenerator<{ key: string; failure: LedgerEntry['failure'] }> {
    let startKey: QueryCommandInput['ExclusiveStartKey'];
    do {
      const page = await this.#call('ledgerFailures (Query)', () =>
        this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
            KeyConditionExpression: 'pk = :pk',
            FilterExpression: 'attribute_exists(failure)',
            ExpressionAttributeValues: { ':pk': ledgerPk(jobId) },
            ProjectionExpression: 'sk, failure',
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) yield { key: String(item.sk), failure: item.failure };
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  /**
   * Records the outcome for one key. The write carries the lease's fencing token and is refused when a
   * newer lease holder has already written the key, so a stale run cannot roll the ledger back.
   */
  async putLedgerEntry(jobId: string, entry: LedgerEntry, fence: number): Promise<void> {
    const { key } = entry;
    const result = await this.#fenced(ledgerLost(jobId, key), () =>
      this.#call('putLedgerEntry (PutItem)', () =>
        this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: toLedgerItem(jobId, entry, fence),
            ...fenceCondition(fence),
            ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
          }),
        ),
      ),
    );
    this.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
  }

  /**
   * Records that the copy of `entry.key` did not complete (it failed, or the deadline cut it), unless a
   * copy newer than `plannedCopiedAt` (the one the writer planned from) is on record: a twin delivery of the
   * same task (same fence) recorded it meanwhile, and this entry, built from the older plan, would erase it
   * and have the next pass copy the object again.
   *
   * @returns the entry kept instead of this one, or undefined when this one was written
   * @throws LeaseLostError when a pass with a newer fence has written the key
   */
  async putUncopiedEntry(
    jobId: string,
    entry: LedgerEntry,
    fence: number,
    plannedCopiedAt?: string,
  ): Promise<LedgerEntry | undefined> {
    const fenced = fenceCondition(fence);
    const planned = plannedCopiedAt === undefined ? 0 : Date.parse(plannedCopiedAt);
    try {
      const result = await this.#call('putUncopiedEntry (PutItem)', () =>
        this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: toLedgerItem(jobId, entry, fence),
            // A newer lease holder owns the item, and a copy recorded after the plan stays.
            ConditionExpression: `(${fenced.ConditionExpression}) AND (attribute_not_exists(ca) OR ca <= :planned)`,
            ExpressionAttributeValues: { ...fenced.ExpressionAttributeValues, ':planned': planned },
            ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
          }),
        ),
      );
      this.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
      return undefined;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // One condition refused, two meanings: read which (the item as it is now, its fence included).
      const { Item } = await this.#call('putUncopiedEntry (GetItem)', () =>
        this.#doc.send(
          new GetCommand({
            TableName: this.#table,
            Key: { pk: ledgerPk(jobId), sk: entry.key },
            ConsistentRead: true,
          }),
        ),
      );
      if (Item && !(Number(Item.fence) > fence) && Number(Item.ca) > planned) return fromLedgerItem(Item);
      throw new LeaseLostError(ledgerLost(jobId, entry.key), { cause: error });
    }
  }

  /** One key's ledger entry (a consistent read), or undefined when the ledger has none. */
  async ledgerEntry(jobId: string, key: string): Promise<LedgerEntry | undefined> {
    const result = await this.#call('ledgerEntry (GetItem)', () =>
      this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { pk: ledgerPk(jobId), sk: key },
          ConsistentRead: true,
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    this.capacity.readCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
    return result.Item ? fromLedgerItem(result.Item) : undefined;
  }

  /**
   * Records a change an event applied (`entry.sequencer` in the stored form): refused when the ledger
   * already holds this key's change at this sequencer or a later one, so the key never moves backwards,
   * and fenced like every ledger write.
   *
   * @returns 'stale' when a change at this sequencer or later was already recorded
   * @throws LeaseLostError when a pass with a newer fence has written the key
   */
  async putLedgerEntryInOrder(
    jobId: string,
    entry: LedgerEntry & { sequencer: string },
    fence: number,
  ): Promise<'recorded' | 'stale'> {
    const fenced = fenceCondition(fence);
    try {
      const result = await this.#call('putLedgerEntryInOrder (PutItem)', () =>
        this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: toLedgerItem(jobId, entry, fence),
            // A later change of the key was recorded (a sequencer only grows), and a newer lease holder
            // owns the item.
            ConditionExpression: `(attribute_not_exists(sequencer) OR sequencer < :sequencer) AND (${fenced.ConditionExpression})`,
            ExpressionAttributeValues: { ...fenced.ExpressionAttributeValues, ':sequencer': entry.sequencer },
            ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
          }),
        ),
      );
      this.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
      return 'recorded';
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // One condition refused, two meanings: read which (the item as it is now).
      const stored = await this.ledgerEntry(jobId, entry.key);
      if (stored?.sequencer !== undefined && stored.sequencer >= entry.sequencer) return 'stale';
      throw new LeaseLostError(ledgerLost(jobId, entry.key), { cause: error });
    }
  }

  /** Removes a key from the ledger after its destination copy was deleted (mirror jobs). */
  async deleteLedgerEntry(jobId: string, key: string, fence: number): Promise<void> {
    await this.#fenced(ledgerLost(jobId, key), () =>
      this.#call('deleteLedgerEntry (DeleteItem)', () =>
        this.#doc.send(
          new DeleteCommand({
            TableName: this.#table,
            Key: { pk: ledgerPk(jobId), sk: key },
            ...fenceCondition(fence),
          }),
        ),
      ),
    );
  }

  /**
   * Takes the job's lease for `ttlMs`, or throws JobAlreadyRunningError naming the holder.
   * Each acquisition increments the fencing token.
   */
  async acquireLease(jobId: string, owner: string, ttlMs: number, now = Date.now()): Promise<Lease> {
    try {
      const result = await this.#call('acquireLease (UpdateItem)', () =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: { pk: jobPk(jobId), sk: 'lease' },
            UpdateExpression:
              'SET #owner = :owner, expiresAt = :expiresAt, acquiredAt = :now, fence = if_not_exists(fence, :zero) + :one',
            // Free, expired (its holder died or overran), or already ours (a retried acquire).
            ConditionExpression: 'attribute_not_exists(expiresAt) OR expiresAt < :now OR #owner = :owner',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: {
              ':owner': owner,
              ':expiresAt': now + ttlMs,
              ':now': now,
              ':zero': 0,
              ':one': 1,
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      const item = result.Attributes as Lease;
      return { owner: item.owner, expiresAt: item.expiresAt, fence: item.fence, acquiredAt: item.acquiredAt };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const holder = await this.readLease(jobId);
      const iso = (ms: number | undefined) => (ms === undefined ? 'unknown' : new Date(ms).toISOString());
      throw new JobAlreadyRunningError(
        `job ${jobId} is already running (run ${holder?.owner ?? 'unknown'}, holding the lease since ` +
          `${iso(holder?.acquiredAt)}, until ${iso(holder?.expiresAt)} unless it renews it); ` +
          'this invocation copied nothing. It will run on the next schedule.',
        { cause: error },
      );
    }
  }

  /** Extends a held lease; throws LeaseLostError when another run has taken it. */
  async renewLease(jobId: string, lease: Lease, ttlMs: number, now = Date.now()): Promise<Lease> {
    try {
      await this.#call('renewLease (UpdateItem)', () =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: { pk: jobPk(jobId), sk: 'lease' },
            UpdateExpression: 'SET expiresAt = :expiresAt',
            // Only the holder of this exact acquisition may extend it.
            ConditionExpression: '#owner = :owner AND fence = :fence',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: {
              ':owner': lease.owner,
              ':fence': lease.fence,
              ':expiresAt': now + ttlMs,
            },
          }),
        ),
      );
      return { ...lease, expiresAt: now + ttlMs };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new LeaseLostError(`job ${jobId}: lease taken over by another run; stopping`, { cause: error });
      }
      throw error;
    }
  }

  /** Gives the lease back so the next run need not wait for it to expire. */
  async releaseLease(jobId: string, lease: Lease): Promise<void> {
    await this.#zeroLease('releaseLease', jobId, lease, false);
  }

  /**
   * Sets the lease's expiry to 0 if `lease` still holds it (owner and fence; with `asRead`, also not
   * renewed since it was read). Returns false when the condition refused the write.
   */
  async #zeroLease(operation: string, jobId: string, lease: Lease, asRead: boolean): Promise<boolean> {
    try {
      await this.#call(`${operation} (UpdateItem)`, () =>
        this.#doc.send(
          new UpdateCommand({
            TableName: this.#table,
            Key: { pk: jobPk(jobId), sk: 'lease' },
            UpdateExpression: 'SET expiresAt = :zero',
            // Releasing someone else's lease would let a third run in beside them; `asRead` also
            // spares a holder that renewed it since it was read (it is alive).
            ConditionExpression: `#owner = :owner AND fence = :fence${asRead ? ' AND expiresAt = :expiresAt' : ''}`,
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: {
              ':owner': lease.owner,
              ':fence': lease.fence,
              ':zero': 0,
              ...(asRead && { ':expiresAt': lease.expiresAt }),
            },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async readLease(jobId: string): Promise<Lease | undefined> {
    const result = await this.#call('readLease (GetItem)', () =>
      this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { pk: jobPk(jobId), sk: 'lease' },
          ConsistentRead: true,
        }),
      ),
    );
    return result.Item as Lease | undefined;
  }

  async readCheckpoint(jobId: string): Promise<Checkpoint> {
    const result = await this.#call('readCheckpoint (GetItem)', () =>
      this.#doc.send(
        new GetCommand({
          TableName: this.#table,
          Key: { pk: jobPk(jobId), sk: 'checkpoint' },
          ConsistentRead: true,
        }),
      ),
    );
    const { resumeAfter, lastCompletePass } = (result.Item ?? {}) as Checkpoint;
    return { resumeAfter, lastCompletePass };
  }

  /** Saves the checkpoint, fenced like the ledger. */
  async writeCheckpoint(jobId: string, checkpoint: Checkpoint, fence: number): Promise<void> {
    // A stale run must not move a newer run's resume position.
    await this.#fenced(`job ${jobId}: a newer run owns the checkpoint; stopping`, () =>
      this.#call('writeCheckpoint (PutItem)', () =>
        this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: { pk: jobPk(jobId), sk: 'checkpoint', fence, ...checkpoint },
            ...fenceCondition(fence),
          }),
        ),
      ),
    );
  }

  /**
   * Records, before a batch of uploads starts, which keys it will write: if the run then dies between
   * an upload and its ledger entry, the next run knows those destination objects may be its own. One
   * item per batch, not per key, keeps this to a few writes per thousand objects.
   */
  async putUploadIntent(
    jobId: string,
    runId: string,
    batch: number | string,
    intent: Omit<UploadIntent, 'id'>,
  ): Promise<string> {
    const id = `${intentPrefix(runId)}${String(batch).padStart(6, '0')}`;
    const result = await this.#call('putUploadIntent (PutItem)', () =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: {
            pk: jobPk(jobId),
            sk: `${intentPrefix(runId)}${String(batch).padStart(6, '0')}`,
            ...intent,
          },
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    this.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
    return id;
  }

  /** Upload intents of a job, optionally of one run only. */
  async readUploadIntents(jobId: string, runId?: string): Promise<UploadIntent[]> {
    const intents: UploadIntent[] = [];
    let startKey: QueryCommandInput['ExclusiveStartKey'];
    do {
      const page = await this.#call('readUploadIntents (Query)', () =>
        this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
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
      this.capacity.readCapacityUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
      for (const item of page.Items ?? []) {
        intents.push({ id: item.sk, since: item.since, objects: item.objects });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return intents;
  }

  /** Deletes upload intents whose uploads are all settled in the ledger. */
  async deleteUploadIntents(jobId: string, ids: string[]): Promise<void> {
    await Promise.all(
      ids.map((id) =>
        this.#call('deleteUploadIntents (DeleteItem)', () =>
          this.#doc.send(new DeleteCommand({ TableName: this.#table, Key: { pk: jobPk(jobId), sk: id } })),
        ),
      ),
    );
  }

  /** Stores a run's summary; `status` reads the newest ones. */
  async putRunRecord(jobId: string, record: { runId: string; startedAt: string } & object): Promise<void> {
    await this.#call('putRunRecord (PutItem)', () =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: jobPk(jobId), sk: `run#${record.startedAt}#${record.runId}`, ...record },
        }),
      ),
    );
  }

  /** The newest run records of a job, newest first. */
  async recentRuns(jobId: string, limit = 10): Promise<Record<string, unknown>[]> {
    const result = await this.#call('recentRuns (Query)', () =>
      this.#doc.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :run)',
          ExpressionAttributeValues: { ':pk': jobPk(jobId), ':run': 'run#' },
          ScanIndexForward: false,
          Limit: limit,
        }),
      ),
    );
    return result.Items ?? [];
  }

  /** Records a multipart upload a run started, or where a cut one stands. */
  async putMultipartUpload(jobId: string, record: MultipartUploadRecord): Promise<void> {
    const result = await this.#call('putMultipartUpload (PutItem)', () =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { pk: jobPk(jobId), sk: uploadSk(record.key, record.delivery), ...record },
          ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
        }),
      ),
    );
    this.capacity.writeCapacityUnits += result.ConsumedCapacity?.CapacityUnits ?? 0;
  }

  /** The multipart uploads runs of the job started and did not finish (completed or aborted). */
  async readMultipartUploads(jobId: string): Promise<MultipartUploadRecord[]> {
    const records: MultipartUploadRecord[] = [];
    let startKey: QueryCommandInput['ExclusiveStartKey'];
    do {
      const page = await this.#call('readMultipartUploads (Query)', () =>
        this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :upload)',
            ExpressionAttributeValues: { ':pk': jobPk(jobId), ':upload': 'upload#' },
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: ReturnConsumedCapacity.TOTAL,
          }),
        ),
      );
      this.capacity.readCapacityUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
      for (const item of page.Items ?? []) {
        const { pk: _pk, sk: _sk, ...record } = item;
        records.push(record as MultipartUploadRecord);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records;
  }

  /** Forgets a multipart upload (of `delivery`, if a fan-out task's) once it is completed or aborted. */
  async deleteMultipartUpload(jobId: string, key: string, delivery?: string): Promise<void> {
    await this.#call('deleteMultipartUpload (DeleteItem)', () =>
      this.#doc.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { pk: jobPk(jobId), sk: uploadSk(key, delivery) },
        }),
      ),
    );
  }

  /**
   * Whether the table holds anything of `jobId`: a lease, checkpoint, run record, intent or upload
   * (pk "job#..."), a ledger item, or the job itself in the job store (pk "jobs", which a stored job that
   * has not run yet only has). Three one-item Queries, so a mistyped id costs three reads.
   */
  async hasJobRecords(jobId: string): Promise<boolean> {
    const any = (pk: string, sk?: string) =>
      this.#call('hasJobRecords (Query)', () =>
        this.#doc.send(
          new QueryCommand({
            TableName: this.#table,
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
  async sampleJobIds(maxItems: number): Promise<{ jobIds: string[]; complete: boolean }> {
    const jobIds = new Set<string>();
    let read = 0;
    let startKey: ScanCommandInput['ExclusiveStartKey'];
    do {
      const page = await this.#call('sampleJobIds (Scan)', () =>
        this.#doc.send(
          new ScanCommand({
            TableName: this.#table,
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

  /**
   * Ends the lease `lease` as read, for `unlock`: only if it still has that holder, fence and expiry, so
   * a holder that renewed it since it was read (it is alive) or a run that took it over keeps it.
   *
   * @returns whether the lease was ended; false when it changed since it was read
   */
  async endLease(jobId: string, lease: Lease): Promise<boolean> {
    return this.#zeroLease('endLease', jobId, lease, true);
  }
}

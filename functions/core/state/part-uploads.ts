/**
 * The multipart uploads of a fan-out pass's giant objects (docs/fan-out.md): one upload per object version
 * (key and ETag) per pass, shared by its part tasks, each of which may be delivered any number of times.
 *
 *   pk = "job#<jobId>"  sk = "pass#<fence>#part-upload#<version>"          the upload: its id, the object,
 *                                                                          parts recorded, who completes it
 *   pk = "job#<jobId>"  sk = "pass#<fence>#part-upload#<version>#part#<n>" part n as uploaded, written once
 *
 * `<version>` is dispatch/part-tasks.ts's versionId(key, ETag). Every item carries the pass's `purgeAt`
 * (the table's TTL), so they go 30 days after the pass, never before it has ended.
 *
 * - The upload id is written once (`open`): a second opener finds the first one's id, adopts it, and aborts
 *   the upload it created itself.
 * - A part is recorded once, with the ETag S3 gave it, in one transaction with the count of parts recorded
 *   (refused once the upload is no longer `open`).
 * - Completion is claimed once (`open → completing`), only when every part is recorded; a claim quiet past
 *   `quietMs` may be taken over, so a completer that dies does not block the object forever.
 * - `completing → completed` by the claimer once the object and its ledger entry are written; `aborted`
 *   (by one worker, which then counts the object failed) when the source changed or a part kept failing.
 */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { NewPartUpload, PartUpload, RecordedPart } from './part-upload-item.js';
import { type ConditionItem, PASS_RETENTION_SECONDS } from './pass-item.js';
import { isConflict, MAX_CONFLICT_ATTEMPTS, pauseAfterConflict, reasons } from './transaction-conflicts.js';

export class PartUploads {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #pk: string;
  readonly #prefix: string;
  readonly #purgeAt = Math.floor(Date.now() / 1000) + PASS_RETENTION_SECONDS;

  constructor(client: DynamoDBClient, table: string, jobId: string, fence: number) {
    this.#doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.#table = table;
    this.#pk = `job#${jobId}`;
    this.#prefix = `pass#${fence}#part-upload#`;
  }

  /** The upload of `version` (a strongly consistent read), or undefined if none was opened. */
  async find(version: string): Promise<PartUpload | undefined> {
    const { Item } = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: this.#key(version), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, purgeAt: _purgeAt, ...upload } = Item;
    return upload as PartUpload;
  }

  /**
   * Keeps `upload` as the version's upload unless one is kept already; returns the one kept. An opener
   * whose id is not the one returned lost the race: it aborts its own upload.
   */
  async open(version: string, upload: NewPartUpload): Promise<PartUpload> {
    const item: PartUpload = { ...upload, state: 'open', recorded: 0 };
    try {
      await this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: { ...this.#key(version), ...item, purgeAt: this.#purgeAt },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return item;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return (await this.find(version)) as PartUpload;
    }
  }

  /**
   * Records `part` once: the first delivery's record stands (a second upload of the same part number
   * carried the same bytes, pinned to the same ETag). Returns the upload as stored afterwards, and whether
   * this call recorded the part. Refused (recorded: false) once the upload is no longer open.
   */
  async recordPart(version: string, part: RecordedPart): Promise<{ recorded: boolean; upload: PartUpload }> {
    const transaction = new TransactWriteCommand({
      TransactItems: [
        {
          Put: {
            TableName: this.#table,
            Item: { ...this.#key(`${version}#part#${part.partNumber}`), ...part, purgeAt: this.#purgeAt },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Update: {
            TableName: this.#table,
            Key: this.#key(version),
            UpdateExpression: 'ADD recorded :one',
            ConditionExpression: '#state = :open',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: { ':one': 1, ':open': 'open' },
          },
        },
      ],
    });
    let recorded = true;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#doc.send(transaction);
        break;
      } catch (error) {
        const [partReason, uploadReason] = reasons(error);
        if (partReason === 'ConditionalCheckFailed' || uploadReason === 'ConditionalCheckFailed') {
          recorded = false;
          break;
        }
        if (!isConflict(partReason, uploadReason) || attempt === MAX_CONFLICT_ATTEMPTS) throw error;
        await pauseAfterConflict(attempt);
      }
    }
    const upload = await this.find(version);
    if (!upload) throw new Error(`${this.#prefix}${version} of ${this.#pk} does not exist`);
    return { recorded, upload };
  }

  /** The parts recorded for `version`, by part number. */
  async parts(version: string): Promise<RecordedPart[]> {
    const parts: RecordedPart[] = [];
    let startKey: QueryCommandInput['ExclusiveStartKey'];
    do {
      const page = await this.#doc.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': this.#pk, ':prefix': `${this.#prefix}${version}#part#` },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const { partNumber, etag, size, md5 } of page.Items ?? []) {
        parts.push({ partNumber, etag, size, ...(md5 !== undefined && { md5 }) });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Claims the completion of `version` for `worker`: when every part is recorded and no one has claimed
   * it, or when the last claim was made more than `quietMs` ago and its upload is still not completed (its
   * claimer died). True for the one worker that now holds the claim, on behalf of part task `claim.taskId`.
   * `requires` (the task not settled yet, PassTally.unsettled) is checked in the same transaction: the task
   * on whose behalf the object is completed is the one that counts it, so it must still be able to.
   */
  async claimCompletion(
    version: string,
    claim: { worker: string; taskId: string },
    quietMs: number,
    now = Date.now(),
    requires?: ConditionItem,
  ): Promise<boolean> {
    return this.#update(
      version,
      'SET #state = :completing, claimedBy = :worker, claimedFor = :task, claimedAt = :now',
      '(#state = :open AND recorded = partCount) OR (#state = :completing AND claimedAt < :staleBefore)',
      {
        ':completing': 'completing',
        ':open': 'open',
        ':worker': claim.worker,
        ':task': claim.taskId,
        ':now': new Date(now).toISOString(),
        ':staleBefore': new Date(now - quietMs).toISOString(),
      },
      requires,
    );
  }

  /** Marks `version` completed, by the worker holding its claim; false if another took the claim over. */
  async completed(version: string, worker: string, destinationEtag: string): Promise<boolean> {
    return this.#update(
      version,
      'SET #state = :completed, destinationEtag = :etag',
      '#state = :completing AND claimedBy = :worker',
      {
        ':etag': destinationEtag,
        ':completed': 'completed',
        ':completing': 'completing',
        ':worker': worker,
      },
    );
  }

  /**
   * Marks `version` aborted because of `abort.reason`, on behalf of part task `abort.taskId`, unless it is
   * completed or aborted already. True for the one worker that aborted it: that worker aborts the upload in
   * S3; the task named counts the object failed (or vanished), whichever of its deliveries settles it.
   * `requires`, as for claimCompletion: the task named must not have settled already. `leftToEvent`: the
   * sequencer of an event's newer change, recorded meanwhile; the task then counts the object skipped.
   */
  async abort(
    version: string,
    abort: { reason: string; taskId: string; vanished?: boolean; leftToEvent?: string },
    requires?: ConditionItem,
  ): Promise<boolean> {
    const leftToEvent = abort.leftToEvent === undefined ? '' : ', leftToEvent = :leftToEvent';
    return this.#update(
      version,
      `SET #state = :aborted, abortedBecause = :reason, abortedFor = :task, vanished = :vanished${leftToEvent}`,
      '#state IN (:open, :completing)',
      {
        ':aborted': 'aborted',
        ':reason': abort.reason,
        ':task': abort.taskId,
        ':vanished': abort.vanished ?? false,
        ...(abort.leftToEvent !== undefined && { ':leftToEvent': abort.leftToEvent }),
        ':open': 'open',
        ':completing': 'completing',
      },
      requires,
    );
  }

  /**
   * A condition that `version`'s upload counts nothing for part task `taskId` (it is neither claimed for it
   * nor aborted for it), for that task's settlement with nothing (PassTally.settle's `requires`): a delivery
   * that read the upload before another delivery of its task claimed it must not settle the task empty.
   */
  countsNothingFor(version: string, taskId: string): ConditionItem {
    return {
      ConditionCheck: {
        TableName: this.#table,
        Key: this.#key(version),
        ConditionExpression:
          'NOT (claimedFor = :task AND #state IN (:completing, :completed)) AND NOT (abortedFor = :task AND #state = :aborted)',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ':task': taskId,
          ':completing': 'completing',
          ':completed': 'completed',
          ':aborted': 'aborted',
        },
      },
    };
  }

  async #update(
    version: string,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    requires?: ConditionItem,
  ): Promise<boolean> {
    const change = {
      TableName: this.#table,
      Key: this.#key(version),
      UpdateExpression: update,
      ConditionExpression: `attribute_exists(pk) AND (${condition})`,
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: values,
    };
    for (let attempt = 1; ; attempt += 1) {
      try {
        if (!requires) await this.#doc.send(new UpdateCommand(change));
        else
          await this.#doc.send(new TransactWriteCommand({ TransactItems: [{ Update: change }, requires] }));
        return true;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return false;
        const why = reasons(error);
        if (why.includes('ConditionalCheckFailed')) return false;
        // The task settling at the same moment (its other delivery): go again and find what it did.
        if (!isConflict(...why) || attempt === MAX_CONFLICT_ATTEMPTS) throw error;
        await pauseAfterConflict(attempt);
      }
    }
  }

  #key(suffix: string) {
    return { pk: this.#pk, sk: `${this.#prefix}${suffix}` };
  }
}

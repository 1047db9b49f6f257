/**
 * The tally of one fan-out pass (docs/fan-out.md): how many of its tasks are still outstanding and what the
 * settled ones added up to, kept in DynamoDB so that the pass ends exactly once however many workers settle
 * tasks at the same moment, and so that a task delivered twice counts once.
 *
 *   pk = "job#<jobId>"  sk = "pass#<fence>"                 outstanding, totals, state, endedBy, the job
 *   pk = "job#<jobId>"  sk = "pass#<fence>#task#<taskId>"   a settled task and what it added, written once
 *   pk = "job#<jobId>"  sk = "current-pass"                 the fence of the job's newest pass
 *
 * Every item of a pass carries `purgeAt`, the table's TTL attribute: DynamoDB removes it 30 days on.
 *
 * A task that creates tasks (a shard's planner) announces them with `expect` before it sends them, and
 * settles itself after: `outstanding` counts the announcing task until then, so it cannot reach 0 while
 * tasks are still being sent. A planner that dies between `expect` and sending leaves the pass open; the
 * next pass (a higher fence) supersedes it.
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { LAMBDA_MAX_TIMEOUT_MS } from '../run/run-deadline.js';

/** Counts a task adds to its pass: objects copied, bytes, failures, and so on. Names are [a-zA-Z]+. */
export type PassCounts = Record<string, number>;

/** What a pass is started with, for every worker of it to read. */
export interface PassDetails {
  /** The pass's run id: its manifest's folder and its upload intents' prefix. */
  runId: string;
  /** The job as the pass started it (validated), so every task of one pass works to the same job. */
  job: unknown;
  /**
   * For a job that follows events, the LastModified window (ISO times, `(from, to]`) its planners judge
   * `missedByEvents` by (events/missed-by-events.ts): worked out once, so every shard judges alike.
   */
  eventWindow?: { from: string; to: string };
}

/** The pass as stored. */
export interface PassState extends Partial<PassDetails> {
  outstanding: number;
  /**
   * `ending`: its last task settled and one worker claimed the end (it writes the manifest and run record);
   * `abandoned`: a newer pass took over before this one ended; it never ends.
   */
  state: 'running' | 'ending' | 'ended' | 'abandoned';
  totals: PassCounts;
  startedAt: string;
  /** When a task last settled (or the pass started): a pass quiet for long has lost its messages. */
  updatedAt: string;
  endedBy?: string;
  /**
   * While `ending`: the deadline of the worker writing the end (Lambda kills it then). Past it, that worker
   * is gone and another delivery takes the end over (`takeOverEnd`).
   */
  endingUntil?: string;
  /**
   * When an ender of this pass recorded its run event published (`markEventPublished`): an ender that takes
   * the end over does not publish it again.
   */
  eventPublishedAt?: string;
  /** When the pass was marked `ended`: the next pass of a job that follows events judges from it. */
  finishedAt?: string;
}

/** A settled task as stored: what it added, and what it noted for the pass's end (its failures, say). */
export interface SettledTask {
  taskId: string;
  counts: PassCounts;
  note?: Record<string, unknown>;
}

/** What settling a task did. */
export interface Settled {
  /** The task had been settled before (a redelivered message): nothing was added this time. */
  duplicate: boolean;
  /** Tasks of the pass still outstanding after this one; 0 means the pass may end (see `claimEnd`). */
  outstanding: number;
}

/**
 * A condition on another item of the state table, checked in the same transaction as a settlement or a
 * claim (a DynamoDB ConditionCheck): what makes "settle with nothing" and "claim the object for this task"
 * exclude each other (fanout/part-task.ts).
 */
export type ConditionItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const COUNT_NAME = /^[a-zA-Z]+$/;
/** How long a pass's items are kept: 30 days. */
export const PASS_RETENTION_SECONDS = 30 * 24 * 3600;
/** The item naming the job's newest pass. */
const CURRENT = 'current-pass';
/** Attempts at a settlement that DynamoDB cancels for a conflicting transaction on the same items. */
const MAX_CONFLICT_ATTEMPTS = 10;

export class PassTally {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #pk: string;
  readonly #sk: string;
  /**
   * When DynamoDB's TTL (the table's `purgeAt`) may remove the pass's items: long after any message of it
   * could still arrive (SQS keeps them 14 days at most), so a pass's bookkeeping does not pile up.
   */
  readonly #purgeAt = Math.floor(Date.now() / 1000) + PASS_RETENTION_SECONDS;

  constructor(
    client: DynamoDBClient,
    table: string,
    jobId: string,
    readonly fence: number,
  ) {
    this.#doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.#table = table;
    this.#pk = `job#${jobId}`;
    this.#sk = `pass#${fence}`;
  }

  /** The fence of the job's newest pass, or undefined if it never had one. */
  static async current(client: DynamoDBClient, table: string, jobId: string): Promise<number | undefined> {
    const { Item } = await DynamoDBDocumentClient.from(client).send(
      new GetCommand({ TableName: table, Key: { pk: `job#${jobId}`, sk: CURRENT }, ConsistentRead: true }),
    );
    return Item?.fence;
  }

  /**
   * Creates the pass with its first `tasks` outstanding (a shard planner each), and makes it the job's
   * current pass.
   *
   * @throws PassExistsError if it exists, or a newer pass of the job has been opened
   */
  async open(tasks: number, startedAt: string, details?: PassDetails): Promise<void> {
    try {
      await this.#open(tasks, startedAt, details);
    } catch (error) {
      const [pass, current] = reasons(error);
      if (pass === 'ConditionalCheckFailed') {
        throw new PassExistsError(`${this.#sk} of ${this.#pk} is already open`, { cause: error });
      }
      if (current === 'ConditionalCheckFailed') {
        throw new PassExistsError(`a pass newer than ${this.#sk} of ${this.#pk} has started`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async #open(tasks: number, startedAt: string, details?: PassDetails): Promise<void> {
    await this.#doc.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: this.#table,
              Item: {
                pk: this.#pk,
                sk: this.#sk,
                outstanding: tasks,
                state: 'running',
                totals: {},
                startedAt,
                updatedAt: startedAt,
                purgeAt: this.#purgeAt,
                ...details,
              },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            // Fences only grow: a starter that lost a race to a newer pass does not take the pointer back.
            Put: {
              TableName: this.#table,
              Item: { pk: this.#pk, sk: CURRENT, fence: this.fence },
              ConditionExpression: 'attribute_not_exists(fence) OR fence < :fence',
              ExpressionAttributeValues: { ':fence': this.fence },
            },
          },
        ],
      }),
    );
  }

  /**
   * A transaction's write of an item of this pass, `<pass>#<suffix>`, refused if it exists: what makes an
   * announcement, a settlement or a deletion count once however often its message is delivered.
   */
  #writeOnce(suffix: string, attributes: Record<string, unknown> = {}) {
    return {
      Put: {
        TableName: this.#table,
        Item: { pk: this.#pk, sk: `${this.#sk}#${suffix}`, ...attributes, purgeAt: this.#purgeAt },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** Marks a running or ending pass abandoned (a newer pass replaces it); false if it had ended. */
  async abandon(): Promise<boolean> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: this.#pk, sk: this.#sk },
          UpdateExpression: 'SET #state = :abandoned',
          ConditionExpression: '#state IN (:running, :ending)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':abandoned': 'abandoned',
            ':running': 'running',
            ':ending': 'ending',
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Announces `tasks` more tasks, before they are sent, once per `announcementId` (a planner delivered again
   * re-sends the same tasks under the same ids, and must not count them twice). Refused once the pass has
   * ended.
   */
  async expect(announcementId: string, tasks: number): Promise<void> {
    try {
      await this.#doc.send(
        new TransactWriteCommand({
          TransactItems: [
            this.#writeOnce(`announce#${announcementId}`, { tasks }),
            {
              Update: {
                TableName: this.#table,
                Key: { pk: this.#pk, sk: this.#sk },
                UpdateExpression: 'ADD outstanding :tasks',
                ConditionExpression: '#state = :running',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: { ':tasks': tasks, ':running': 'running' },
              },
            },
          ],
        }),
      );
    } catch (error) {
      const [announced, pass] = reasons(error);
      if (announced === 'ConditionalCheckFailed' && pass !== 'ConditionalCheckFailed') return;
      if (pass === 'ConditionalCheckFailed') {
        throw new PassEndedError(`${this.#sk} of ${this.#pk} is not running: tasks cannot be added to it`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /**
   * Settles task `taskId` once: in one transaction, records it and adds `counts` to the pass's totals and
   * takes it off `outstanding`. A second settlement of the same task changes nothing and says so. `note`
   * is kept with the task for whoever ends the pass (the keys that failed, say). `requires`, checked in the
   * same transaction, must hold for the settlement to be made.
   *
   * @throws SettlementRefusedError when `requires` does not hold (and the task had not settled)
   */
  async settle(
    taskId: string,
    counts: PassCounts = {},
    note?: Record<string, unknown>,
    requires?: ConditionItem,
  ): Promise<Settled> {
    const names: Record<string, string> = {};
    const values: Record<string, number | string> = { ':minusOne': -1, ':now': new Date().toISOString() };
    // ADD works on top-level attributes only: the totals map's counts are summed with SET.
    const sums: string[] = [];
    for (const [index, [name, value]] of Object.entries(counts).entries()) {
      if (!COUNT_NAME.test(name)) {
        throw new RangeError(`a pass count is named with letters only, got "${name}"`);
      }
      names[`#c${index}`] = name;
      values[':zero'] = 0;
      values[`:c${index}`] = value;
      sums.push(`totals.#c${index} = if_not_exists(totals.#c${index}, :zero) + :c${index}`);
    }
    const transaction = new TransactWriteCommand({
      TransactItems: [
        this.#writeOnce(`task#${taskId}`, { counts, note }),
        {
          Update: {
            TableName: this.#table,
            Key: { pk: this.#pk, sk: this.#sk },
            UpdateExpression: `ADD outstanding :minusOne SET ${['updatedAt = :now', ...sums].join(', ')}`,
            ConditionExpression: 'attribute_exists(pk)',
            ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
            ExpressionAttributeValues: values,
          },
        },
        ...(requires ? [requires] : []),
      ],
    });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#doc.send(transaction);
        break;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const [taskReason, passReason, requiredReason] = reasons(error);
        if (taskReason === 'ConditionalCheckFailed') {
          return { duplicate: true, outstanding: (await this.read()).outstanding };
        }
        if (requiredReason === 'ConditionalCheckFailed') {
          throw new SettlementRefusedError(
            `task ${taskId} of ${this.#sk} of ${this.#pk}: its condition no longer holds`,
            {
              cause: error,
            },
          );
        }
        // Two deliveries of one task, or two tasks of one pass, settling at the same moment: DynamoDB
        // cancels one transaction with TransactionConflict; it goes again and finds what the other did.
        if (!isConflict(taskReason, passReason, requiredReason) || attempt === MAX_CONFLICT_ATTEMPTS)
          throw error;
        await pauseAfterConflict(attempt);
      }
    }
    return { duplicate: false, outstanding: (await this.read()).outstanding };
  }

  /**
   * Claims the end of the pass for `worker` (state `ending`) if nothing is outstanding and no one has; true
   * for the one that did, which then ends it (`ended`). `until` is the worker's deadline: past it, the end
   * is taken over (`takeOverEnd`).
   */
  async claimEnd(worker: string, until = new Date(Date.now() + LAMBDA_MAX_TIMEOUT_MS)): Promise<boolean> {
    return this.#transition(
      'running',
      'ending',
      'AND outstanding = :zero',
      { ':zero': 0, ':until': until.toISOString() },
      worker,
      ', endingUntil = :until',
    );
  }

  /**
   * Takes over the end of a pass whose ender (`previous`) died after claiming it: allowed once the ender's
   * deadline has passed (Lambda has killed it by then, so two workers never write the end at once). True
   * for the one worker that took it; it ends the pass as the claimer would have, by `until`.
   */
  async takeOverEnd(worker: string, previous: string, until: Date, now = new Date()): Promise<boolean> {
    return this.#transition(
      'ending',
      'ending',
      'AND endedBy = :previous AND endingUntil < :now',
      { ':previous': previous, ':now': now.toISOString(), ':until': until.toISOString() },
      worker,
      ', endingUntil = :until',
    );
  }

  /**
   * Records the pass's run event published by `worker`, the pass's ender now (a takeover by another worker
   * refuses it): whoever takes the end over later finds it and does not publish the event again. False if
   * `worker` no longer ends the pass.
   */
  async markEventPublished(worker: string, at = new Date()): Promise<boolean> {
    return this.#transition(
      'ending',
      'ending',
      'AND endedBy = :worker',
      { ':at': at.toISOString() },
      worker,
      ', eventPublishedAt = :at',
    );
  }

  /** Marks the pass `ended` once the worker that claimed its end has written everything it ends with. */
  async ended(worker: string, at = new Date()): Promise<boolean> {
    return this.#transition(
      'ending',
      'ended',
      'AND endedBy = :worker',
      { ':at': at.toISOString() },
      worker,
      ', finishedAt = :at',
    );
  }

  async #transition(
    from: PassState['state'],
    to: PassState['state'],
    condition: string,
    values: Record<string, unknown>,
    worker: string,
    set = '',
  ): Promise<boolean> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: this.#pk, sk: this.#sk },
          UpdateExpression: `SET #state = :to, endedBy = :worker${set}`,
          ConditionExpression: `#state = :from ${condition}`,
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':from': from, ':to': to, ':worker': worker, ...values },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Takes the deletion of `key` off the pass's allowance of `max` (mirror jobs' `maxDeletesPerRun`, for the
   * whole pass however many shards delete at once); false once `max` keys have been taken. A key taken
   * before (its planner delivered again) is granted again without counting twice.
   */
  async reserveDeletion(key: string, max: number): Promise<boolean> {
    const transaction = new TransactWriteCommand({
      TransactItems: [
        this.#writeOnce(`delete#${key}`),
        {
          Update: {
            TableName: this.#table,
            Key: { pk: this.#pk, sk: this.#sk },
            UpdateExpression: 'ADD deletionsStarted :one',
            ConditionExpression:
              'attribute_exists(pk) AND (attribute_not_exists(deletionsStarted) OR deletionsStarted < :max)',
            ExpressionAttributeValues: { ':one': 1, ':max': max },
          },
        },
      ],
    });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#doc.send(transaction);
        return true;
      } catch (error) {
        const [reserved, pass] = reasons(error);
        if (reserved === 'ConditionalCheckFailed') return true;
        if (pass === 'ConditionalCheckFailed') return false;
        if (!isConflict(reserved, pass) || attempt === MAX_CONFLICT_ATTEMPTS) throw error;
        await pauseAfterConflict(attempt);
      }
    }
  }

  /**
   * A condition that task `taskId` has not settled, for a transaction on another item (a part task's claim
   * of its object's completion): a task settled with nothing must not take on an object to count.
   */
  unsettled(taskId: string): ConditionItem {
    return {
      ConditionCheck: {
        TableName: this.#table,
        Key: { pk: this.#pk, sk: `${this.#sk}#task#${taskId}` },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** Whether task `taskId` has settled (a strongly consistent read): a redelivered task need not run. */
  async isSettled(taskId: string): Promise<boolean> {
    const { Item } = await this.#doc.send(
      new GetCommand({
        TableName: this.#table,
        Key: { pk: this.#pk, sk: `${this.#sk}#task#${taskId}` },
        ConsistentRead: true,
        ProjectionExpression: 'pk',
      }),
    );
    return Item !== undefined;
  }

  /** Every settled task of the pass, in task-id order (for the worker that ends it). */
  async *settledTasks(): AsyncGenerator<SettledTask> {
    const prefix = `${this.#sk}#task#`;
    let startKey: QueryCommandInput['ExclusiveStartKey'];
    do {
      const page = await this.#doc.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': this.#pk, ':prefix': prefix },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        yield { taskId: String(item.sk).slice(prefix.length), counts: item.counts, note: item.note };
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  /** The pass as stored now (a strongly consistent read). */
  async read(): Promise<PassState> {
    const pass = await this.find();
    if (!pass) throw new Error(`pass ${this.#sk} of ${this.#pk} does not exist`);
    return pass;
  }

  /** The pass as stored now, or undefined if it was never opened. */
  async find(): Promise<PassState | undefined> {
    const { Item } = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: { pk: this.#pk, sk: this.#sk }, ConsistentRead: true }),
    );
    if (!Item) return undefined;
    return {
      outstanding: Item.outstanding,
      state: Item.state,
      totals: Item.totals,
      startedAt: Item.startedAt,
      updatedAt: Item.updatedAt,
      ...(Item.runId && { runId: Item.runId, job: Item.job }),
      ...(Item.eventWindow && { eventWindow: Item.eventWindow }),
      ...(Item.endedBy && { endedBy: Item.endedBy }),
      ...(Item.endingUntil && { endingUntil: Item.endingUntil }),
      ...(Item.eventPublishedAt && { eventPublishedAt: Item.eventPublishedAt }),
      ...(Item.finishedAt && { finishedAt: Item.finishedAt }),
    };
  }
}

/** A settlement's `requires` did not hold: nothing was settled; the caller looks again at why. */
export class SettlementRefusedError extends Error {
  override readonly name = 'SettlementRefusedError';
}

/** A pass cannot be opened twice, nor after a newer one. */
export class PassExistsError extends Error {
  override readonly name = 'PassExistsError';
}

/** The pass is over (or was never opened): no task can be added to it. */
export class PassEndedError extends Error {
  override readonly name = 'PassEndedError';
}

/** Whether a cancelled transaction lost to another on the same items (it may go again). */
export function isConflict(...itemReasons: (string | undefined)[]): boolean {
  return itemReasons.includes('TransactionConflict');
}

/** A short random pause, longer with each attempt, so that two conflicting writers do not meet again. */
export function pauseAfterConflict(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
}

/** Why each item of a cancelled transaction was refused, in the transaction's order; empty otherwise. */
export function reasons(error: unknown): (string | undefined)[] {
  if (!(error instanceof TransactionCanceledException)) return [];
  return (error.CancellationReasons ?? []).map((reason) => reason.Code);
}

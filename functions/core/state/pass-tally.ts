/**
 * The tally of one fan-out pass (docs/fan-out.md): how many of its tasks are still outstanding and what the
 * settled ones added up to, kept in DynamoDB so that the pass ends exactly once however many workers settle
 * tasks at the same moment, and so that a task delivered twice counts once.
 *
 *   pk = "job#<jobId>"  sk = "pass#<fence>"                 outstanding, totals, state, endedBy
 *   pk = "job#<jobId>"  sk = "pass#<fence>#task#<taskId>"   a settled task and what it added, written once
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
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';

/** Counts a task adds to its pass: objects copied, bytes, failures, and so on. Names are [a-zA-Z]+. */
export type PassCounts = Record<string, number>;

/** The pass as stored. */
export interface PassState {
  outstanding: number;
  state: 'running' | 'ended';
  totals: PassCounts;
  startedAt: string;
  endedBy?: string;
}

/** What settling a task did. */
export interface Settled {
  /** The task had been settled before (a redelivered message): nothing was added this time. */
  duplicate: boolean;
  /** Tasks of the pass still outstanding after this one; 0 means the pass may end (see `claimEnd`). */
  outstanding: number;
}

const COUNT_NAME = /^[a-zA-Z]+$/;
/** Attempts at a settlement that DynamoDB cancels for a conflicting transaction on the same items. */
const MAX_CONFLICT_ATTEMPTS = 10;

export class PassTally {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #pk: string;
  readonly #sk: string;

  constructor(client: DynamoDBClient, table: string, jobId: string, fence: number) {
    this.#doc = DynamoDBDocumentClient.from(client);
    this.#table = table;
    this.#pk = `job#${jobId}`;
    this.#sk = `pass#${fence}`;
  }

  /** Creates the pass with its first `tasks` outstanding (a shard planner each); refused if it exists. */
  async open(tasks: number, startedAt: string): Promise<void> {
    await this.#doc.send(
      new PutCommand({
        TableName: this.#table,
        Item: { pk: this.#pk, sk: this.#sk, outstanding: tasks, state: 'running', totals: {}, startedAt },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
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
            {
              Put: {
                TableName: this.#table,
                Item: { pk: this.#pk, sk: `${this.#sk}#announce#${announcementId}`, tasks },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
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
   * takes it off `outstanding`. A second settlement of the same task changes nothing and says so.
   */
  async settle(taskId: string, counts: PassCounts = {}): Promise<Settled> {
    const names: Record<string, string> = {};
    const values: Record<string, number> = { ':minusOne': -1 };
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
        {
          Put: {
            TableName: this.#table,
            Item: { pk: this.#pk, sk: `${this.#sk}#task#${taskId}`, counts },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Update: {
            TableName: this.#table,
            Key: { pk: this.#pk, sk: this.#sk },
            UpdateExpression: `ADD outstanding :minusOne${sums.length > 0 ? ` SET ${sums.join(', ')}` : ''}`,
            ConditionExpression: 'attribute_exists(pk)',
            ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
            ExpressionAttributeValues: values,
          },
        },
      ],
    });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#doc.send(transaction);
        break;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const [taskReason, passReason] = reasons(error);
        if (taskReason === 'ConditionalCheckFailed') {
          return { duplicate: true, outstanding: (await this.read()).outstanding };
        }
        // Two deliveries of one task, or two tasks of one pass, settling at the same moment: DynamoDB
        // cancels one transaction with TransactionConflict; it goes again and finds what the other did.
        const conflict = taskReason === 'TransactionConflict' || passReason === 'TransactionConflict';
        if (!conflict || attempt === MAX_CONFLICT_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
      }
    }
    return { duplicate: false, outstanding: (await this.read()).outstanding };
  }

  /** Marks the pass ended by `worker` if nothing is outstanding and no one has; true for the one that did. */
  async claimEnd(worker: string): Promise<boolean> {
    try {
      await this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { pk: this.#pk, sk: this.#sk },
          UpdateExpression: 'SET #state = :ended, endedBy = :worker',
          ConditionExpression: '#state = :running AND outstanding = :zero',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':ended': 'ended',
            ':running': 'running',
            ':zero': 0,
            ':worker': worker,
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** The pass as stored now (a strongly consistent read). */
  async read(): Promise<PassState> {
    const { Item } = await this.#doc.send(
      new GetCommand({ TableName: this.#table, Key: { pk: this.#pk, sk: this.#sk }, ConsistentRead: true }),
    );
    if (!Item) throw new Error(`pass ${this.#sk} of ${this.#pk} does not exist`);
    return {
      outstanding: Item.outstanding,
      state: Item.state,
      totals: Item.totals,
      startedAt: Item.startedAt,
      ...(Item.endedBy && { endedBy: Item.endedBy }),
    };
  }
}

/** The pass is over (or was never opened): no task can be added to it. */
export class PassEndedError extends Error {
  override readonly name = 'PassEndedError';
}

/** Why each item of a cancelled transaction was refused, in the transaction's order; empty otherwise. */
function reasons(error: unknown): (string | undefined)[] {
  if (!(error instanceof TransactionCanceledException)) return [];
  return (error.CancellationReasons ?? []).map((reason) => reason.Code);
}

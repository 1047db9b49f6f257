/**
 * Settling a fan-out pass's tasks (state/pass-tally.ts): each task is recorded once with what it added, in
 * one transaction with the pass's totals and outstanding count, so a task delivered twice counts once and
 * the worker that brings `outstanding` to 0 knows it.
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { type ConditionItem, type PassItem, passKey, passName, writeOnce } from './pass-item.js';
import { readPass } from './pass-read.js';
import type { PassCounts, Settled, SettledTask } from './pass-types.js';
import { isConflict, MAX_CONFLICT_ATTEMPTS, pauseAfterConflict, reasons } from './transaction-conflicts.js';

const COUNT_NAME = /^[a-zA-Z]+$/;

/** A settlement's `requires` did not hold: nothing was settled; the caller looks again at why. */
export class SettlementRefusedError extends Error {
  override readonly name = 'SettlementRefusedError';
}

/**
 * Settles task `taskId` once (PassTally.settle): its record, the pass's totals and `outstanding`, and
 * `requires` in one transaction, gone again when DynamoDB cancels it for a conflicting one.
 *
 * @throws SettlementRefusedError when `requires` does not hold (and the task had not settled)
 */
export async function settlePassTask(
  pass: PassItem,
  taskId: string,
  counts: PassCounts,
  note?: Record<string, unknown>,
  requires?: ConditionItem,
): Promise<Settled> {
  const transaction = new TransactWriteCommand({
    TransactItems: [
      writeOnce(pass, `task#${taskId}`, { counts, note }),
      { Update: { TableName: pass.table, Key: passKey(pass), ...addedToTotals(counts) } },
      ...(requires ? [requires] : []),
    ],
  });
  for (let attempt = 1; ; attempt += 1) {
    try {
      await pass.doc.send(transaction);
      break;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const [taskReason, passReason, requiredReason] = reasons(error);
      if (taskReason === 'ConditionalCheckFailed') {
        return { duplicate: true, outstanding: (await readPass(pass)).outstanding };
      }
      if (requiredReason === 'ConditionalCheckFailed') {
        throw new SettlementRefusedError(
          `task ${taskId} of ${passName(pass)}: its condition no longer holds`,
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
  return { duplicate: false, outstanding: (await readPass(pass)).outstanding };
}

/** The pass item's update for a settlement: one task fewer outstanding, `counts` added to the totals. */
function addedToTotals(counts: PassCounts) {
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
  return {
    UpdateExpression: `ADD outstanding :minusOne SET ${['updatedAt = :now', ...sums].join(', ')}`,
    ConditionExpression: 'attribute_exists(pk)',
    ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
    ExpressionAttributeValues: values,
  };
}

/** A condition that task `taskId` has not settled, for a transaction on another item (PassTally.unsettled). */
export function unsettledCondition(pass: PassItem, taskId: string): ConditionItem {
  return {
    ConditionCheck: {
      TableName: pass.table,
      Key: { pk: pass.pk, sk: `${pass.sk}#task#${taskId}` },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  };
}

/** Whether task `taskId` has settled (a strongly consistent read): a redelivered task need not run. */
export async function isTaskSettled(pass: PassItem, taskId: string): Promise<boolean> {
  const { Item } = await pass.doc.send(
    new GetCommand({
      TableName: pass.table,
      Key: { pk: pass.pk, sk: `${pass.sk}#task#${taskId}` },
      ConsistentRead: true,
      ProjectionExpression: 'pk',
    }),
  );
  return Item !== undefined;
}

/** Every settled task of the pass, in task-id order (for the worker that ends it). */
export async function* settledTasksOf(pass: PassItem): AsyncGenerator<SettledTask> {
  const prefix = `${pass.sk}#task#`;
  let startKey: QueryCommandInput['ExclusiveStartKey'];
  do {
    const page = await pass.doc.send(
      new QueryCommand({
        TableName: pass.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': pass.pk, ':prefix': prefix },
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

/**
 * A fan-out pass's deletions (state/pass-tally.ts): a mirror job's `maxDeletesPerRun` holds for the whole
 * pass, however many shards' planners delete at once, so each key's deletion is taken off one count on the
 * pass's item, once per key; and each deletion done is counted in the pass's totals once, by the write that
 * removes the key's ledger entry, not by the planner delivery that settles the shard (two deliveries of one
 * planner may each see the key or not, and only the first settlement counts).
 */
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { LeaseLostError } from '../errors.js';
import { fromLedgerItem, type LedgerEntry } from './ledger-item.js';
import { markedItem, plannedCondition } from './ledger-writes.js';
import { type PassItem, passKey, passName, writeOnce } from './pass-item.js';
import { ledgerLost, ledgerPk } from './state-table.js';
import { isConflict, MAX_CONFLICT_ATTEMPTS, pauseAfterConflict, reasons } from './transaction-conflicts.js';

/**
 * Takes the deletion of `key` off the pass's allowance of `max` (PassTally.reserveDeletion); false once
 * `max` keys have been taken, true again for a key taken before.
 */
export async function reservePassDeletion(pass: PassItem, key: string, max: number): Promise<boolean> {
  const transaction = new TransactWriteCommand({
    TransactItems: [
      writeOnce(pass, `delete#${key}`),
      {
        Update: {
          TableName: pass.table,
          Key: passKey(pass),
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
      await pass.doc.send(transaction);
      return true;
    } catch (error) {
      const [reserved, allowed] = reasons(error);
      if (reserved === 'ConditionalCheckFailed') return true;
      if (allowed === 'ConditionalCheckFailed') return false;
      if (!isConflict(reserved, allowed) || attempt === MAX_CONFLICT_ATTEMPTS) throw error;
      await pauseAfterConflict(attempt);
    }
  }
}

/**
 * Records the deletion of `key` done (PassTally.recordDeletion): in one transaction, removes the key's
 * ledger entry under the pass's fence, marks the key's reservation deleted and adds 1 to the pass's
 * `deleted` total. A twin delivery that deleted the key too finds the mark and changes nothing, so the
 * deletion counts once whichever delivery records it and whichever settles the shard. False for that twin.
 * The ledger entry is removed only while its sequencer is still `readSequencer`, the one the planner read:
 * an event that re-created (or marked) the key since keeps its entry, returned, and nothing is counted.
 * With `token` (the planner's deletion mark, state/deletion-marks.ts) it is removed only while that mark
 * is still on it.
 *
 * @throws LeaseLostError when a newer pass has written the key's ledger entry
 */
export async function recordPassDeletion(
  pass: PassItem,
  jobId: string,
  key: string,
  fence: number,
  readSequencer?: string,
  token?: string,
): Promise<boolean | LedgerEntry> {
  const transaction = new TransactWriteCommand({
    TransactItems: [
      {
        Update: {
          TableName: pass.table,
          Key: { pk: pass.pk, sk: `${pass.sk}#delete#${key}` },
          UpdateExpression: 'SET deletedAt = :now',
          // Reserved before the delete (reservePassDeletion); marked by the first delivery to record it.
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(deletedAt)',
          ExpressionAttributeValues: { ':now': new Date().toISOString() },
        },
      },
      {
        Delete: {
          TableName: pass.table,
          Key: { pk: ledgerPk(jobId), sk: key },
          ...plannedCondition(fence, readSequencer, token),
        },
      },
      {
        Update: {
          TableName: pass.table,
          Key: passKey(pass),
          // ADD works on top-level attributes only: the totals map's count is summed with SET.
          UpdateExpression:
            'SET totals.deleted = if_not_exists(totals.deleted, :zero) + :one, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':now': new Date().toISOString() },
        },
      },
    ],
  });
  for (let attempt = 1; ; attempt += 1) {
    try {
      await pass.doc.send(transaction);
      return true;
    } catch (error) {
      const [marked, ledger, totals] = reasons(error);
      if (marked === 'ConditionalCheckFailed') return false;
      if (ledger === 'ConditionalCheckFailed') {
        // One condition refused, two meanings: read which (the item as it is now, its fence included).
        const { Item } = await pass.doc.send(
          new GetCommand({
            TableName: pass.table,
            Key: { pk: ledgerPk(jobId), sk: key },
            ConsistentRead: true,
          }),
        );
        if (
          Item &&
          !(Number(Item.fence) > fence) &&
          (Item.sequencer !== readSequencer || markedItem(Item, token))
        )
          return fromLedgerItem(Item);
        throw new LeaseLostError(ledgerLost(jobId, key), { cause: error });
      }
      if (totals === 'ConditionalCheckFailed') {
        throw new Error(
          `${passName(pass)} is gone from the state table, so the deletion of "${key}" cannot be counted: ` +
            'its task belongs to no pass any more and can be dropped',
          { cause: error },
        );
      }
      if (!isConflict(marked, ledger, totals) || attempt === MAX_CONFLICT_ATTEMPTS) throw error;
      await pauseAfterConflict(attempt);
    }
  }
}

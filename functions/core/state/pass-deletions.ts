/**
 * A fan-out pass's deletion allowance (state/pass-tally.ts): a mirror job's `maxDeletesPerRun` holds for the
 * whole pass, however many shards' planners delete at once, so each key's deletion is taken off one count on
 * the pass's item, once per key.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { type PassItem, passKey, writeOnce } from './pass-item.js';
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

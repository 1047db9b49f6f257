/**
 * Opening a fan-out pass and growing it (state/pass-tally.ts): the pass is created with its first tasks and
 * made the job's current pass in one transaction; planners announce more tasks before they send them; a
 * newer pass marks an older one abandoned.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { CURRENT_PASS, type PassItem, passKey, passName, passRecord, writeOnce } from './pass-item.js';
import type { PassDetails } from './pass-types.js';
import { reasons } from './transaction-conflicts.js';

/** A pass cannot be opened twice, nor after a newer one. */
export class PassExistsError extends Error {
  override readonly name = 'PassExistsError';
}

/** The pass is over (or was never opened): no task can be added to it. */
export class PassEndedError extends Error {
  override readonly name = 'PassEndedError';
}

/**
 * Creates pass number `fence` with `tasks` outstanding and makes it the job's current pass (PassTally.open).
 *
 * @throws PassExistsError if it exists, or a newer pass of the job has been opened
 */
export async function openPass(
  pass: PassItem,
  fence: number,
  tasks: number,
  startedAt: string,
  details?: PassDetails,
): Promise<void> {
  const opening = new TransactWriteCommand({
    TransactItems: [
      {
        Put: {
          TableName: pass.table,
          Item: passRecord(pass, {
            outstanding: tasks,
            state: 'running',
            totals: {},
            startedAt,
            updatedAt: startedAt,
            ...details,
          }),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        // Fences only grow: a starter that lost a race to a newer pass does not take the pointer back.
        Put: {
          TableName: pass.table,
          Item: { pk: pass.pk, sk: CURRENT_PASS, fence },
          ConditionExpression: 'attribute_not_exists(fence) OR fence < :fence',
          ExpressionAttributeValues: { ':fence': fence },
        },
      },
    ],
  });
  try {
    await pass.doc.send(opening);
  } catch (error) {
    const [opened, current] = reasons(error);
    if (opened === 'ConditionalCheckFailed') {
      throw new PassExistsError(`${passName(pass)} is already open`, { cause: error });
    }
    if (current === 'ConditionalCheckFailed') {
      throw new PassExistsError(`a pass newer than ${passName(pass)} has started`, { cause: error });
    }
    throw error;
  }
}

/** Marks a running or ending pass abandoned (PassTally.abandon); false if it had ended. */
export async function abandonPass(pass: PassItem): Promise<boolean> {
  try {
    await pass.doc.send(
      new UpdateCommand({
        TableName: pass.table,
        Key: passKey(pass),
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
 * Adds `tasks` to the pass's outstanding once per `announcementId` (PassTally.expect): the announcement is
 * written once in the same transaction, so a planner delivered again does not count its tasks twice.
 *
 * @throws PassEndedError once the pass is no longer running
 */
export async function expectTasks(pass: PassItem, announcementId: string, tasks: number): Promise<void> {
  try {
    await pass.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          writeOnce(pass, `announce#${announcementId}`, { tasks }),
          {
            Update: {
              TableName: pass.table,
              Key: passKey(pass),
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
    const [announced, running] = reasons(error);
    if (announced === 'ConditionalCheckFailed' && running !== 'ConditionalCheckFailed') return;
    if (running === 'ConditionalCheckFailed') {
      throw new PassEndedError(`${passName(pass)} is not running: tasks cannot be added to it`, {
        cause: error,
      });
    }
    throw error;
  }
}

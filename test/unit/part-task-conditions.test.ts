/**
 * The conditions that keep a part task's two deliveries from losing its object's count (fanout/part-task.ts,
 * test/integration/part-task-races.test.ts for the races over real HTTP): a settlement with nothing is
 * refused once the upload counts something for the task, and a claim or an abort is refused once the task
 * has settled. Here: what each sends to DynamoDB and how each reads a cancelled transaction.
 */
import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { PartUploads } from '../../functions/core/state/part-uploads.js';
import { PassTally, SettlementRefusedError } from '../../functions/core/state/pass-tally.js';

// The stores send through a document client of their own: every instance's send is mocked.
const dynamo = mockClient(DynamoDBDocumentClient);
const client = new DynamoDBClient({ region: 'eu-west-1' });
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

beforeEach(() => {
  dynamo.reset();
});

describe('PassTally: a settlement with a condition', () => {
  const tally = () => new PassTally(client, 'state', 'job-1', 7);

  it('checks the condition in the settlement transaction', async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    dynamo.on(GetCommand).resolves({ Item: { outstanding: 2, state: 'running', totals: {} } });
    const uploads = new PartUploads(client, 'state', 'job-1', 7);
    await tally().settle('part-v-2', {}, {}, uploads.countsNothingFor('v', 'part-v-2'));
    const [call] = dynamo.commandCalls(TransactWriteCommand);
    const items = call?.args[0].input.TransactItems ?? [];
    expect(items).toHaveLength(3);
    expect(items[2]?.ConditionCheck).toMatchObject({
      Key: { pk: 'job#job-1', sk: 'pass#7#part-upload#v' },
      ExpressionAttributeValues: { ':task': 'part-v-2' },
    });
  });

  it('refuses, settling nothing, when the condition fails', async () => {
    dynamo.on(TransactWriteCommand).rejects(cancelled('None', 'None', 'ConditionalCheckFailed'));
    await expect(tally().settle('t', {}, {}, tally().unsettled('t'))).rejects.toBeInstanceOf(
      SettlementRefusedError,
    );
  });

  it('still reports a duplicate when the task had settled, whatever the condition says', async () => {
    dynamo
      .on(TransactWriteCommand)
      .rejects(cancelled('ConditionalCheckFailed', 'None', 'ConditionalCheckFailed'));
    dynamo.on(GetCommand).resolves({ Item: { outstanding: 0, state: 'running', totals: {} } });
    await expect(tally().settle('t', {}, {}, tally().unsettled('t'))).resolves.toEqual({
      duplicate: true,
      outstanding: 0,
    });
  });
});

describe('PartUploads: a claim or an abort for a task that must not have settled', () => {
  const uploads = () => new PartUploads(client, 'state', 'job-1', 7);
  const unsettled = new PassTally(client, 'state', 'job-1', 7).unsettled('part-v-3');

  it("claims in one transaction with the task's settlement absent", async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    expect(
      await uploads().claimCompletion('v', { worker: 'w', taskId: 'part-v-3' }, 1000, 0, unsettled),
    ).toBe(true);
    const items = dynamo.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[1]?.ConditionCheck).toMatchObject({
      Key: { pk: 'job#job-1', sk: 'pass#7#task#part-v-3' },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('is refused once the task has settled', async () => {
    dynamo.on(TransactWriteCommand).rejects(cancelled('None', 'ConditionalCheckFailed'));
    expect(
      await uploads().claimCompletion('v', { worker: 'w', taskId: 'part-v-3' }, 1000, 0, unsettled),
    ).toBe(false);
    expect(await uploads().abort('v', { reason: 'changed', taskId: 'part-v-3' }, unsettled)).toBe(false);
  });

  it('goes again after a conflicting transaction', async () => {
    dynamo.on(TransactWriteCommand).rejectsOnce(cancelled('TransactionConflict', 'None')).resolves({});
    expect(await uploads().abort('v', { reason: 'changed', taskId: 'part-v-3' }, unsettled)).toBe(true);
    expect(dynamo.commandCalls(TransactWriteCommand)).toHaveLength(2);
  });
});

/**
 * The event deletion allowance's window and conditions (state/event-deletion-allowance.ts): what it sends
 * to DynamoDB and how it reads each answer. The conditions themselves, over real HTTP:
 * test/integration/event-deletion-cap.test.ts.
 */
import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { StateStoreError } from '../../functions/core/errors.js';
import {
  type DeletionRequest,
  deletionWindow,
  EventDeletionAllowance,
} from '../../functions/core/state/event-deletion-allowance.js';

const dynamo = mockClient(DynamoDBDocumentClient);
const allowance = () => new EventDeletionAllowance(new DynamoDBClient({ region: 'eu-west-1' }), 'state');
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({ Code })),
  });
const request = (overrides: Partial<DeletionRequest> = {}): DeletionRequest => ({
  jobId: 'ev-job',
  key: 'in/a b.csv',
  sequencer: '0064D3901D00059242',
  max: 3,
  windowMinutes: 60,
  now: new Date('2026-12-03T12:34:56.789Z'),
  ...overrides,
});
const hour = {
  start: new Date('2026-12-03T12:00:00.000Z'),
  end: new Date('2026-12-03T13:00:00.000Z'),
};

beforeEach(() => {
  dynamo.reset();
});

describe('deletionWindow', () => {
  it.each([
    [60, '2026-12-03T12:34:56.789Z', '2026-12-03T12:00:00.000Z', '2026-12-03T13:00:00.000Z'],
    [60, '2026-12-03T13:00:00.000Z', '2026-12-03T13:00:00.000Z', '2026-12-03T14:00:00.000Z'],
    [15, '2026-12-03T12:59:59.999Z', '2026-12-03T12:45:00.000Z', '2026-12-03T13:00:00.000Z'],
    [1440, '2026-12-03T23:59:59.000Z', '2026-12-03T00:00:00.000Z', '2026-12-04T00:00:00.000Z'],
  ])('windows of %i minutes: %s falls in [%s, %s)', (minutes, now, start, end) => {
    const window = deletionWindow(new Date(now), minutes);
    expect([window.start.toISOString(), window.end.toISOString()]).toEqual([start, end]);
  });
});

describe('EventDeletionAllowance.reserve', () => {
  it('writes the change’s grant once and adds one to the window’s count under the cap, in one transaction', async () => {
    dynamo.on(TransactWriteCommand).resolves({});

    const reservation = await allowance().reserve(request());

    expect(reservation).toEqual({ granted: true, window: hour });
    const [put, update] = dynamo.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(put?.Put).toEqual({
      TableName: 'state',
      Item: {
        pk: 'job#ev-job',
        sk: expect.stringMatching(/^event-deletion#[0-9a-f]{64}#0064D3901D00059242$/),
        key: 'in/a b.csv',
        window: '2026-12-03T12:00:00.000Z',
        // 14 days, SQS's longest retention, from now.
        purgeAt: Math.floor(Date.parse('2026-12-03T12:34:56Z') / 1000) + 14 * 24 * 3600,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    expect(update?.Update).toEqual({
      TableName: 'state',
      Key: { pk: 'job#ev-job', sk: 'event-deletions#2026-12-03T12:00:00.000Z' },
      UpdateExpression: 'SET purgeAt = :purgeAt, windowEnd = :end ADD taken :one',
      ConditionExpression: 'attribute_not_exists(taken) OR taken < :max',
      ExpressionAttributeValues: {
        ':one': 1,
        ':max': 3,
        ':end': '2026-12-03T13:00:00.000Z',
        // A day past the window's end.
        ':purgeAt': Date.parse('2026-12-04T13:00:00Z') / 1000,
      },
    });
  });

  it('names one change by its key and sequencer: another sequencer of the key is another grant', async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    const sk = async (overrides: Partial<DeletionRequest>) => {
      dynamo.resetHistory();
      await allowance().reserve(request(overrides));
      return dynamo.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Put?.Item?.sk;
    };

    const first = await sk({});

    expect(await sk({})).toBe(first);
    expect(await sk({ sequencer: '0064D3901D00059243' })).not.toBe(first);
    expect(await sk({ key: 'in/a b.csv2' })).not.toBe(first);
  });

  it('grants a change granted before without counting it again, even with the window spent', async () => {
    dynamo.on(TransactWriteCommand).rejects(cancelled('ConditionalCheckFailed', 'ConditionalCheckFailed'));

    expect(await allowance().reserve(request())).toEqual({ granted: true, window: hour });
  });

  it('refuses once the window’s count reached the cap', async () => {
    dynamo.on(TransactWriteCommand).rejects(cancelled('None', 'ConditionalCheckFailed'));

    expect(await allowance().reserve(request())).toEqual({ granted: false, window: hour });
  });

  it('refuses everything with a cap of 0, asking the table nothing', async () => {
    expect(await allowance().reserve(request({ max: 0 }))).toEqual({ granted: false, window: hour });
    expect(dynamo.commandCalls(TransactWriteCommand)).toHaveLength(0);
  });

  it('goes again when a concurrent reservation on the window’s count cancelled it', async () => {
    dynamo
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled('None', 'TransactionConflict'))
      .rejectsOnce(cancelled('TransactionConflict', 'None'))
      .resolves({});

    expect(await allowance().reserve(request())).toMatchObject({ granted: true });
    expect(dynamo.commandCalls(TransactWriteCommand)).toHaveLength(3);
  });

  it('gives up after ten conflicts, failing so the event comes back', async () => {
    dynamo.on(TransactWriteCommand).rejects(cancelled('None', 'TransactionConflict'));

    await expect(allowance().reserve(request())).rejects.toThrow(StateStoreError);
    expect(dynamo.commandCalls(TransactWriteCommand)).toHaveLength(10);
  });

  it('fails, granting nothing, when the table is unreachable, naming the table, the job and the fix', async () => {
    dynamo
      .on(TransactWriteCommand)
      .rejects(Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error' }));

    const reserving = allowance().reserve(request());

    await expect(reserving).rejects.toThrow(StateStoreError);
    await expect(reserving).rejects.toThrow(
      /state table "state": reserving an event deletion of job "ev-job" failed: .*ECONNREFUSED.*deletes nothing.*check that DynamoDB is reachable/,
    );
  });
});

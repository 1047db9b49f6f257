/**
 * The conditions of a pass's ledger writes against an event's (docs/event-driven.md, issue 12): a pass's
 * failure record, planned entry and deletion each carry the sequencer its plan read and keep an event's
 * later record. Split from state-store.test.ts.
 */
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import { StateStore } from '../../functions/core/state/state-store.js';

const dynamoMock = mockClient(DynamoDBDocumentClient);
const store = () => new StateStore(new DynamoDBClient({ region: 'us-east-1' }), 'table');

describe('StateStore.putUncopiedEntry', () => {
  const refused = () => new ConditionalCheckFailedException({ message: 'refused', $metadata: {} });
  const copiedAt = '2026-12-03T09:00:00.000Z';
  beforeEach(() => dynamoMock.reset());

  it('writes only while no copy newer than the planned one is on record and no deleter holds the item, under the fence', async () => {
    dynamoMock.on(PutCommand).resolves({});

    expect(
      await store().putUncopiedEntry('job', { key: 'k', firstSeenAt: copiedAt }, 7, copiedAt),
    ).toBeUndefined();

    expect(dynamoMock.commandCalls(PutCommand)[0]?.args[0].input).toMatchObject({
      ConditionExpression:
        '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(ca) OR ca <= :planned) AND (attribute_not_exists(sequencer))' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
      ExpressionAttributeValues: {
        ':fence': 7,
        ':planned': Date.parse(copiedAt),
        ':markNow': expect.any(Number),
      },
    });
  });

  it('writes only while the sequencer on record is still the one the plan read', async () => {
    dynamoMock.on(PutCommand).resolves({});
    const read = 'A'.repeat(63);

    await store().putUncopiedEntry('job', { key: 'k', sequencer: read }, 7, copiedAt);

    const input = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe(
      '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(ca) OR ca <= :planned) AND (attribute_not_exists(sequencer) OR sequencer = :kept)' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
    );
    expect(input?.ExpressionAttributeValues).toEqual({
      ':fence': 7,
      ':planned': Date.parse(copiedAt),
      ':kept': read,
      ':markNow': expect.any(Number),
    });
  });

  it("keeps a deleter's live mark on the item the plan read, returning it", async () => {
    dynamoMock.on(PutCommand).rejects(refused());
    const read = 'A'.repeat(63);
    const marked = {
      pk: 'ledger#job',
      sk: 'k',
      fence: 7,
      sequencer: read,
      deletingBy: 'event#x',
      deletingUntil: Date.now() + 60_000,
    };
    dynamoMock.on(GetCommand).resolves({ Item: marked });

    const kept = await store().putUncopiedEntry('job', { key: 'k', sequencer: read }, 7, copiedAt);

    expect(kept).toMatchObject({ key: 'k', sequencer: read, deletingBy: 'event#x' });
  });

  it.each([
    { planned: 'A'.repeat(63), label: 'another sequencer' },
    { planned: undefined, label: 'none' },
  ])(
    "keeps an event's deletion mark (no copy time), returning it, when the plan read $label",
    async ({ planned }) => {
      dynamoMock.on(PutCommand).rejects(refused());
      const mark = { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: 'B'.repeat(63) };
      dynamoMock.on(GetCommand).resolves({ Item: mark });

      const kept = await store().putUncopiedEntry('job', { key: 'k', sequencer: planned }, 7, copiedAt);

      expect(kept).toMatchObject({ key: 'k', sequencer: 'B'.repeat(63) });
      expect(kept?.copiedAt).toBeUndefined();
    },
  );

  it('stops the writer on a refusal the item read back does not explain (its fence, its copy, the sequencer read)', async () => {
    dynamoMock.on(PutCommand).rejects(refused());
    const read = 'A'.repeat(63);
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: read } });

    await expect(
      store().putUncopiedEntry('job', { key: 'k', sequencer: read }, 7, copiedAt),
    ).rejects.toMatchObject({ name: 'LeaseLostError' });
  });

  it("keeps a twin delivery's newer copy and returns it instead of writing over it", async () => {
    dynamoMock.on(PutCommand).rejects(refused());
    const twin = { pk: 'ledger#job', sk: 'k', fence: 7, etag: '"e"', n: 3, dk: '', ca: Date.parse(copiedAt) };
    dynamoMock.on(GetCommand).resolves({ Item: twin });

    const kept = await store().putUncopiedEntry('job', { key: 'k' }, 7);

    expect(kept).toMatchObject({ key: 'k', etag: '"e"', size: 3, copiedAt });
  });

  it('stops the writer when a newer fence owns the key, even if that writer copied it', async () => {
    dynamoMock.on(PutCommand).rejects(refused());
    dynamoMock
      .on(GetCommand)
      .resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 8, ca: Date.parse(copiedAt) } });

    await expect(store().putUncopiedEntry('job', { key: 'k' }, 7)).rejects.toMatchObject({
      name: 'LeaseLostError',
    });
  });
});

describe('StateStore.putPlannedEntry', () => {
  const refused = () => new ConditionalCheckFailedException({ message: 'refused', $metadata: {} });
  const read = 'A'.repeat(63);
  const later = 'B'.repeat(63);
  beforeEach(() => dynamoMock.reset());

  it('writes only while the sequencer on record is still the one the plan read, under the fence', async () => {
    dynamoMock.on(PutCommand).resolves({});

    expect(
      await store().putPlannedEntry('job', { key: 'k', etag: '"e"', sequencer: read }, 7),
    ).toBeUndefined();

    expect(dynamoMock.commandCalls(PutCommand)[0]?.args[0].input).toMatchObject({
      Item: { sk: 'k', sequencer: read, fence: 7 },
      ConditionExpression:
        '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(sequencer) OR sequencer = :kept)' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
      ExpressionAttributeValues: { ':fence': 7, ':kept': read, ':markNow': expect.any(Number) },
    });
  });

  it("may write over a deleter's mark on another copy than the one it records (written)", async () => {
    dynamoMock.on(PutCommand).resolves({});

    await store().putPlannedEntry('job', { key: 'k', etag: '"e"' }, 7, 'written-etag');

    const input = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe(
      '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(sequencer))' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow' +
        ' OR (attribute_exists(deletingEtag) AND deletingEtag <> :written))',
    );
    expect(input?.ExpressionAttributeValues).toEqual({
      ':fence': 7,
      ':markNow': expect.any(Number),
      ':written': 'written-etag',
    });
  });

  it('writes only while no sequencer is on record when the plan read none', async () => {
    dynamoMock.on(PutCommand).resolves({});

    await store().putPlannedEntry('job', { key: 'k', etag: '"e"' }, 7);

    const input = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe(
      '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(sequencer))' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
    );
    expect(input?.ExpressionAttributeValues).toEqual({ ':fence': 7, ':markNow': expect.any(Number) });
  });

  it.each([
    { planned: read, label: 'another sequencer' },
    { planned: undefined, label: 'none' },
  ])("keeps an event's later record, returning it, when the plan read $label", async ({ planned }) => {
    dynamoMock.on(PutCommand).rejects(refused());
    const event = { pk: 'ledger#job', sk: 'k', fence: 7, etag: '"new"', sequencer: later };
    dynamoMock.on(GetCommand).resolves({ Item: event });

    const kept = await store().putPlannedEntry('job', { key: 'k', etag: '"old"', sequencer: planned }, 7);

    expect(kept).toMatchObject({ key: 'k', etag: '"new"', sequencer: later });
    expect(dynamoMock.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({
      Key: { pk: 'ledger#job', sk: 'k' },
      ConsistentRead: true,
    });
  });

  it('stops the writer when a newer fence owns the key, even with a later sequencer', async () => {
    dynamoMock.on(PutCommand).rejects(refused());
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 8, sequencer: later } });

    await expect(store().putPlannedEntry('job', { key: 'k', sequencer: read }, 7)).rejects.toMatchObject({
      name: 'LeaseLostError',
    });
  });

  it('stops the writer on a refusal the item read back does not explain (its fence, the sequencer read)', async () => {
    dynamoMock.on(PutCommand).rejects(refused());
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: read } });

    await expect(store().putPlannedEntry('job', { key: 'k', sequencer: read }, 7)).rejects.toMatchObject({
      name: 'LeaseLostError',
    });
  });
});

describe('StateStore.deleteLedgerEntry', () => {
  const refused = () => new ConditionalCheckFailedException({ message: 'refused', $metadata: {} });
  const read = 'A'.repeat(63);
  const later = 'B'.repeat(63);
  beforeEach(() => dynamoMock.reset());

  it('removes the entry only while the sequencer on record is still the one the plan read, under the fence', async () => {
    dynamoMock.on(DeleteCommand).resolves({});

    expect(await store().deleteLedgerEntry('job', 'k', 7, read)).toBeUndefined();

    expect(dynamoMock.commandCalls(DeleteCommand)[0]?.args[0].input).toEqual({
      TableName: 'table',
      Key: { pk: 'ledger#job', sk: 'k' },
      ConditionExpression:
        '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(sequencer) OR sequencer = :kept)' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
      ExpressionAttributeValues: { ':fence': 7, ':kept': read, ':markNow': expect.any(Number) },
    });
  });

  it('removes the entry only while no sequencer is on record when the plan read none', async () => {
    dynamoMock.on(DeleteCommand).resolves({});

    await store().deleteLedgerEntry('job', 'k', 7);

    const input = dynamoMock.commandCalls(DeleteCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe(
      '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(sequencer))' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
    );
    expect(input?.ExpressionAttributeValues).toEqual({ ':fence': 7, ':markNow': expect.any(Number) });
  });

  it.each([
    { planned: read, label: 'another sequencer' },
    { planned: undefined, label: 'none' },
  ])("keeps an event's later record, returning it, when the plan read $label", async ({ planned }) => {
    dynamoMock.on(DeleteCommand).rejects(refused());
    const event = { pk: 'ledger#job', sk: 'k', fence: 7, etag: '"new"', sequencer: later };
    dynamoMock.on(GetCommand).resolves({ Item: event });

    const kept = await store().deleteLedgerEntry('job', 'k', 7, planned);

    expect(kept).toMatchObject({ key: 'k', etag: '"new"', sequencer: later });
    expect(dynamoMock.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({
      Key: { pk: 'ledger#job', sk: 'k' },
      ConsistentRead: true,
    });
  });

  it('stops the pass when a newer fence owns the key, even with a later sequencer', async () => {
    dynamoMock.on(DeleteCommand).rejects(refused());
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 8, sequencer: later } });

    await expect(store().deleteLedgerEntry('job', 'k', 7, read)).rejects.toMatchObject({
      name: 'LeaseLostError',
    });
  });

  it('stops the pass on a refusal the item read back does not explain (its fence, the sequencer read)', async () => {
    dynamoMock.on(DeleteCommand).rejects(refused());
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 7, sequencer: read } });

    await expect(store().deleteLedgerEntry('job', 'k', 7, read)).rejects.toMatchObject({
      name: 'LeaseLostError',
    });
  });
});

describe('PassTally.recordDeletion (a fan-out pass)', () => {
  const read = 'A'.repeat(63);
  const later = 'B'.repeat(63);
  const tally = () => new PassTally(new DynamoDBClient({ region: 'us-east-1' }), 'table', 'job', 7);
  const ledgerRefused = () =>
    new TransactionCanceledException({
      message: 'cancelled',
      $metadata: {},
      CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
    });
  beforeEach(() => dynamoMock.reset());

  it('removes the ledger entry only while the sequencer on record is still the one the planner read', async () => {
    dynamoMock.on(TransactWriteCommand).resolves({});

    expect(await tally().recordDeletion('k', read)).toBe(true);

    const items = dynamoMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[1]?.Delete).toEqual({
      TableName: 'table',
      Key: { pk: 'ledger#job', sk: 'k' },
      ConditionExpression:
        '(attribute_not_exists(fence) OR fence <= :fence) AND (attribute_not_exists(sequencer) OR sequencer = :kept)' +
        ' AND (attribute_not_exists(deletingUntil) OR deletingUntil < :markNow)',
      ExpressionAttributeValues: { ':fence': 7, ':kept': read, ':markNow': expect.any(Number) },
    });
  });

  it("keeps an event's later record, returning it, and counts nothing", async () => {
    dynamoMock.on(TransactWriteCommand).rejects(ledgerRefused());
    dynamoMock
      .on(GetCommand)
      .resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 7, etag: '"new"', sequencer: later } });

    expect(await tally().recordDeletion('k', read)).toMatchObject({
      key: 'k',
      etag: '"new"',
      sequencer: later,
    });
    expect(dynamoMock.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it('stops the pass when a newer fence owns the key, even with a later sequencer', async () => {
    dynamoMock.on(TransactWriteCommand).rejects(ledgerRefused());
    dynamoMock.on(GetCommand).resolves({ Item: { pk: 'ledger#job', sk: 'k', fence: 8, sequencer: later } });

    await expect(tally().recordDeletion('k', read)).rejects.toMatchObject({ name: 'LeaseLostError' });
  });
});

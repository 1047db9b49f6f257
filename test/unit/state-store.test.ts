import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import { StateStoreError } from '../../functions/core/errors.js';
import { type LedgerEntry, StateStore } from '../../functions/core/state/state-store.js';

const dynamoMock = mockClient(DynamoDBDocumentClient);
const store = () => new StateStore(new DynamoDBClient({ region: 'us-east-1' }), 'table');

/** Writes `entry`, then reads back the item that write stored. */
async function roundTrip(
  entry: LedgerEntry,
): Promise<{ stored: Record<string, unknown>; read: LedgerEntry[] }> {
  await store().putLedgerEntry('job', entry, 7);
  const stored = dynamoMock.commandCalls(PutCommand)[0]?.args[0].input.Item ?? {};
  dynamoMock.on(QueryCommand).resolves({ Items: [stored] });
  const read: LedgerEntry[] = [];
  for await (const item of store().ledger('job')) read.push(item);
  return { stored, read };
}

describe('StateStore ledger items', () => {
  beforeEach(() => {
    dynamoMock.reset();
    dynamoMock.on(PutCommand).resolves({});
  });

  it('stores a copied entry compactly and reads back exactly what was written', async () => {
    const entry: LedgerEntry = {
      key: 'data/2026/part-00001.json',
      etag: '"0123456789abcdef0123456789abcdef"',
      size: 12,
      lastModified: '2026-11-29T10:00:00.000Z',
      sha256: Buffer.alloc(32, 7).toString('base64'),
      destinationKey: 'copies/2026/part-00001.json',
      destinationEtag: '0123456789abcdef0123456789abcdef',
      verifiedBy: 'etag-md5',
      copiedAt: '2026-11-29T10:01:00.000Z',
      runId: '20261129T100000Z-abcdef',
    };

    const { stored, read } = await roundTrip(entry);

    expect(read).toEqual([entry]);
    expect(stored).toMatchObject({
      pk: 'ledger#job',
      sk: entry.key,
      fence: 7,
      etag: entry.etag,
      dk: '4|copies',
    });
    expect(stored.de).toBeUndefined();
  });

  it('keeps a destination ETag that differs, and an entry without one', async () => {
    const multipart = { key: 'a', etag: '"aa-2"', size: 1, destinationEtag: 'bb-3' };
    const failedFirstCopy = {
      key: 'b',
      etag: '"cc"',
      failure: { reason: 'x', attempts: 1, at: '2026-11-29T10:00:00.000Z', etag: '"cc"' },
    };

    expect((await roundTrip(multipart)).read).toEqual([multipart]);
    dynamoMock.reset();
    dynamoMock.on(PutCommand).resolves({});
    expect((await roundTrip(failedFirstCopy)).read).toEqual([failedFirstCopy]);
  });

  it('keeps fields it has no compact form for under their own names', async () => {
    const entry = { key: 'k', etag: '"e"', size: 1, resume: { uploadId: 'u', parts: 3 } } as LedgerEntry;

    const { stored, read } = await roundTrip(entry);

    expect(stored).toMatchObject({ resume: { uploadId: 'u', parts: 3 } });
    expect(read).toEqual([entry]);
  });

  it('still reads items written with the long attribute names', async () => {
    const old = {
      pk: 'ledger#job',
      sk: 'k',
      fence: 1,
      etag: '"e"',
      size: 3,
      destinationKey: 'k',
      runId: 'r',
    };
    dynamoMock.on(QueryCommand).resolves({ Items: [old] });

    const read: LedgerEntry[] = [];
    for await (const item of store().ledger('job')) read.push(item);

    expect(read).toEqual([{ key: 'k', etag: '"e"', size: 3, destinationKey: 'k', runId: 'r' }]);
  });

  it('names the table and the operation when DynamoDB cannot be reached, keeping the cause', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' });
    dynamoMock.on(PutCommand).rejects(refused);

    const error = await store()
      .putLedgerEntry('job', { key: 'k' }, 1)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StateStoreError);
    expect(error).toMatchObject({ table: 'table', operation: 'putLedgerEntry (PutItem)', cause: refused });
    expect((error as Error).message).toMatch(
      /^state table "table": putLedgerEntry \(PutItem\) failed: connect ECONNREFUSED/,
    );
    expect(exitCodeFor(error)).toBe(EXIT.unexpected);
  });

  it('says a missing table is missing, and the CLI counts it as an access problem', async () => {
    dynamoMock
      .on(QueryCommand)
      .rejects(
        Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' }),
      );

    const error = await store()
      .readUploadIntents('job')
      .catch((e: unknown) => e);

    expect((error as Error).message).toMatch(/readUploadIntents \(Query\) failed.*the table does not exist/);
    expect(exitCodeFor(error)).toBe(EXIT.access);
  });
});

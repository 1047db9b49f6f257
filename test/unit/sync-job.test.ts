import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { BucketAccessError, JobAlreadyRunningError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';
import { type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import { StateStore } from '../../functions/core/state/state-store.js';

const s3Mock = mockClient(S3Client);
const stsMock = mockClient(STSClient);
const dynamoMock = mockClient(DynamoDBDocumentClient);

const job = parseJob({
  jobId: 'unit',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'src-bucket' },
  destination: { bucket: 'dst-bucket' },
});
const md5 = (text: string) => createHash('md5').update(text).digest('hex');

function dependencies(): SyncDependencies {
  const s3 = new S3Client({ region: 'us-east-1' });
  return {
    sts: new STSClient({ region: 'us-east-1' }),
    destinationS3: s3,
    state: new StateStore(new DynamoDBClient({ region: 'us-east-1' }), 'state'),
    sourceS3: () => s3,
  };
}

function sourceHolds(objects: Record<string, string>) {
  s3Mock.on(ListObjectsV2Command).resolves({
    Contents: Object.entries(objects).map(([Key, text]) => ({
      Key,
      ETag: `"${md5(text)}"`,
      Size: text.length,
    })),
  });
  for (const [Key, text] of Object.entries(objects)) {
    s3Mock
      .on(GetObjectCommand, { Key })
      .callsFake(() => ({ Body: sdkStreamMixin(Readable.from([Buffer.from(text)])) }));
  }
}

/** GETs of whole objects: everything but preflight's one-byte read (Range: bytes=0-0). */
function copyReads() {
  return s3Mock.commandCalls(GetObjectCommand).filter((call) => call.args[0].input.Range === undefined);
}

describe('syncJob', () => {
  beforeEach(() => {
    s3Mock.reset();
    stsMock.reset();
    dynamoMock.reset();
    stsMock.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'a',
        SecretAccessKey: 'b',
        SessionToken: 'c',
        Expiration: new Date(Date.now() + 3.6e6),
      },
    });
    s3Mock.on(HeadBucketCommand).resolves({});
    s3Mock
      .on(PutObjectCommand)
      .callsFake((input) => ({ ETag: `"${md5(String(input.Key === 'b.txt' ? 'bee' : 'ay'))}"` }));
    dynamoMock
      .on(UpdateCommand)
      .resolves({ Attributes: { owner: 'run', expiresAt: Date.now() + 60_000, fence: 3 } });
    dynamoMock.on(GetCommand).resolves({});
    dynamoMock.on(QueryCommand).resolves({ Items: [] });
    dynamoMock.on(PutCommand).resolves({});
  });

  it('copies new objects and records each in the ledger under the lease fence', async () => {
    sourceHolds({ 'a.txt': 'ay', 'b.txt': 'bee' });

    const summary = await syncJob(dependencies(), job);

    expect(summary).toMatchObject({ status: 'complete', copied: 2, skipped: 0, failed: 0, bytes: 5 });
    expect(dynamoMock).toHaveReceivedCommandWith(PutCommand, {
      Item: expect.objectContaining({ pk: 'ledger#unit', sk: 'a.txt', fence: 3, etag: `"${md5('ay')}"` }),
    });
  });

  it('keeps the sequencer an event recorded for a key when the pass copies the key again', async () => {
    sourceHolds({ 'a.txt': 'ay' });
    dynamoMock
      .on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'ledger#unit' } })
      .resolves({ Items: [{ pk: 'ledger#unit', sk: 'a.txt', etag: '"older"', n: 2, sequencer: 'S-EVENT' }] });

    const summary = await syncJob(dependencies(), job);

    expect(summary).toMatchObject({ copied: 1 });
    expect(dynamoMock).toHaveReceivedCommandWith(PutCommand, {
      Item: expect.objectContaining({ sk: 'a.txt', etag: `"${md5('ay')}"`, sequencer: 'S-EVENT' }),
    });
  });

  it('starts no copy when the deadline is too near, and saves where to resume', async () => {
    sourceHolds({ 'a.txt': 'ay' });

    const summary = await syncJob(dependencies(), job, { remainingTimeMs: () => 30_000 });

    expect(summary).toMatchObject({ status: 'partial', copied: 0 });
    expect(copyReads()).toEqual([]);
    expect(dynamoMock).toHaveReceivedCommandWith(PutCommand, {
      Item: expect.objectContaining({ sk: 'checkpoint' }),
    });
  });

  it('records a failed object with its reason and carries on with the rest', async () => {
    sourceHolds({ 'a.txt': 'ay', 'b.txt': 'bee' });
    s3Mock
      .on(GetObjectCommand, { Key: 'a.txt' })
      .rejects(
        new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 } }),
      );

    const summary = await syncJob(dependencies(), job);

    expect(summary).toMatchObject({ copied: 1, failed: 1 });
    expect(summary.failures[0]).toMatchObject({
      key: 'a.txt',
      reason: expect.stringMatching(/GET s3:\/\/src-bucket\/a.txt failed/),
    });
    expect(dynamoMock).toHaveReceivedCommandWith(PutCommand, {
      Item: expect.objectContaining({ sk: 'a.txt', failure: expect.objectContaining({ attempts: 1 }) }),
    });
  });

  it('does nothing while another run holds the lease', async () => {
    sourceHolds({ 'a.txt': 'ay' });
    dynamoMock
      .on(UpdateCommand)
      .rejects(new ConditionalCheckFailedException({ message: 'held', $metadata: {} }))
      .on(GetCommand)
      .resolves({ Item: { owner: 'other-run', expiresAt: Date.now() + 60_000, fence: 7 } });

    await expect(syncJob(dependencies(), job)).rejects.toThrow(JobAlreadyRunningError);
    await expect(syncJob(dependencies(), job)).rejects.toThrow(/already running \(run other-run/);
    expect(copyReads()).toEqual([]);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('fails before taking the lease when the destination bucket is missing', async () => {
    sourceHolds({ 'a.txt': 'ay' });
    s3Mock
      .on(HeadBucketCommand)
      .rejects(
        new S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 } }),
      );

    await expect(syncJob(dependencies(), job)).rejects.toThrow(BucketAccessError);
    await expect(syncJob(dependencies(), job)).rejects.toThrow(
      /destination bucket "dst-bucket" does not exist/,
    );
    expect(dynamoMock).not.toHaveReceivedCommand(UpdateCommand);
  });
});

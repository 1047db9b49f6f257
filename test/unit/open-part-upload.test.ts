import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { type PartTask, versionId } from '../../functions/core/dispatch/part-tasks.js';
import { openPartUpload } from '../../functions/core/fanout/open-part-upload.js';
import type { OpenPass } from '../../functions/core/fanout/open-pass.js';
import { parseJob } from '../../functions/core/job.js';

const MiB = 1024 * 1024;
const s3 = mockClient(S3Client);
const dynamo = mockClient(DynamoDBDocumentClient);
const job = parseJob({
  jobId: 'giant',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'src', prefix: 'in/' },
  destination: { bucket: 'dst', prefix: 'out/' },
  options: { fanOut: { partTasksAbove: 5 * MiB } },
});
const step = {
  action: 'copy' as const,
  reason: 'new' as const,
  object: {
    key: 'in/big.bin',
    etag: '"0123456789abcdef0123456789abcdef"',
    size: 20 * MiB,
    lastModified: new Date('2026-12-03T00:00:00.000Z'),
    storageClass: 'STANDARD',
  },
};
const version = versionId(step.object.key, step.object.etag);
const events: string[] = [];
const sent: PartTask[] = [];
const state = {
  client: new DynamoDBClient({ region: 'us-east-1' }),
  tableName: 'state',
  putMultipartUpload: vi.fn(async (_jobId: string, record: { uploadId: string }) => {
    events.push(`record ${record.uploadId || '(creating)'}`);
  }),
  deleteMultipartUpload: vi.fn(async (_jobId: string, key: string) => {
    events.push(`forget ${key.split('\u0000').join('|')}`);
  }),
};
const pass = {
  deps: {
    destinationS3: new S3Client({ region: 'us-east-1' }),
    state,
    queues: {
      part: async (task: PartTask) => {
        events.push(`send ${task.partNumber}`);
        sent.push(task);
      },
    },
  },
  job,
  runId: 'run-1',
  fence: 9,
  tally: { expect: vi.fn(async (id: string, n: number) => events.push(`expect ${id} ${n}`)) },
  source: { s3: new S3Client({ region: 'us-east-1' }) },
} as unknown as OpenPass;
const control = { worker: 'w1', signal: new AbortController().signal, minPartSize: 8 * MiB };
const stored = (uploadId: string, extra: object = {}) => ({
  Item: {
    pk: 'job#giant',
    sk: `pass#9#part-upload#${version}`,
    uploadId,
    partSize: 8 * MiB,
    partCount: 3,
    state: 'open',
    ...extra,
  },
});

beforeEach(() => {
  s3.reset();
  dynamo.reset();
  events.length = 0;
  sent.length = 0;
  vi.clearAllMocks();
  s3.on(HeadObjectCommand).resolves({ ContentType: 'application/x-big', Metadata: { a: 'b' } });
  s3.on(CreateMultipartUploadCommand).callsFake(async () => {
    events.push('create mine');
    return { UploadId: 'mine' };
  });
  s3.on(AbortMultipartUploadCommand).callsFake(async (input) => {
    events.push(`abort ${input.UploadId}`);
    return {};
  });
});

describe("openPartUpload: a giant object's one upload and its part tasks", () => {
  it('opens the upload, on record before it exists, then announces its parts before sending them', async () => {
    dynamo.on(GetCommand).resolves({});
    dynamo.on(PutCommand).resolves({});

    const opened = await openPartUpload(pass, step, control);

    expect(opened).toMatchObject({ status: 'sent', tasks: 3 });
    expect(events).toEqual([
      'record (creating)',
      'create mine',
      'record mine',
      `expect parts-${version} 3`,
      'send 1',
      'send 2',
      'send 3',
    ]);
    expect(s3.commandCalls(CreateMultipartUploadCommand)[0]?.args[0].input).toMatchObject({
      Bucket: 'dst',
      Key: 'out/big.bin',
      ContentType: 'application/x-big',
      Metadata: { a: 'b' },
    });
    expect(s3.commandCalls(HeadObjectCommand)[0]?.args[0].input).toMatchObject({ IfMatch: step.object.etag });
    expect(dynamo.commandCalls(PutCommand)[0]?.args[0].input).toMatchObject({
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: {
        uploadId: 'mine',
        partCount: 3,
        partSize: 8 * MiB,
        destinationKey: 'out/big.bin',
        state: 'open',
      },
    });
    expect(sent.map((task) => [task.uploadId, task.range.start, task.range.end])).toEqual([
      ['mine', 0, 8 * MiB - 1],
      ['mine', 8 * MiB, 16 * MiB - 1],
      ['mine', 16 * MiB, 20 * MiB - 1],
    ]);
  });

  it('adopts the upload another delivery kept first, and aborts and forgets its own', async () => {
    dynamo.on(GetCommand).resolvesOnce({}).resolves(stored('theirs'));
    dynamo.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'exists', $metadata: {} }));

    const opened = await openPartUpload(pass, step, control);

    expect(opened).toMatchObject({ status: 'sent', tasks: 3 });
    expect(events.slice(0, 5)).toEqual([
      'record (creating)',
      'create mine',
      'record mine',
      'abort mine',
      'forget in/big.bin|part-upload|w1',
    ]);
    expect(sent.map((task) => task.uploadId)).toEqual(['theirs', 'theirs', 'theirs']);
  });

  it('creates nothing for a source that changed since it was listed, and hands it to a copy task', async () => {
    dynamo.on(GetCommand).resolves({});
    s3.on(HeadObjectCommand).rejects(
      new S3ServiceException({
        name: 'PreconditionFailed',
        $fault: 'client',
        $metadata: { httpStatusCode: 412 },
      }),
    );

    const opened = await openPartUpload(pass, step, control);

    expect(opened).toEqual({
      status: 'refused',
      reason: 's3://src/in/big.bin changed after it was listed; the next run copies the new version',
    });
    expect(events).toEqual([]);
  });

  it('sends nothing for a version whose upload an earlier delivery completed or aborted', async () => {
    for (const state of ['completed', 'aborted']) {
      dynamo.on(GetCommand).resolves(stored('theirs', { state }));

      expect(await openPartUpload(pass, step, control)).toMatchObject({ status: 'settled' });
    }
    expect(events).toEqual([]);
  });
});

describe('openPartUpload: the part size, by how the job copies', () => {
  const GiB = 1024 * MiB;
  const opened = async (copyMethod: 'stream' | 'server-side', size: number) => {
    dynamo.on(GetCommand).resolves({});
    dynamo.on(PutCommand).resolves({});
    const jobOf = parseJob({ ...job, options: { ...job.options, copyMethod } });
    const giant = { ...step, object: { ...step.object, size } };
    const { minPartSize: _test, ...defaults } = control;
    const result = await openPartUpload({ ...pass, job: jobOf }, giant, defaults);
    const partSize = dynamo.commandCalls(PutCommand)[0]?.args[0].input.Item?.partSize;
    sent.length = 0;
    dynamo.reset();
    return { result, partSize };
  };

  it("cuts a server-side job's object into 1 GiB parts (UploadPartCopy) and a streamed one's into 64 MiB parts", async () => {
    expect(await opened('server-side', 3 * GiB)).toMatchObject({
      result: { status: 'sent', tasks: 3 },
      partSize: GiB,
    });
    expect(await opened('stream', 3 * GiB)).toMatchObject({
      result: { status: 'sent', tasks: 48 },
      partSize: 64 * MiB,
    });
  });

  it('fits a 5 TiB object of a server-side job in 5,120 parts, within the 10,000 S3 allows', async () => {
    expect(await opened('server-side', 5 * 1024 * GiB)).toMatchObject({
      result: { status: 'sent', tasks: 5120 },
      partSize: GiB,
    });
  });
});

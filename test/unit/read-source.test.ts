import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CopyRequest } from '../../functions/core/copy/copy-object.js';
import {
  checkForRead,
  getSource,
  learnSourceCheck,
  readSourceTags,
} from '../../functions/core/copy/read-source.js';
import type { SourceCheck } from '../../functions/core/copy/verify-stream.js';
import { ObjectCopyError, SourceArchivedError, SourceVanishedError } from '../../functions/core/errors.js';

const s3 = new S3Client({ region: 'us-east-1' });
const s3Mock = mockClient(S3Client);
const s3Error = (name: string, status: number, extra: Record<string, string> = {}) =>
  Object.assign(
    new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name }),
    extra,
  );
const request: CopyRequest = {
  sourceBucket: 'src',
  key: 'a.bin',
  etag: '"0123456789abcdef0123456789abcdef"',
  size: 10,
  destinationBucket: 'dst',
  destinationKey: 'a.bin',
  overwrite: false,
};

async function getFailure(error: Error): Promise<ObjectCopyError> {
  s3Mock.on(GetObjectCommand).rejects(error);
  return getSource(s3, request, 0).then(
    () => expect.fail('the GET succeeded'),
    (failure: unknown) => failure as ObjectCopyError,
  );
}

describe('getSource explains a failed read', () => {
  beforeEach(() => s3Mock.reset());

  it('reads from the middle of the object for a continued copy', async () => {
    s3Mock.on(GetObjectCommand).resolves({});

    await getSource(s3, request, 7);

    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, { Range: 'bytes=7-', IfMatch: request.etag });
  });

  it.each([
    ['PreconditionFailed', 400],
    ['Other', 412],
  ])('leaves a source changed since it was listed (%s, %i) to the next run', async (name, status) => {
    const failure = await getFailure(s3Error(name, status));

    expect(failure.message).toMatch(/^s3:\/\/src\/a\.bin changed after it was listed/);
    expect(failure.retryable).toBe(false);
  });

  it.each([
    ['NoSuchKey', 400],
    ['NotFound', 400],
    ['Other', 404],
  ])('reports a source deleted since it was listed (%s, %i) as vanished', async (name, status) => {
    const failure = await getFailure(s3Error(name, status));

    expect(failure).toBeInstanceOf(SourceVanishedError);
    expect(failure.message).toBe('s3://src/a.bin was deleted after it was listed');
    expect(failure.retryable).toBe(false);
  });

  it('reports an archived source as archived, naming its storage class and tier', async () => {
    const tiered = await getFailure(
      s3Error('InvalidObjectState', 403, {
        StorageClass: 'INTELLIGENT_TIERING',
        AccessTier: 'ARCHIVE_ACCESS',
      }),
    );
    const unnamed = await getFailure(s3Error('InvalidObjectState', 403));

    expect(tiered).toBeInstanceOf(SourceArchivedError);
    expect(tiered.message).toMatch(/is archived \(INTELLIGENT_TIERING ARCHIVE_ACCESS\): restore it/);
    expect(tiered.retryable).toBe(false);
    expect(unnamed.message).toMatch(/is archived \(storage class not readable\)/);
  });

  it.each([
    ['AccessDenied', 400],
    ['Forbidden', 403],
  ])('names s3:GetObject when the read is denied (%s, %i), and does not retry', async (name, status) => {
    const failure = await getFailure(s3Error(name, status));

    expect(failure.message).toMatch(/^GET s3:\/\/src\/a\.bin was denied: the source role needs s3:GetObject/);
    expect(failure.retryable).toBe(false);
  });

  it('passes any other failure on as retryable, naming the request', async () => {
    const failure = await getFailure(s3Error('SlowDown', 503));

    expect(failure).toBeInstanceOf(ObjectCopyError);
    expect(failure.message).toBe('GET s3://src/a.bin failed: SlowDown');
    expect(failure.retryable).toBe(true);
  });
});

describe('readSourceTags', () => {
  beforeEach(() => s3Mock.reset());

  it('gives no Tagging for an object without tags', async () => {
    s3Mock.on(GetObjectTaggingCommand).resolves({ TagSet: [] });

    expect(await readSourceTags(s3, request)).toBeUndefined();
  });

  it.each([
    ['AccessDenied', 400],
    ['Forbidden', 403],
  ])('names s3:GetObjectTagging when reading tags is denied (%s, %i)', async (name, status) => {
    s3Mock.on(GetObjectTaggingCommand).rejects(s3Error(name, status));

    const failure = await readSourceTags(s3, request).then(
      () => expect.fail('the tags were read'),
      (error: unknown) => error as ObjectCopyError,
    );

    expect(failure.message).toMatch(/s3:GetObjectTagging on arn:aws:s3:::src\/\*/);
    expect(failure.retryable).toBe(false);
  });

  it('reports a source deleted before its tags were read as vanished', async () => {
    s3Mock.on(GetObjectTaggingCommand).rejects(s3Error('NoSuchKey', 404));

    await expect(readSourceTags(s3, request)).rejects.toThrow(SourceVanishedError);
  });
});

describe('learnSourceCheck and checkForRead', () => {
  beforeEach(() => s3Mock.reset());

  const multipart = { ...request, etag: '"0123456789abcdef0123456789abcdef-3"', size: 25 };

  it('checks a plain ETag as the MD5 and any other as the size only, without asking S3', async () => {
    expect(await learnSourceCheck(s3, request)).toEqual({
      kind: 'md5',
      md5: '0123456789abcdef0123456789abcdef',
    });
    expect(await learnSourceCheck(s3, { ...request, etag: '"not-an-md5"' })).toEqual({ kind: 'size-only' });
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('learns equal parts from part 1 alone', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, PartsCount: 3 });

    const check = await learnSourceCheck(s3, multipart);

    expect(check).toEqual({ kind: 'composite', etag: multipart.etag.slice(1, -1), partSizes: [10, 10, 5] });
    expect(s3Mock).toHaveReceivedCommandTimes(HeadObjectCommand, 1);
  });

  it('asks each part its size when they are not equal', async () => {
    s3Mock.on(HeadObjectCommand).callsFake(async ({ PartNumber }) => ({
      ContentLength: [8, 12, 5][PartNumber - 1],
      PartsCount: 3,
    }));

    const check = await learnSourceCheck(s3, multipart);

    expect(check).toMatchObject({ kind: 'composite', partSizes: [8, 12, 5] });
  });

  it('asks each part its size when S3 counts other parts than the ETag', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, PartsCount: 2 });

    await learnSourceCheck(s3, multipart);

    expect(s3Mock).toHaveReceivedCommandTimes(HeadObjectCommand, 3);
  });

  it('keeps the composite check of a multipart read, whatever the GET says of its encryption', () => {
    const composite: SourceCheck = { kind: 'composite', etag: 'e-2', partSizes: [5, 5] };

    expect(checkForRead(composite, { ServerSideEncryption: 'aws:kms', $metadata: {} })).toBe(composite);
  });

  it.each([{ ServerSideEncryption: 'aws:kms' as const }, { SSECustomerAlgorithm: 'AES256' }])(
    'checks an encrypted multipart source by its size only (%o)',
    async (encryption) => {
      s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, PartsCount: 3, ...encryption });

      expect(await learnSourceCheck(s3, multipart)).toEqual({ kind: 'size-only' });
    },
  );

  it('reports a multipart source deleted before its layout was read as vanished', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));

    await expect(learnSourceCheck(s3, multipart)).rejects.toThrow(/^s3:\/\/src\/a\.bin was deleted/);
  });

  it.each([{ ServerSideEncryption: 'aws:kms' as const }, { SSECustomerAlgorithm: 'AES256' }])(
    'holds a read of an encrypted object with an MD5-looking ETag to its size only (%o)',
    (encryption) => {
      const md5 = { kind: 'md5', md5: '0123456789abcdef0123456789abcdef' } as const;

      expect(checkForRead(md5, { ...encryption, $metadata: {} })).toEqual({ kind: 'size-only' });
      expect(checkForRead(md5, { ServerSideEncryption: 'AES256', $metadata: {} })).toBe(md5);
    },
  );
});

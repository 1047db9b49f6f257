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

    expect(failure.message).toBe(
      'GET s3://src/a.bin was denied: the source role needs s3:GetObject on arn:aws:s3:::src/*' +
        ' (and kms:Decrypt if the object is SSE-KMS encrypted)',
    );
    expect(failure.retryable).toBe(false);
  });

  it('passes the abort signal on to the GET', async () => {
    const controller = new AbortController();
    s3Mock.on(GetObjectCommand).resolves({});

    await getSource(s3, request, 0, controller.signal);

    const options = s3Mock.commandCalls(GetObjectCommand).map((call) => (call.args as unknown[])[1]);
    expect(options).toEqual([{ abortSignal: controller.signal }]);
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

  it('writes the tags as URL-encoded key=value pairs joined by &, an absent key or value as empty', async () => {
    s3Mock.on(GetObjectTaggingCommand).resolves({
      TagSet: [
        { Key: 'team name', Value: 'a&b=c' },
        { Key: 'empty', Value: undefined },
        { Key: undefined, Value: 'orphan' },
      ],
    });

    expect(await readSourceTags(s3, request)).toBe('team%20name=a%26b%3Dc&empty=&=orphan');
  });

  it('passes the abort signal on to GetObjectTagging', async () => {
    const controller = new AbortController();
    s3Mock.on(GetObjectTaggingCommand).resolves({ TagSet: [] });

    await readSourceTags(s3, request, controller.signal);

    const options = s3Mock.commandCalls(GetObjectTaggingCommand).map((call) => (call.args as unknown[])[1]);
    expect(options).toEqual([{ abortSignal: controller.signal }]);
  });

  it.each([
    ['AccessDenied', 400],
    ['Forbidden', 403],
  ])(
    'names s3:GetObjectTagging, the object and both fixes when reading tags is denied (%s, %i)',
    async (name, status) => {
      s3Mock.on(GetObjectTaggingCommand).rejects(s3Error(name, status));

      const failure = await readSourceTags(s3, request).then(
        () => expect.fail('the tags were read'),
        (error: unknown) => error as ObjectCopyError,
      );

      expect(failure.message).toBe(
        'reading the tags of s3://src/a.bin was denied: options.copyTags needs s3:GetObjectTagging on ' +
          'arn:aws:s3:::src/* for the source role (AccountA: deploy source-account/template.yaml with ' +
          'AllowGetObjectTagging=true), or set options.copyTags to false',
      );
      expect(failure.retryable).toBe(false);
    },
  );

  it('passes any other failure to read the tags on as retryable, naming GetObjectTagging', async () => {
    s3Mock.on(GetObjectTaggingCommand).rejects(s3Error('SlowDown', 503));

    const failure = await readSourceTags(s3, request).then(
      () => expect.fail('the tags were read'),
      (error: unknown) => error as ObjectCopyError,
    );

    expect(failure.message).toBe('GetObjectTagging s3://src/a.bin failed: SlowDown');
    expect(failure.retryable).toBe(true);
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

  it.each([
    ['text before an MD5', 'W/"0123456789abcdef0123456789abcdef"'],
    ['text after an MD5', '"0123456789abcdef0123456789abcdefx"'],
    ['text before a multipart ETag', '"x0123456789abcdef0123456789abcdef-3"'],
    ['text after a multipart ETag', '"0123456789abcdef0123456789abcdef-3x"'],
  ])('checks an ETag with %s by the size only, without asking S3', async (_, etag) => {
    expect(await learnSourceCheck(s3, { ...request, etag })).toEqual({ kind: 'size-only' });
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('recognises a multipart ETag of 10 or more parts', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, PartsCount: 12 });
    const twelve = { ...request, etag: '"0123456789abcdef0123456789abcdef-12"', size: 115 };

    const check = await learnSourceCheck(s3, twelve);

    expect(check).toEqual({
      kind: 'composite',
      etag: '0123456789abcdef0123456789abcdef-12',
      partSizes: [...Array.from({ length: 11 }, () => 10), 5],
      assumed: true,
    });
  });

  it('learns equal parts from part 1 alone', async () => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, PartsCount: 3 });

    const check = await learnSourceCheck(s3, multipart);

    expect(check).toEqual({
      kind: 'composite',
      etag: multipart.etag.slice(1, -1),
      partSizes: [10, 10, 5],
      assumed: true,
    });
    expect(s3Mock).toHaveReceivedCommandTimes(HeadObjectCommand, 1);
  });

  it('asks each part its size, assuming nothing, when told to learn the exact layout', async () => {
    s3Mock.on(HeadObjectCommand).callsFake(async ({ PartNumber }) => ({
      ContentLength: [10, 9, 6][PartNumber - 1],
      PartsCount: 3,
    }));

    const check = await learnSourceCheck(s3, multipart, undefined, { exactLayout: true });

    expect(check).toEqual({ kind: 'composite', etag: multipart.etag.slice(1, -1), partSizes: [10, 9, 6] });
    expect(s3Mock).toHaveReceivedCommandTimes(HeadObjectCommand, 3);
  });

  it('asks each part its size when they are not equal', async () => {
    s3Mock.on(HeadObjectCommand).callsFake(async ({ PartNumber }) => ({
      ContentLength: [8, 12, 5][PartNumber - 1],
      PartsCount: 3,
    }));

    const check = await learnSourceCheck(s3, multipart);

    expect(check).toMatchObject({ kind: 'composite', partSizes: [8, 12, 5] });
  });

  it('passes the abort signal on to every HEAD of a part', async () => {
    const controller = new AbortController();
    s3Mock.on(HeadObjectCommand).callsFake(async ({ PartNumber }) => ({
      ContentLength: [8, 12, 5][PartNumber - 1],
      PartsCount: 3,
    }));

    await learnSourceCheck(s3, multipart, controller.signal);

    const calls = s3Mock.commandCalls(HeadObjectCommand);
    expect(calls).toHaveLength(3);
    for (const call of calls) expect((call.args as unknown[])[1]).toEqual({ abortSignal: controller.signal });
  });

  it('never takes an empty first part for the size of equal parts, even against a part count that overflows', async () => {
    // With an empty first part the size divides into Infinity parts: only a part count too long for a number
    // (read as Infinity) equals that, and the layout is then still asked part by part.
    const overflowing = { ...multipart, etag: `"0123456789abcdef0123456789abcdef-${'9'.repeat(400)}"` };
    s3Mock
      .on(HeadObjectCommand)
      .callsFake(async ({ PartNumber }) =>
        PartNumber === 1 ? { ContentLength: 0 } : Promise.reject(s3Error('InvalidPartNumber', 416)),
      );

    await expect(learnSourceCheck(s3, overflowing)).rejects.toThrow(
      new ObjectCopyError('HEAD s3://src/a.bin failed: InvalidPartNumber'),
    );
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

  it.each([
    { ServerSideEncryption: 'aws:kms' as const },
    { ServerSideEncryption: 'aws:kms:dsse' as const },
    { SSECustomerAlgorithm: 'AES256' },
  ])('checks an SSE-KMS, DSSE-KMS or SSE-C multipart source by its size only (%o)', async (encryption) => {
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 10, PartsCount: 3, ...encryption });

    expect(await learnSourceCheck(s3, multipart)).toEqual({ kind: 'size-only' });
  });

  it('rebuilds the composite ETag of an SSE-S3 (AES256) multipart source', async () => {
    s3Mock
      .on(HeadObjectCommand)
      .resolves({ ContentLength: 10, PartsCount: 3, ServerSideEncryption: 'AES256' });

    expect(await learnSourceCheck(s3, multipart)).toMatchObject({
      kind: 'composite',
      partSizes: [10, 10, 5],
    });
  });

  it('reports a multipart source deleted before its layout was read as vanished', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));

    await expect(learnSourceCheck(s3, multipart)).rejects.toThrow(/^s3:\/\/src\/a\.bin was deleted/);
  });

  it('names the HEAD, the object and the permissions when reading the layout is denied', async () => {
    s3Mock.on(HeadObjectCommand).rejects(s3Error('Forbidden', 403));

    const failure = await learnSourceCheck(s3, multipart).then(
      () => expect.fail('the layout was read'),
      (error: unknown) => error as ObjectCopyError,
    );

    expect(failure).toBeInstanceOf(ObjectCopyError);
    expect(failure.message).toBe(
      'HEAD s3://src/a.bin was denied: the source role needs s3:GetObject on arn:aws:s3:::src/*' +
        ' (and kms:Decrypt if the object is SSE-KMS encrypted)',
    );
    expect(failure.retryable).toBe(false);
  });

  it.each([
    { ServerSideEncryption: 'aws:kms' as const },
    { ServerSideEncryption: 'aws:kms:dsse' as const },
    { SSECustomerAlgorithm: 'AES256' },
  ])('holds a read of an encrypted object with an MD5-looking ETag to its size only (%o)', (encryption) => {
    const md5 = { kind: 'md5', md5: '0123456789abcdef0123456789abcdef' } as const;

    expect(checkForRead(md5, { ...encryption, $metadata: {} })).toEqual({ kind: 'size-only' });
    expect(checkForRead(md5, { ServerSideEncryption: 'AES256', $metadata: {} })).toBe(md5);
  });
});

import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type CopyRequest,
  copyObject,
  PART_SIZE,
  type UploadRecords,
} from '../../functions/core/copy/copy-object.js';
import { MIN_PART_SIZE } from '../../functions/core/copy/part-plan.js';
import { IntegrityError, ObjectCopyError, SourceVanishedError } from '../../functions/core/errors.js';
import type { MultipartUploadRecord } from '../../functions/core/state/state-store.js';

/** How many bytes went through MD5 hashes (node:crypto is passed through, only counted). */
const md5Hashed = vi.hoisted(() => ({ bytes: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>();
  const createHash = ((algorithm: string, options?: Parameters<typeof crypto.createHash>[1]) => {
    const hash = crypto.createHash(algorithm, options);
    if (algorithm !== 'md5') return hash;
    const update = hash.update.bind(hash) as (data: Buffer | string) => typeof hash;
    hash.update = ((data: Buffer | string) => {
      md5Hashed.bytes += data.length;
      return update(data);
    }) as typeof hash.update;
    return hash;
  }) as typeof crypto.createHash;
  return { ...crypto, createHash, default: { ...crypto, createHash } };
});

const sourceS3 = new S3Client({ region: 'us-east-1' });
const destinationS3 = new S3Client({ region: 'us-east-1', requestChecksumCalculation: 'WHEN_REQUIRED' });
const s3Mock = mockClient(S3Client);
const clients = { sourceS3, destinationS3 };

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');
const body = (data: Buffer) => sdkStreamMixin(Readable.from([data]));
const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

/** The source serves `data`; the first PUT is refused with `error`, the next stores `data`. */
function firstPutRefused(data: Buffer, error: Error): void {
  s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
  s3Mock
    .on(PutObjectCommand)
    .rejectsOnce(error)
    .resolves({ ETag: `"${md5(data)}"` });
}

function request(data: Buffer, overrides: Partial<CopyRequest> = {}): CopyRequest {
  return {
    sourceBucket: 'src',
    key: 'dir/file name+1%.txt',
    etag: `"${md5(data)}"`,
    size: data.length,
    destinationBucket: 'dst',
    destinationKey: 'copy/dir/file name+1%.txt',
    overwrite: false,
    ...overrides,
  };
}

describe('copyObject', () => {
  beforeEach(() => s3Mock.reset());

  it.each([
    {
      outcome: 'stored',
      put: () => s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(Buffer.from('hi'))}"` }),
    },
    { outcome: 'refused', put: () => s3Mock.on(PutObjectCommand).rejects(s3Error('AccessDenied', 403)) },
  ])(
    "leaves nothing behind once an object is $outcome: the source body destroyed, no listener on the caller's signal",
    async ({ put }) => {
      const data = Buffer.from('hi');
      const source = body(data);
      s3Mock.on(GetObjectCommand).resolves({ Body: source });
      put();
      const { signal } = new AbortController();

      await copyObject(clients, request(data), { signal }).catch(() => {});

      expect((source as Readable).destroyed).toBe(true);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    },
  );

  it.each([
    {
      failure: 'the ledger intent was not recorded',
      refusal: /the ledger is unreachable/,
      arrange: () => {
        const unrecorded = Promise.reject(new Error('the ledger is unreachable'));
        // The copy awaits it later; handled here too, so it is not reported as an unhandled rejection first.
        unrecorded.catch(() => {});
        return { beforeWrite: unrecorded };
      },
    },
    {
      failure: 'CreateMultipartUpload was denied',
      refusal: /PUT s3:\/\/dst\/.* was denied/,
      arrange: () => {
        s3Mock.on(CreateMultipartUploadCommand).rejects(s3Error('AccessDenied', 403));
        return {};
      },
    },
  ])(
    'destroys a source body it read only in part by the time the copy fails because $failure',
    async ({ refusal, arrange }) => {
      // Arrange: a body of many chunks, which the copy stops reading long before its end.
      const data = Buffer.alloc(2 * MIN_PART_SIZE + 1024, 4);
      const chunkSize = 64 * 1024;
      const chunks = Array.from({ length: Math.ceil(data.length / chunkSize) }, (_, i) =>
        data.subarray(i * chunkSize, (i + 1) * chunkSize),
      );
      const source = sdkStreamMixin(Readable.from(chunks));
      s3Mock.on(GetObjectCommand).resolves({ Body: source });
      const options = arrange();

      // Act
      const failure = await copyObject(clients, request(data), { partSize: MIN_PART_SIZE, ...options }).then(
        () => expect.fail('the copy succeeded'),
        (error: unknown) => error as Error,
      );

      // Assert: not ended (so not destroyed by reaching its end), yet destroyed, releasing its connection.
      expect(failure.message).toMatch(refusal);
      expect((source as Readable).readableEnded).toBe(false);
      expect((source as Readable).destroyed).toBe(true);
    },
  );

  it('pins the GET to the listed ETag and keeps content headers and metadata', async () => {
    // Prepare
    const data = Buffer.from('hello');
    s3Mock.on(GetObjectCommand).resolves({
      Body: body(data),
      ContentType: 'text/plain',
      CacheControl: 'max-age=60',
      ContentDisposition: 'inline',
      Metadata: { owner: 'team-a' },
    });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    // Act
    const result = await copyObject(clients, request(data));

    // Assess
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: 'src',
      Key: 'dir/file name+1%.txt',
      IfMatch: `"${md5(data)}"`,
    });
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: 'dst',
      Key: 'copy/dir/file name+1%.txt',
      ContentType: 'text/plain',
      CacheControl: 'max-age=60',
      ContentDisposition: 'inline',
      Metadata: { owner: 'team-a' },
      IfNoneMatch: '*',
    });
    expect(result).toMatchObject({ bytes: 5, destinationEtag: md5(data), verifiedBy: 'etag-md5' });
    expect(result.sha256).toBe(createHash('sha256').update(data).digest('base64'));
  });

  it('copies an SSE-KMS source whose ETag looks like an MD5 but is not, stating its checksum instead', async () => {
    // Prepare: S3 gives an SSE-KMS object an ETag that is not the MD5 of its bytes.
    const data = Buffer.from('encrypted at rest');
    const kmsEtag = `"${md5(Buffer.from('not these bytes'))}"`;
    const crc32 = 'AAAAAA==';
    s3Mock.on(GetObjectCommand).resolves({
      Body: body(data),
      ServerSideEncryption: 'aws:kms',
      ChecksumCRC32: crc32,
      ChecksumType: 'FULL_OBJECT',
    });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    // Act
    const result = await copyObject(clients, request(data, { etag: kmsEtag }));

    // Assess
    const put = s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(put?.ContentMD5).toBeUndefined();
    expect(put?.ChecksumCRC32).toBe(crc32);
    expect(result).toMatchObject({ bytes: data.length, destinationEtag: md5(data), verifiedBy: 'etag-md5' });
  });

  it('still refuses a plain source whose bytes do not match its MD5 ETag', async () => {
    const data = Buffer.from('plain bytes');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data), ServerSideEncryption: 'AES256' });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    const copy = copyObject(clients, request(data, { etag: `"${md5(Buffer.from('other'))}"` }));

    await expect(copy).rejects.toThrow(IntegrityError);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 0);
  });

  it('writes the source tags with the object when asked, and names the producer parameter when refused', async () => {
    const data = Buffer.from('tagged');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });
    s3Mock.on(GetObjectTaggingCommand).resolvesOnce({
      TagSet: [
        { Key: 'team', Value: 'data eng' },
        { Key: 'a&b', Value: '1=2' },
      ],
    });

    await copyObject(clients, request(data, { copyTags: true }));
    s3Mock.on(GetObjectTaggingCommand).rejects(s3Error('AccessDenied', 403));
    const refused = copyObject(clients, request(data, { copyTags: true }));

    const put = s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(put?.Tagging).toBe('team=data%20eng&a%26b=1%3D2');
    await expect(refused).rejects.toThrow(/s3:GetObjectTagging.*AllowGetObjectTagging=true/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('overwrites only the copy it wrote before (If-Match on the recorded destination ETag)', async () => {
    const data = Buffer.from('v2');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    await copyObject(clients, request(data, { previousDestinationEtag: 'abc' }));

    const put = s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(put?.IfMatch).toBe('"abc"');
    expect(put?.IfNoneMatch).toBeUndefined();
  });

  it('leaves a destination object it did not write untouched and says how to proceed', async () => {
    const data = Buffer.from('x');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5(Buffer.from('y'))}"`, ContentLength: 1 });

    const copy = copyObject(clients, request(data));

    await expect(copy).rejects.toThrow(ObjectCopyError);
    await expect(copy).rejects.toThrow(/did not write, so it was left untouched.*options\.mirror/);
  });

  it('adopts a destination object holding exactly these bytes (a run killed before recording it)', async () => {
    const data = Buffer.from('same bytes');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${md5(data)}"`, ContentLength: data.length });

    const result = await copyObject(clients, request(data));

    expect(result).toMatchObject({ adopted: true, destinationEtag: md5(data), bytes: data.length });
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('fails cleanly when the source changed after listing', async () => {
    s3Mock.on(GetObjectCommand).rejects(s3Error('PreconditionFailed', 412));

    await expect(copyObject(clients, request(Buffer.from('x')))).rejects.toThrow(
      /changed after it was listed/,
    );
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('reports a source object deleted after listing as vanished', async () => {
    s3Mock.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));

    await expect(copyObject(clients, request(Buffer.from('x')))).rejects.toThrow(SourceVanishedError);
  });

  it('detects bytes that do not match the ETag S3 stored', async () => {
    const data = Buffer.from('hello');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"00000000000000000000000000000000"' });

    await expect(copyObject(clients, request(data))).rejects.toThrow(IntegrityError);
  });

  it('streams a large object as a multipart upload and verifies the multipart ETag', async () => {
    const data = Buffer.alloc(PART_SIZE + 1024, 7);
    const parts = [data.subarray(0, PART_SIZE), data.subarray(PART_SIZE)];
    const multipartEtag = `${md5(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest())))}-2`;
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: `"${multipartEtag}"` });

    const result = await copyObject(clients, request(data, { etag: '"whatever-2"' }));

    expect(result).toMatchObject({
      bytes: data.length,
      destinationEtag: multipartEtag,
      verifiedBy: 'etag-md5',
    });
    expect(s3Mock).toHaveReceivedCommandTimes(UploadPartCommand, 2);
    expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, {
      IfNoneMatch: '*',
      UploadId: 'u1',
    });
  });

  it('checks a large source object with a single-part ETag against the MD5 of all its bytes', async () => {
    const data = Buffer.alloc(PART_SIZE + 1024, 9);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u3' });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"ffffffffffffffffffffffffffffffff-2"' });
    s3Mock.on(AbortMultipartUploadCommand).resolves({});

    await expect(
      copyObject(clients, request(data, { etag: `"${md5(Buffer.from('other'))}"` })),
    ).rejects.toThrow(/bytes read do not match its ETag/);
    await expect(copyObject(clients, request(data, { etag: `"${md5(data)}"` }))).rejects.toThrow(
      /stored ETag .* does not match the bytes sent/,
    );
  });

  it('aborts the multipart upload when a part fails, leaving no parts behind', async () => {
    const data = Buffer.alloc(PART_SIZE * 2 + 1, 1);
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u2' });
    s3Mock.on(UploadPartCommand).rejects(s3Error('InternalError', 500));
    s3Mock.on(AbortMultipartUploadCommand).resolves({});

    await expect(copyObject(clients, request(data, { etag: '"e-3"' }))).rejects.toThrow(
      /PUT s3:\/\/dst\/.* failed/,
    );
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { Bucket: 'dst', UploadId: 'u2' });
    expect(s3Mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
  });
});

describe('copyObject verifies before anything becomes visible (issue 9)', () => {
  beforeEach(() => s3Mock.reset());

  const partSize = MIN_PART_SIZE;
  const twoParts = () => Buffer.alloc(partSize + 1024, 3);
  const digest = (data: Buffer) => createHash('md5').update(data).digest();
  const records = (): UploadRecords & { saved: Omit<MultipartUploadRecord, 'runId'>[] } => {
    const saved: Omit<MultipartUploadRecord, 'runId'>[] = [];
    return {
      saved,
      save: vi.fn(async (record) => {
        saved.push(structuredClone(record));
      }),
      forget: vi.fn(async () => {}),
    };
  };

  it('sends the source MD5 as Content-MD5 on a single PutObject, so S3 itself refuses other bytes', async () => {
    const data = Buffer.from('hello');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    await copyObject(clients, request(data));

    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      ContentMD5: createHash('md5').update(data).digest('base64'),
    });
  });

  it('sends no PutObject at all when the source body ends short', async () => {
    const data = Buffer.from('the whole object');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data.subarray(0, 7)) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    await expect(copyObject(clients, request(data))).rejects.toThrow(/ended after 7 of 16 bytes/);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('names the source object, s3://bucket/key, whose read ended short', async () => {
    const data = Buffer.from('the whole object');
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data.subarray(0, 7)) });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    const copy = copyObject(clients, request(data));

    await expect(copy).rejects.toThrow(
      new IntegrityError(
        's3://src/dir/file name+1%.txt: the read ended after 7 of 16 bytes; nothing was written from this read',
      ),
    );
  });

  it("learns a multipart source's part layout and aborts, never completes, when its bytes do not rebuild the ETag", async () => {
    const data = twoParts();
    const parts = [data.subarray(0, partSize), data.subarray(partSize)];
    const etag = `"${createHash('md5')
      .update(Buffer.concat(parts.map(digest)))
      .digest('hex')}-2"`;
    const corrupted = Buffer.from(data);
    corrupted[10] = 9;
    s3Mock.on(HeadObjectCommand).resolves({ ContentLength: partSize, PartsCount: 2 });
    // In two chunks, so the first part is uploaded before the end of the read shows the damage.
    const chunks = [corrupted.subarray(0, partSize), corrupted.subarray(partSize)];
    s3Mock.on(GetObjectCommand).callsFake(async () => ({ Body: sdkStreamMixin(Readable.from(chunks)) }));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u4' });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3Mock.on(AbortMultipartUploadCommand).resolves({});

    await expect(copyObject(clients, request(data, { etag }), { partSize })).rejects.toThrow(IntegrityError);
    expect(s3Mock).toHaveReceivedCommandWith(HeadObjectCommand, { PartNumber: 1 });
    expect(s3Mock).toHaveReceivedCommandWith(UploadPartCommand, { UploadId: 'u4', PartNumber: 1 });
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'u4' });
    expect(s3Mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
  });

  it('sends each part with its Content-MD5', async () => {
    const data = twoParts();
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u5' });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-2"' });

    await copyObject(clients, request(data), { partSize });

    expect(s3Mock).toHaveReceivedCommandWith(UploadPartCommand, {
      PartNumber: 2,
      ContentMD5: digest(data.subarray(partSize)).toString('base64'),
    });
  });

  it('keeps a multipart upload cut by the deadline on record for the next run instead of aborting it', async () => {
    const data = twoParts();
    const deadline = new AbortController();
    const uploads = records();
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u6' });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => {
      if (input.PartNumber === 1) return { ETag: `"${md5(input.Body as Buffer)}"` };
      deadline.abort();
      throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    });

    await expect(
      copyObject(clients, request(data), { partSize, uploads, signal: deadline.signal }),
    ).rejects.toThrow(/cut at the deadline after 1 of 2 parts/);
    expect(uploads.saved.at(-1)).toMatchObject({
      uploadId: 'u6',
      partSize,
      resume: { completedParts: 1, readStart: 0 },
    });
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
  });

  it('records the MD5 each part the next read covers was sent with, and the ETag S3 gave it', async () => {
    const data = twoParts();
    const deadline = new AbortController();
    const uploads = records();
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u6' });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => {
      if (input.PartNumber === 1) return { ETag: '"not-an-md5"' };
      deadline.abort();
      throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    });

    await expect(
      copyObject(clients, request(data), { partSize, uploads, signal: deadline.signal }),
    ).rejects.toThrow(/cut at the deadline after 1 of 2 parts/);
    const resume = uploads.saved.at(-1)?.resume;
    expect(resume).toMatchObject({ readStart: 0, partEtags: ['"not-an-md5"'] });
    expect(Buffer.from(resume?.partMd5s ?? [])).toEqual(digest(data.subarray(0, partSize)));
  });

  it('continues a cut upload whose part ETags are not MD5s (SSE-KMS) against the MD5s on record', async () => {
    const data = twoParts();
    const first = data.subarray(0, partSize);
    const cutUpload: MultipartUploadRecord = {
      key: 'dir/file name+1%.txt',
      destinationKey: 'copy/dir/file name+1%.txt',
      uploadId: 'u9',
      runId: 'earlier',
      startedAt: new Date().toISOString(),
      sourceEtag: `"${md5(data)}"`,
      size: data.length,
      partSize,
      resume: {
        completedParts: 1,
        readStart: 0,
        partMd5s: digest(first),
        partEtags: ['"0123456789abcdef0123456789abcdef"'],
        cutAt: new Date().toISOString(),
      },
    };
    s3Mock.on(ListPartsCommand).resolves({
      Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"', Size: partSize }],
    });
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"fedcba9876543210fedcba9876543210"' });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-2"', ServerSideEncryption: 'aws:kms' });

    await copyObject(clients, request(data, { cutUpload }), { partSize, uploads: records() });

    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
    expect(s3Mock).toHaveReceivedCommandTimes(UploadPartCommand, 1);
    expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, { UploadId: 'u9' });
  });

  it('continues a cut upload: checks the parts stored against the source and uploads only the rest', async () => {
    const data = twoParts();
    const first = data.subarray(0, partSize);
    const uploads = records();
    const cutUpload: MultipartUploadRecord = {
      key: 'dir/file name+1%.txt',
      destinationKey: 'copy/dir/file name+1%.txt',
      uploadId: 'u7',
      runId: 'earlier',
      startedAt: new Date().toISOString(),
      sourceEtag: `"${md5(data)}"`,
      size: data.length,
      partSize,
      resume: { completedParts: 1, readStart: 0, cutAt: new Date().toISOString() },
    };
    s3Mock
      .on(ListPartsCommand)
      .resolves({ Parts: [{ PartNumber: 1, ETag: `"${md5(first)}"`, Size: partSize }] });
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-2"' });

    await copyObject(clients, request(data, { cutUpload }), { partSize, uploads });

    expect(s3Mock).not.toHaveReceivedCommand(CreateMultipartUploadCommand);
    expect(s3Mock).toHaveReceivedCommandTimes(UploadPartCommand, 1);
    expect(s3Mock).toHaveReceivedCommandWith(UploadPartCommand, { UploadId: 'u7', PartNumber: 2 });
    expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, {
      UploadId: 'u7',
      IfNoneMatch: '*',
      MultipartUpload: {
        Parts: [expect.objectContaining({ PartNumber: 1 }), expect.objectContaining({ PartNumber: 2 })],
      },
    });
    expect(uploads.forget).toHaveBeenCalledWith(cutUpload.key);
  });

  it('refuses to continue a cut upload whose stored part differs from the bytes read again', async () => {
    const data = twoParts();
    const cutUpload: MultipartUploadRecord = {
      key: 'dir/file name+1%.txt',
      destinationKey: 'copy/dir/file name+1%.txt',
      uploadId: 'u8',
      runId: 'earlier',
      startedAt: new Date().toISOString(),
      sourceEtag: `"${md5(data)}"`,
      size: data.length,
      partSize,
      resume: { completedParts: 1, readStart: 0, cutAt: new Date().toISOString() },
    };
    s3Mock
      .on(ListPartsCommand)
      .resolves({ Parts: [{ PartNumber: 1, ETag: `"${md5(Buffer.from('other'))}"`, Size: partSize }] });
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3Mock.on(AbortMultipartUploadCommand).resolves({});

    await expect(
      copyObject(clients, request(data, { cutUpload }), { partSize, uploads: records() }),
    ).rejects.toThrow(/part 1 uploaded by an earlier run does not hold the bytes read again/);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'u8' });
    expect(s3Mock).not.toHaveReceivedCommand(CompleteMultipartUploadCommand);
  });

  it('aborts a cut upload whose source changed since, and starts over', async () => {
    const data = twoParts();
    const uploads = records();
    const cutUpload: MultipartUploadRecord = {
      key: 'dir/file name+1%.txt',
      destinationKey: 'copy/dir/file name+1%.txt',
      uploadId: 'stale',
      runId: 'earlier',
      startedAt: new Date().toISOString(),
      sourceEtag: '"0123456789abcdef0123456789abcdef"',
      size: data.length,
      partSize,
      resume: { completedParts: 1, readStart: 0, cutAt: new Date().toISOString() },
    };
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
    s3Mock.on(GetObjectCommand).resolves({ Body: body(data) });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'fresh' });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-2"' });

    await copyObject(clients, request(data, { cutUpload }), { partSize, uploads });

    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'stale' });
    expect(s3Mock).not.toHaveReceivedCommand(ListPartsCommand);
    expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, { UploadId: 'fresh' });
    // On record before the upload is created (no id yet), then with its id.
    expect(uploads.saved.map((record) => record.uploadId)).toEqual(['', 'fresh']);
  });
});

describe('copyObject after a refused conditional write', () => {
  beforeEach(() => s3Mock.reset());

  const occupiedBy = (etag: string, size: number, extra: Record<string, unknown> = {}) =>
    s3Mock.on(HeadObjectCommand).resolves({ ETag: etag, ContentLength: size, ...extra });
  const putCalls = () => s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
  const conditions = () => putCalls().map(({ IfMatch, IfNoneMatch }) => ({ IfMatch, IfNoneMatch }));
  const other = `"${md5(Buffer.from('someone else'))}"`;

  it('writes where nothing is when the copy it wrote before is gone (If-Match answered NoSuchKey)', async () => {
    const data = Buffer.from('v2');
    firstPutRefused(data, s3Error('NoSuchKey', 404));

    await copyObject(clients, request(data, { previousDestinationEtag: 'abc' }));

    expect(conditions()).toEqual([
      { IfMatch: '"abc"', IfNoneMatch: undefined },
      { IfMatch: undefined, IfNoneMatch: '*' },
    ]);
  });

  it('does not try again when a write where nothing was answered NoSuchKey', async () => {
    const data = Buffer.from('new');
    firstPutRefused(data, s3Error('NoSuchKey', 404));

    await expect(copyObject(clients, request(data))).rejects.toThrow(/NoSuchKey/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('does not fall back to a write where nothing is after any other failure of an If-Match write', async () => {
    const data = Buffer.from('v2');
    firstPutRefused(data, s3Error('InternalError', 500));

    const copy = copyObject(clients, request(data, { previousDestinationEtag: 'abc' }));

    await expect(copy).rejects.toThrow(/PUT .* failed/);
    expect(conditions()).toEqual([{ IfMatch: '"abc"', IfNoneMatch: undefined }]);
  });

  it('does not try again after a failure that is not a refused condition, even for a mirror job', async () => {
    const data = Buffer.from('mirror');
    firstPutRefused(data, s3Error('InternalError', 500));

    await expect(copyObject(clients, request(data, { overwrite: true }))).rejects.toThrow(/PUT .* failed/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('leaves an occupied destination after one refused write when the job does not mirror', async () => {
    const data = Buffer.from('x');
    firstPutRefused(data, s3Error('PreconditionFailed', 412));
    occupiedBy(other, 1);

    await expect(copyObject(clients, request(data))).rejects.toThrow(/left untouched/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('replaces, for a mirror job, exactly the object it found (If-Match on its ETag)', async () => {
    const data = Buffer.from('mirror');
    firstPutRefused(data, s3Error('PreconditionFailed', 412));
    occupiedBy(other, 12);

    const result = await copyObject(clients, request(data, { overwrite: true }));

    expect(result.adopted).toBeUndefined();
    expect(conditions()[1]).toEqual({ IfMatch: other, IfNoneMatch: undefined });
  });

  it('replaces, for a mirror job, whatever is there when the destination cannot be read', async () => {
    const data = Buffer.from('mirror');
    firstPutRefused(data, s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).rejects(s3Error('AccessDenied', 403));

    await copyObject(clients, request(data, { overwrite: true }));

    expect(conditions()).toEqual([
      { IfMatch: undefined, IfNoneMatch: '*' },
      { IfMatch: undefined, IfNoneMatch: undefined },
    ]);
  });

  it('replaces, for a mirror job, whatever is there when the destination answers without a length', async () => {
    const data = Buffer.from('mirror');
    firstPutRefused(data, s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).resolves({ ETag: other });

    await copyObject(clients, request(data, { overwrite: true }));

    expect(conditions()[1]).toEqual({ IfMatch: undefined, IfNoneMatch: undefined });
  });

  it('tries a second condition once only: a mirror write refused twice fails', async () => {
    const data = Buffer.from('mirror');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock
      .on(PutObjectCommand)
      .rejectsOnce(s3Error('PreconditionFailed', 412))
      .rejectsOnce(s3Error('PreconditionFailed', 412))
      .resolves({ ETag: `"${md5(data)}"` });
    occupiedBy(other, 12);

    await expect(copyObject(clients, request(data, { overwrite: true }))).rejects.toThrow(/left untouched/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 2);
  });

  it('leaves the destination untouched when it cannot be read after a refused write', async () => {
    const data = Buffer.from('x');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).rejects(s3Error('InternalError', 500));
    const since = new Date(Date.now() - 60_000).toISOString();

    const plain = copyObject(clients, request(data));
    const interrupted = copyObject(
      clients,
      request(data, { interruptedWrite: { since, sizes: [1] } as CopyRequest['interruptedWrite'] }),
    );

    await expect(plain).rejects.toThrow(/left untouched/);
    await expect(interrupted).rejects.toThrow(/left untouched/);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 2);
  });

  describe('when an interrupted run of the job announced the key', () => {
    const data = Buffer.from('from AccountA');
    const intentAt = Date.now() - 60_000;
    const interruptedWrite = (sizes: number[]) =>
      ({ since: new Date(intentAt).toISOString(), sizes }) as CopyRequest['interruptedWrite'];

    beforeEach(() => {
      firstPutRefused(data, s3Error('PreconditionFailed', 412));
    });

    it.each([
      ['after the intent', 10_000],
      ['within the clock allowance before it', -4_000],
      ['exactly the clock allowance before it', -5_000],
    ])('replaces exactly an object of an announced size written %s', async (_when, offset) => {
      occupiedBy(other, 13, { LastModified: new Date(intentAt + offset) });

      await copyObject(clients, request(data, { interruptedWrite: interruptedWrite([2, 13]) }));

      expect(conditions()[1]).toEqual({ IfMatch: other, IfNoneMatch: undefined });
    });

    it.each([
      ['written before the intent, beyond the clock allowance', 13, -5_001],
      ['of a size no run announced', 12, 10_000],
      ['with no LastModified', 13, undefined],
    ])('leaves an object %s untouched', async (_what, size, offset) => {
      occupiedBy(other, size, {
        LastModified: offset === undefined ? undefined : new Date(intentAt + offset),
      });

      const copy = copyObject(clients, request(data, { interruptedWrite: interruptedWrite([13]) }));

      await expect(copy).rejects.toThrow(/left untouched/);
      expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    });
  });

  it('adopts neither an object of another size nor an SSE-KMS one, whatever their ETag', async () => {
    const data = Buffer.from('same bytes');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    occupiedBy(`"${md5(data)}"`, data.length + 1);
    const otherSize = copyObject(clients, request(data));
    await expect(otherSize).rejects.toThrow(/left untouched/);

    occupiedBy(`"${md5(data)}"`, data.length, { ServerSideEncryption: 'aws:kms' });
    const kms = copyObject(clients, request(data));

    await expect(kms).rejects.toThrow(/left untouched/);
  });
});

describe('copyObject explains a failed write', () => {
  beforeEach(() => s3Mock.reset());

  const failingPut = async (error: Error) => {
    const data = Buffer.from('x');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).rejects(error);
    return copyObject(clients, request(data)).then(
      () => expect.fail('the copy succeeded'),
      (failure: unknown) => failure as ObjectCopyError,
    );
  };

  it.each([
    ['PreconditionFailed', 400],
    ['SomethingElse', 412],
  ])(
    'takes a refused condition (%s, %i) for an occupied key, which a later run will not overwrite',
    async (name, status) => {
      s3Mock.on(HeadObjectCommand).resolves({ ETag: '"0123456789abcdef0123456789abcdef"', ContentLength: 9 });

      const failure = await failingPut(s3Error(name, status));

      expect(failure.message).toMatch(/did not write, so it was left untouched/);
      expect(failure.retryable).toBe(false);
    },
  );

  it.each([
    ['ConditionalRequestConflict', 409],
    ['ConditionalRequestConflict', 400],
    ['Conflict', 409],
  ])('retries next run a key written by someone else during the copy (%s, %i)', async (name, status) => {
    const failure = await failingPut(s3Error(name, status));

    expect(failure).toBeInstanceOf(ObjectCopyError);
    expect(failure.message).toMatch(/written by someone else during the copy; retrying next run/);
    expect(failure.retryable).toBe(true);
  });

  it.each(['BadDigest', 'InvalidDigest'])(
    'reports bytes S3 refused as not matching their digest (%s)',
    async (name) => {
      const failure = await failingPut(s3Error(name, 400));

      expect(failure).toBeInstanceOf(IntegrityError);
      expect(failure.message).toMatch(/S3 refused the bytes as not matching their digest/);
    },
  );

  it.each([
    ['AccessDenied', 400],
    ['Forbidden', 403],
  ])('names s3:PutObject when the write is denied (%s, %i), and does not retry', async (name, status) => {
    const failure = await failingPut(s3Error(name, status));

    expect(failure.message).toMatch(/PUT s3:\/\/dst\/.* was denied: this identity needs s3:PutObject/);
    expect(failure.retryable).toBe(false);
  });

  it('passes any other failure on as retryable, with its message', async () => {
    const failure = await failingPut(s3Error('SlowDown', 503));

    expect(failure).toBeInstanceOf(ObjectCopyError);
    expect(failure.message).toMatch(/^PUT s3:\/\/dst\/copy\/dir\/file name\+1%\.txt failed: SlowDown$/);
    expect(failure.retryable).toBe(true);
  });
});

describe('copyObject at the deadline', () => {
  beforeEach(() => s3Mock.reset());

  it('aborts a single PutObject in flight when the deadline comes, and leaves the key to the next run', async () => {
    const data = Buffer.from('small');
    const deadline = new AbortController();
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).callsFake(async () => {
      deadline.abort();
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { ETag: `"${md5(data)}"` };
    });

    const failure = await copyObject(clients, request(data), { signal: deadline.signal }).then(
      () => expect.fail('the copy was not aborted'),
      (error: unknown) => error as ObjectCopyError,
    );

    expect(failure.message).toMatch(/upload aborted at the deadline; the next run copies it/);
    expect(failure.retryable).toBe(false);
  });
});

describe('copyObject checks what it writes', () => {
  beforeEach(() => s3Mock.reset());

  it('asks the source for its checksums on a GET of the whole object', async () => {
    const data = Buffer.from('hello');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    await copyObject(clients, request(data));

    const get = s3Mock.commandCalls(GetObjectCommand)[0]?.args[0].input;
    expect(get?.ChecksumMode).toBe('ENABLED');
    expect(get?.Range).toBeUndefined();
  });

  it.each([
    ['ChecksumCRC32C', 'AAAAAA=='],
    ['ChecksumSHA256', 'c2hhMjU2'],
    ['ChecksumSHA1', 'c2hhMQ=='],
  ] as const)('states the source %s on the PutObject when it is its only checksum', async (name, value) => {
    const data = Buffer.from('checked');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data), [name]: value }));
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    await copyObject(clients, request(data));

    expect(s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input[name]).toBe(value);
  });

  it('states only one checksum, CRC32 first, and none that is not of the whole object', async () => {
    const data = Buffer.from('checked');
    const all = {
      ChecksumCRC32: 'Y3JjMzI=',
      ChecksumCRC32C: 'AAAAAA==',
      ChecksumSHA1: 'c2hhMQ==',
      ChecksumSHA256: 'c2hh',
    };
    s3Mock
      .on(GetObjectCommand)
      .callsFakeOnce(() => ({ Body: body(data), ...all }))
      .callsFakeOnce(() => ({ Body: body(data), ChecksumCRC32: 'Y3JjMzI=-3' }))
      .callsFakeOnce(() => ({ Body: body(data), ChecksumCRC32: 'Y3JjMzI=', ChecksumType: 'COMPOSITE' }));
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    for (let copy = 0; copy < 3; copy += 1) await copyObject(clients, request(data));

    const stated = s3Mock.commandCalls(PutObjectCommand).map(({ args: [{ input }] }) => ({
      crc32: input.ChecksumCRC32,
      crc32c: input.ChecksumCRC32C,
      sha1: input.ChecksumSHA1,
      sha256: input.ChecksumSHA256,
    }));
    const none = { crc32: undefined, crc32c: undefined, sha1: undefined, sha256: undefined };
    expect(stated).toEqual([{ ...none, crc32: 'Y3JjMzI=' }, none, none]);
  });

  it('trusts the SDK checksum, not the ETag, of a PutObject into an SSE-KMS destination', async () => {
    const data = Buffer.from('into kms');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock
      .on(PutObjectCommand)
      .resolves({ ETag: '"0123456789abcdef0123456789abcdef"', ServerSideEncryption: 'aws:kms' });

    const result = await copyObject(clients, request(data));

    expect(result).toMatchObject({
      destinationEtag: '0123456789abcdef0123456789abcdef',
      verifiedBy: 'sdk-checksum',
    });
  });

  it('writes an object smaller than a large part size chosen by the job as one PutObject', async () => {
    const data = Buffer.alloc(9 * 1024 * 1024, 5);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    await copyObject(clients, request(data), { partSize: 16 * 1024 * 1024 });

    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    expect(s3Mock).not.toHaveReceivedCommand(CreateMultipartUploadCommand);
  });
});

describe('copyObject ends a multipart upload it cannot complete', () => {
  const partSize = MIN_PART_SIZE;
  const data = Buffer.alloc(partSize + 1024, 4);
  const partMd5 = (part: Buffer) => createHash('md5').update(part).digest();
  const compositeOfData = `${md5(Buffer.concat([partMd5(data.subarray(0, partSize)), partMd5(data.subarray(partSize))]))}-2`;
  const records = (): UploadRecords & { saved: Omit<MultipartUploadRecord, 'runId'>[] } => {
    const saved: Omit<MultipartUploadRecord, 'runId'>[] = [];
    return {
      saved,
      save: vi.fn(async (record) => {
        saved.push(structuredClone(record));
      }),
      forget: vi.fn(async () => {}),
    };
  };
  const aborted = (name = 'AbortError') => Object.assign(new Error('aborted'), { name });

  beforeEach(() => {
    s3Mock.reset();
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up' });
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
  });

  it('aborts and forgets an upload whose part failed with no deadline, though a part is stored', async () => {
    const uploads = records();
    s3Mock.on(UploadPartCommand).callsFake(async (input) => {
      if (input.PartNumber === 1) return { ETag: `"${md5(input.Body as Buffer)}"` };
      throw s3Error('InternalError', 500);
    });

    const copy = copyObject(clients, request(data), { partSize, uploads });

    await expect(copy).rejects.toThrow(/PUT s3:\/\/dst\/.* failed/);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, {
      Bucket: 'dst',
      Key: 'copy/dir/file name+1%.txt',
      UploadId: 'up',
    });
    expect(uploads.forget).toHaveBeenCalledWith('dir/file name+1%.txt');
    expect(uploads.saved.every((record) => record.resume === undefined)).toBe(true);
  });

  it('aborts an upload cut by the deadline when there is nowhere to keep it', async () => {
    const deadline = new AbortController();
    s3Mock.on(UploadPartCommand).callsFake(async (input) => {
      if (input.PartNumber === 1) return { ETag: `"${md5(input.Body as Buffer)}"` };
      deadline.abort();
      throw aborted();
    });

    const copy = copyObject(clients, request(data), { partSize, signal: deadline.signal });

    await expect(copy).rejects.toThrow(/upload aborted at the deadline/);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'up' });
  });

  it('aborts and forgets an upload the deadline cut before any part was stored', async () => {
    const deadline = new AbortController();
    const uploads = records();
    s3Mock.on(UploadPartCommand).callsFake(async () => {
      deadline.abort();
      throw aborted();
    });

    const copy = copyObject(clients, request(data), { partSize, uploads, signal: deadline.signal });

    await expect(copy).rejects.toThrow(/upload aborted at the deadline/);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'up' });
    expect(uploads.forget).toHaveBeenCalledWith('dir/file name+1%.txt');
  });

  it('reports any failure of a request the deadline cut as the deadline, not to be retried now', async () => {
    const deadline = new AbortController();
    s3Mock.on(UploadPartCommand).callsFake(async () => {
      deadline.abort();
      throw aborted('TimeoutError');
    });

    const failure = await copyObject(clients, request(data), { partSize, signal: deadline.signal }).then(
      () => expect.fail('the copy was not cut'),
      (error: unknown) => error as ObjectCopyError,
    );

    expect(failure.message).toMatch(/upload aborted at the deadline/);
    expect(failure.retryable).toBe(false);
  });

  it('keeps the record of an upload whose creation failed, for the next run to find, and aborts nothing', async () => {
    const uploads = records();
    s3Mock.on(CreateMultipartUploadCommand).rejects(s3Error('InternalError', 500));

    await expect(copyObject(clients, request(data), { partSize, uploads })).rejects.toThrow(/failed/);
    expect(uploads.saved.map((record) => record.uploadId)).toEqual(['']);
    expect(uploads.forget).not.toHaveBeenCalled();
    expect(s3Mock).not.toHaveReceivedCommand(AbortMultipartUploadCommand);
  });

  it('sends no part when CreateMultipartUpload gives no upload id', async () => {
    s3Mock.on(CreateMultipartUploadCommand).resolves({});

    await expect(copyObject(clients, request(data), { partSize })).rejects.toThrow(/returned no UploadId/);
    expect(s3Mock).not.toHaveReceivedCommand(UploadPartCommand);
  });

  it('aborts its upload and leaves the key when completing it is refused for an object it did not write', async () => {
    const uploads = records();
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock
      .on(HeadObjectCommand)
      .resolves({ ETag: `"${md5(Buffer.from('other'))}-2"`, ContentLength: data.length });

    const copy = copyObject(clients, request(data), { partSize, uploads });

    await expect(copy).rejects.toThrow(/left untouched/);
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'up' });
    expect(uploads.forget).toHaveBeenCalledWith('dir/file name+1%.txt');
  });

  it('adopts, and aborts its own upload, when the key already holds the parts it uploaded', async () => {
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${compositeOfData}"`, ContentLength: data.length });

    const result = await copyObject(clients, request(data), { partSize });

    expect(result).toMatchObject({ adopted: true, destinationEtag: compositeOfData, verifiedBy: 'etag-md5' });
    expect(s3Mock).toHaveReceivedCommandWith(AbortMultipartUploadCommand, { UploadId: 'up' });
  });

  it('copies an object of exactly two parts in two parts', async () => {
    const even = Buffer.alloc(partSize * 2, 6);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(even) }));
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-2"' });

    await copyObject(clients, request(even), { partSize });

    expect(s3Mock).toHaveReceivedCommandTimes(UploadPartCommand, 2);
    expect(s3Mock).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 1);
  });

  it('copies an object of exactly one part size as a multipart upload of that one part, not a PutObject', async () => {
    // Arrange
    const one = Buffer.alloc(partSize, 6);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(one) }));
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-1"' });
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(one)}"` });

    // Act
    await copyObject(clients, request(one), { partSize });

    // Assert
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
    expect(s3Mock).toHaveReceivedCommandTimes(UploadPartCommand, 1);
    expect(s3Mock).toHaveReceivedCommandWith(UploadPartCommand, { PartNumber: 1, ContentLength: partSize });
    expect(s3Mock).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 1);
  });

  it('trusts the part checksums, not the ETag, of a multipart upload into an SSE-KMS destination', async () => {
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"0123456789abcdef0123456789abcdef"' });
    s3Mock
      .on(CompleteMultipartUploadCommand)
      .resolves({ ETag: '"fedcba9876543210fedcba9876543210-2"', ServerSideEncryption: 'aws:kms' });

    const result = await copyObject(clients, request(data), { partSize });

    expect(result).toMatchObject({
      destinationEtag: 'fedcba9876543210fedcba9876543210-2',
      verifiedBy: 'sdk-checksum',
    });
  });
});

describe('copyObject sends each part the MD5 of its own bytes', () => {
  const partSize = MIN_PART_SIZE;
  const composite = (parts: Buffer[]) =>
    `"${md5(Buffer.concat(parts.map((part) => createHash('md5').update(part).digest())))}-${parts.length}"`;
  /** The source's parts: HeadObject with PartNumber answers each one's size. */
  const sourceParts = (sizes: number[], partsCount?: number) =>
    s3Mock.on(HeadObjectCommand).callsFake(async (input) => ({
      ContentLength: sizes[(input.PartNumber ?? 1) - 1],
      PartsCount: partsCount,
    }));
  const sentParts = () => s3Mock.commandCalls(UploadPartCommand).map((call) => call.args[0].input);
  /**
   * Per part number, the MD5 (base64) of the body as it was sent: part buffers are reused once a part
   * settles, so the call record's bodies hold later bytes by the time a test reads them.
   */
  const sentBodyMd5s = new Map<number, string>();

  beforeEach(() => {
    s3Mock.reset();
    sentBodyMd5s.clear();
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up' });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => {
      const sentMd5 = createHash('md5').update(input.Body as Buffer);
      sentBodyMd5s.set(input.PartNumber ?? 0, sentMd5.copy().digest('base64'));
      return { ETag: `"${sentMd5.digest('hex')}"` };
    });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-3"' });
  });

  it('copies a multipart source over 8 MiB in its own parts unless a part size is set, and a smaller one in one PUT', async () => {
    const MiB = 1024 * 1024;
    const big = [Buffer.alloc(6 * MiB, 1), Buffer.alloc(6 * MiB, 2)];
    sourceParts([6 * MiB, 6 * MiB], 2);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(Buffer.concat(big)) }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: composite(big) });

    await copyObject(clients, request(Buffer.concat(big), { etag: composite(big) }));

    expect(sentParts().map((part) => part.ContentLength)).toEqual([6 * MiB, 6 * MiB]);

    s3Mock.resetHistory();
    const small = [Buffer.alloc(5 * MiB, 3), Buffer.alloc(MiB, 4)];
    sourceParts([5 * MiB, MiB], 2);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(Buffer.concat(small)) }));
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(Buffer.concat(small))}"` });

    await copyObject(clients, request(Buffer.concat(small), { etag: composite(small) }));

    expect(sentParts()).toHaveLength(0);
    expect(s3Mock.commandCalls(PutObjectCommand)).toHaveLength(1);
  });

  it('copies a multipart source of exactly 8 MiB as one 8 MiB part: only a larger one keeps its own parts', async () => {
    // Arrange: PART_SIZE (8 MiB) bytes, uploaded to the source as parts of 5 MiB and 3 MiB.
    const parts = [Buffer.alloc(MIN_PART_SIZE, 1), Buffer.alloc(PART_SIZE - MIN_PART_SIZE, 2)];
    const data = Buffer.concat(parts);
    sourceParts([MIN_PART_SIZE, PART_SIZE - MIN_PART_SIZE], 2);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${md5(data)}"` });

    // Act
    await copyObject(clients, request(data, { etag: composite(parts) }));

    // Assert
    expect(sentParts().map((part) => part.ContentLength)).toEqual([PART_SIZE]);
    expect(s3Mock).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it("reuses the read's MD5 of each source part of the upload's layout, hashing no byte twice", async () => {
    // Prepare: the source's parts are the upload's parts; each holds other bytes.
    const data = Buffer.concat([Buffer.alloc(partSize, 1), Buffer.alloc(partSize, 2), Buffer.alloc(4096, 3)]);
    const parts = [
      data.subarray(0, partSize),
      data.subarray(partSize, 2 * partSize),
      data.subarray(2 * partSize),
    ];
    sourceParts([partSize, partSize, 4096], 3);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    const copied = request(data, { etag: composite(parts) });
    md5Hashed.bytes = 0;

    // Act
    await copyObject(clients, copied, { partSize });
    const hashed = md5Hashed.bytes;

    // Assess: the read hashes every byte once; the parts and ETags add only digests of digests.
    expect(sentParts().map((part) => part.ContentMD5)).toEqual(
      parts.map((part) => createHash('md5').update(part).digest('base64')),
    );
    expect(hashed - data.length).toBeLessThan(1024);
  });

  it("hashes each part itself when the source's parts do not line up with the upload's", async () => {
    // Prepare: source parts of P-1, P and P+1 bytes; the upload's parts are P each.
    const data = Buffer.alloc(3 * partSize, Buffer.from(Array.from({ length: 251 }, (_, i) => i)));
    const sizes = [partSize - 1, partSize, partSize + 1];
    const parts = [
      data.subarray(0, sizes[0]),
      data.subarray(sizes[0], 2 * partSize - 1),
      data.subarray(2 * partSize - 1),
    ];
    sourceParts(sizes, 3);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));

    // Act
    await copyObject(clients, request(data, { etag: composite(parts) }), { partSize });

    // Assess
    const sent = sentParts();
    expect(sent).toHaveLength(3);
    for (const part of sent) expect(part.ContentMD5).toBe(sentBodyMd5s.get(part.PartNumber ?? 0));
  });
});

describe('copyObject compares the stored ETag only with what it can be compared with', () => {
  const partSize = MIN_PART_SIZE;
  const data = Buffer.alloc(partSize + 1024, 8);
  const partMd5 = (part: Buffer) => createHash('md5').update(part).digest();
  const otherEtag = `${md5(Buffer.from('other bytes'))}`;
  const completedAs = (ETag: string, extra: Record<string, unknown> = {}) =>
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: `"${ETag}"`, ...extra });

  beforeEach(() => {
    s3Mock.reset();
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up' });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => ({ ETag: `"${md5(input.Body as Buffer)}"` }));
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
  });

  it('states the exact ETags when a single PutObject stored other bytes', async () => {
    const small = Buffer.from('hello');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(small) }));
    s3Mock.on(PutObjectCommand).resolves({ ETag: `"${otherEtag}"` });

    const copy = copyObject(clients, request(small));

    await expect(copy).rejects.toThrow(
      new IntegrityError(
        `s3://dst/copy/dir/file name+1%.txt: stored ETag ${otherEtag} does not match the bytes sent (${md5(small)})`,
      ),
    );
  });

  it('reports no ETag as an empty one, checked by the SDK, for a PutObject and a multipart upload', async () => {
    const small = Buffer.from('hello');
    s3Mock
      .on(GetObjectCommand)
      .callsFakeOnce(() => ({ Body: body(small) }))
      .callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).resolves({});
    s3Mock.on(CompleteMultipartUploadCommand).resolves({});

    const single = await copyObject(clients, request(small));
    const multipart = await copyObject(clients, request(data), { partSize });

    expect(single).toMatchObject({ destinationEtag: '', verifiedBy: 'sdk-checksum' });
    expect(multipart).toMatchObject({ destinationEtag: '', verifiedBy: 'sdk-checksum' });
  });

  it('refuses a multipart ETag of any part count that is not the one of the parts sent', async () => {
    completedAs(`${otherEtag}-12`);

    const copy = copyObject(clients, request(data), { partSize });

    await expect(copy).rejects.toThrow(/stored ETag .*-12 does not match the bytes sent/);
  });

  it.each([`x${'0'.repeat(32)}-2`, `${'0'.repeat(32)}-2x`])(
    'does not compare a stored ETag that is not a multipart MD5 ETag (%s)',
    async (etag) => {
      completedAs(etag);

      const result = await copyObject(clients, request(data), { partSize });

      expect(result.destinationEtag).toBe(etag);
    },
  );

  it('trusts the part checksums of an upload into an SSE-KMS (DSSE) destination, not its ETag', async () => {
    completedAs(`${otherEtag}-2`, { ServerSideEncryption: 'aws:kms:dsse' });

    const result = await copyObject(clients, request(data), { partSize });

    expect(result).toMatchObject({ destinationEtag: `${otherEtag}-2`, verifiedBy: 'sdk-checksum' });
  });

  it('compares the ETag of an upload into an SSE-S3 destination', async () => {
    completedAs(`${otherEtag}-2`, { ServerSideEncryption: 'AES256' });

    const copy = copyObject(clients, request(data), { partSize });

    await expect(copy).rejects.toThrow(IntegrityError);
  });

  it.each([`"not-an-md5"`, `"x${'0'.repeat(32)}"`, `"${'0'.repeat(32)}x"`])(
    'does not compare the ETag of a continued upload whose stored part has the ETag %s',
    async (partEtag) => {
      // Prepare: part 1 was stored by an earlier run, under an ETag that is not its MD5 (SSE-C).
      const cutUpload: MultipartUploadRecord = {
        key: 'dir/file name+1%.txt',
        destinationKey: 'copy/dir/file name+1%.txt',
        uploadId: 'cut',
        runId: 'earlier',
        startedAt: new Date().toISOString(),
        sourceEtag: `"${md5(data)}"`,
        size: data.length,
        partSize,
        resume: {
          completedParts: 1,
          readStart: 0,
          partMd5s: partMd5(data.subarray(0, partSize)),
          partEtags: [partEtag],
          cutAt: new Date().toISOString(),
        },
      };
      s3Mock.on(ListPartsCommand).resolves({ Parts: [{ PartNumber: 1, ETag: partEtag, Size: partSize }] });
      completedAs(`${otherEtag}-2`);

      // Act
      const result = await copyObject(clients, request(data, { cutUpload }), {
        partSize,
        uploads: { save: async () => {}, forget: async () => {} },
      });

      // Assess
      expect(s3Mock).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, { UploadId: 'cut' });
      expect(result).toMatchObject({ destinationEtag: `${otherEtag}-2`, verifiedBy: 'sdk-checksum' });
    },
  );

  it('adopts an identical SSE-S3 object, but not an SSE-KMS (DSSE) one', async () => {
    const small = Buffer.from('same bytes');
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(small) }));
    s3Mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const found = (ServerSideEncryption: 'AES256' | 'aws:kms:dsse') =>
      s3Mock
        .on(HeadObjectCommand)
        .resolves({ ETag: `"${md5(small)}"`, ContentLength: small.length, ServerSideEncryption });

    found('AES256');
    const sseS3 = await copyObject(clients, request(small));
    found('aws:kms:dsse');
    const dsse = copyObject(clients, request(small));

    expect(sseS3.adopted).toBe(true);
    await expect(dsse).rejects.toThrow(/left untouched/);
  });

  it('adopts nothing when a part is refused on a condition before the parts were all sent', async () => {
    s3Mock.on(UploadPartCommand).rejects(s3Error('PreconditionFailed', 412));
    s3Mock.on(HeadObjectCommand).resolves({ ETag: `"${otherEtag}-2"`, ContentLength: data.length });

    const copy = copyObject(clients, request(data), { partSize });

    await expect(copy).rejects.toThrow(/left untouched/);
  });
});

describe('copyObject keeps the cause of a failure', () => {
  beforeEach(() => s3Mock.reset());

  it.each([
    ['ConditionalRequestConflict', 409],
    ['BadDigest', 400],
    ['SlowDown', 503],
  ])('keeps the S3 error of a refused write (%s) as the cause', async (name, status) => {
    const data = Buffer.from('x');
    const refusal = s3Error(name, status);
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(PutObjectCommand).rejects(refusal);

    const failure = await copyObject(clients, request(data)).then(
      () => expect.fail('the copy succeeded'),
      (error: unknown) => error as Error,
    );

    expect(failure.cause).toBe(refusal);
  });

  it('says the next run continues a cut upload, not to be retried now, and keeps what cut it', async () => {
    const partSize = MIN_PART_SIZE;
    const data = Buffer.alloc(partSize + 1024, 2);
    const deadline = new AbortController();
    const cutBy = Object.assign(new Error('aborted'), { name: 'AbortError' });
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up' });
    s3Mock.on(UploadPartCommand).callsFake(async (input) => {
      if (input.PartNumber === 1) return { ETag: `"${md5(input.Body as Buffer)}"` };
      deadline.abort();
      throw cutBy;
    });
    const uploads = { save: async () => {}, forget: async () => {} };

    const failure = await copyObject(clients, request(data), {
      partSize,
      uploads,
      signal: deadline.signal,
    }).then(
      () => expect.fail('the copy was not cut'),
      (error: unknown) => error as ObjectCopyError,
    );

    expect(failure.message).toBe(
      's3://dst/copy/dir/file name+1%.txt: cut at the deadline after 1 of 2 parts; the next run continues the upload',
    );
    expect(failure.retryable).toBe(false);
    expect(failure.cause).toBe(cutBy);
  });

  it('reports a request the deadline cut as aborted at the deadline, caused by what the request threw', async () => {
    const partSize = MIN_PART_SIZE;
    const data = Buffer.alloc(partSize + 1024, 2);
    const deadline = new AbortController();
    const timeout = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: body(data) }));
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up' });
    s3Mock.on(AbortMultipartUploadCommand).resolves({});
    s3Mock.on(UploadPartCommand).callsFake(async () => {
      deadline.abort();
      throw timeout;
    });

    const failure = await copyObject(clients, request(data), { partSize, signal: deadline.signal }).then(
      () => expect.fail('the copy was not cut'),
      (error: unknown) => error as ObjectCopyError,
    );

    const reason = failure.cause as Error;
    expect(reason).toMatchObject({ name: 'AbortError', message: 'aborted at the deadline' });
    expect(reason.cause).toBe(timeout);
  });
});

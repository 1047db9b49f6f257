import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
  type UploadPartCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { PartPlan } from '../../functions/core/copy/part-plan.js';
import {
  type PartsUpload,
  type UploadProgress,
  uploadParts,
} from '../../functions/core/copy/upload-parts.js';
import { IntegrityError } from '../../functions/core/errors.js';

const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };
/** The SDK's default: it sends a CRC32 with each part. */
const checksummingS3 = new S3Client({ region: 'us-east-1', credentials });
const plainS3 = new S3Client({
  region: 'us-east-1',
  credentials,
  requestChecksumCalculation: 'WHEN_REQUIRED',
});
const s3Mock = mockClient(S3Client);

const SIZE = 8;
const planOf = (partCount: number, queueSize = 4): PartPlan => ({ partSize: SIZE, partCount, queueSize });
const bytes = (length: number, seed = 1) =>
  Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) % 256));
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');
const newProgress = (): UploadProgress => ({
  contiguousParts: 0,
  tailMd5s: new Map(),
  partDigests: new Map(),
});

/** A body of these chunks. */
const from = (...chunks: Buffer[]): AsyncIterable<Buffer> =>
  (async function* () {
    yield* chunks;
  })();

/** The body as one-byte chunks, a turn of the event loop apart; `pulled` counts the chunks read. */
function trickle(data: Buffer) {
  const read = { pulled: 0 };
  async function* chunks() {
    for (const byte of data) {
      await nextTurn();
      read.pulled += 1;
      yield Buffer.from([byte]);
    }
  }
  return { body: chunks(), read };
}

function upload(overrides: Partial<PartsUpload> = {}): PartsUpload {
  return {
    s3: plainS3,
    create: { Bucket: 'destination', Key: 'big.bin' },
    condition: { IfNoneMatch: '*' },
    plan: planOf(2),
    body: from(bytes(2 * SIZE)),
    bodyStart: 0,
    onCreated: async () => {},
    progress: newProgress(),
    ...overrides,
  };
}

/**
 * Copies of the part bodies as each UploadPart is sent: the buffers are reused for later parts once a
 * part settles, so the call record's bodies hold later bytes by the time a test reads them.
 */
function sentBodies() {
  const bodies: Buffer[] = [];
  return {
    bodies,
    capture: (input: UploadPartCommandInput) => {
      bodies[(input.PartNumber ?? 1) - 1] = Buffer.from(input.Body as Buffer);
    },
  };
}

const partInputs = () =>
  s3Mock.commandCalls(UploadPartCommand).map((call) => call.args[0].input as UploadPartCommandInput);

describe('uploadParts: the parts of one multipart upload, then its completion', () => {
  beforeEach(() => {
    s3Mock.reset();
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => ({
      ETag: `"${md5(input.Body as Buffer)}"`,
      ChecksumCRC32: `crc-${input.PartNumber}`,
    }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"done-2"' });
  });

  it('asks for CRC32 checksums on the upload and each part when the client sends them, and completes with each part checksum', async () => {
    await uploadParts(upload({ s3: checksummingS3, body: from(bytes(2 * SIZE)) }));

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0]?.args[0].input.ChecksumAlgorithm).toBe(
      'CRC32',
    );
    expect(partInputs().map((part) => part.ChecksumAlgorithm)).toEqual(['CRC32', 'CRC32']);
    const completion = s3Mock.commandCalls(CompleteMultipartUploadCommand)[0]?.args[0].input;
    expect(completion?.MultipartUpload?.Parts?.map((part) => part.ChecksumCRC32)).toEqual(['crc-1', 'crc-2']);
  });

  it('asks for no checksum algorithm when the client sends checksums only where required', async () => {
    await uploadParts(upload({ s3: plainS3, body: from(bytes(2 * SIZE)) }));

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0]?.args[0].input).not.toHaveProperty(
      'ChecksumAlgorithm',
    );
    expect(partInputs().map((part) => part.ChecksumAlgorithm)).toEqual([undefined, undefined]);
  });

  it("passes the caller's abort signal to the create, every part and the completion", async () => {
    const { signal } = new AbortController();

    await uploadParts(upload({ signal, body: from(bytes(2 * SIZE)) }));

    const calls = [
      ...s3Mock.commandCalls(CreateMultipartUploadCommand),
      ...s3Mock.commandCalls(UploadPartCommand),
      ...s3Mock.commandCalls(CompleteMultipartUploadCommand),
    ];
    expect(calls).toHaveLength(4);
    for (const call of calls) expect((call.args as unknown[])[1]).toEqual({ abortSignal: signal });
  });

  it('keeps at most queueSize parts in flight and still sends every part', async () => {
    let inFlight = 0;
    let most = 0;
    const sent = sentBodies();
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      sent.capture(input);
      inFlight += 1;
      most = Math.max(most, inFlight);
      await nextTurn();
      inFlight -= 1;
      return { ETag: `"${md5(input.Body as Buffer)}"` };
    });
    const data = bytes(4 * SIZE);

    await uploadParts(upload({ plan: planOf(4, 1), body: from(data) }));

    expect(most).toBe(1);
    expect(partInputs().map((part) => part.PartNumber)).toEqual([1, 2, 3, 4]);
    expect(Buffer.concat(sent.bodies)).toEqual(data);
  });

  it('holds each part in a buffer of the part size, whatever the chunks (no joined copy kept alive)', async () => {
    const sent = sentBodies();
    const buffers: ArrayBufferLike[] = [];
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      sent.capture(input);
      buffers.push((input.Body as Buffer).buffer);
      return { ETag: '"e"' };
    });
    const data = bytes(3 * SIZE);
    // Chunks of 5 bytes straddle the 8-byte parts.
    const chunks = Array.from({ length: Math.ceil(data.length / 5) }, (_, i) =>
      data.subarray(i * 5, i * 5 + 5),
    );

    await uploadParts(upload({ plan: planOf(3), body: from(...chunks) }));

    expect(Buffer.concat(sent.bodies)).toEqual(data);
    expect(buffers).toHaveLength(3);
    for (const buffer of buffers) expect(buffer.byteLength).toBe(SIZE);
  });

  it('allocates at most queueSize + 1 part buffers however many parts, and sends every byte', async () => {
    const sent = sentBodies();
    const buffers = new Set<ArrayBufferLike>();
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      sent.capture(input);
      buffers.add((input.Body as Buffer).buffer);
      await nextTurn();
      return { ETag: `"${md5(input.Body as Buffer)}"` };
    });
    const data = bytes(20 * SIZE + 3);

    await uploadParts(upload({ plan: planOf(21, 4), body: from(data) }));

    expect(buffers.size).toBeLessThanOrEqual(4 + 1);
    expect(Buffer.concat(sent.bodies)).toEqual(data);
    const completion = s3Mock.commandCalls(CompleteMultipartUploadCommand)[0]?.args[0].input;
    expect(completion?.MultipartUpload?.Parts?.map((part) => part.ETag)).toEqual(
      Array.from({ length: 21 }, (_, i) => `"${md5(data.subarray(i * SIZE, (i + 1) * SIZE))}"`),
    );
  });

  it("never refills a part's buffer before its UploadPart has settled, even once another part failed", async () => {
    const refused = new Error('part refused');
    const changedWhileSent: number[] = [];
    s3Mock.on(UploadPartCommand).callsFake(async (input: UploadPartCommandInput) => {
      const body = input.Body as Buffer;
      const atSend = Buffer.from(body);
      // Parts settle out of order: part 3 fails first while parts 1, 2 and 4 are still being sent.
      for (let turn = 0; turn < (input.PartNumber === 3 ? 1 : 5); turn += 1) await nextTurn();
      if (!body.equals(atSend)) changedWhileSent.push(input.PartNumber ?? 0);
      if (input.PartNumber === 3) throw refused;
      return { ETag: `"${md5(body)}"` };
    });

    await expect(uploadParts(upload({ plan: planOf(8, 4), body: from(bytes(8 * SIZE)) }))).rejects.toBe(
      refused,
    );

    expect(partInputs().length).toBeGreaterThanOrEqual(4);
    expect(changedWhileSent).toEqual([]);
  });

  it('records a part S3 answered without an ETag with an empty one', async () => {
    s3Mock.on(UploadPartCommand).resolves({});
    const progress = newProgress();

    await uploadParts(upload({ plan: planOf(1), body: from(bytes(SIZE)), progress }));

    expect(progress.partDigests.get(1)).toEqual({ md5: Buffer.from(md5(bytes(SIZE)), 'hex'), etag: '' });
  });

  it('stops reading the body once a part has failed', async () => {
    const refused = new Error('part refused');
    s3Mock.on(UploadPartCommand).rejects(refused);
    const { body, read } = trickle(bytes(3 * SIZE));

    await expect(uploadParts(upload({ plan: planOf(3), body }))).rejects.toBe(refused);

    // Part 1 is formed from the first SIZE bytes; the failure is seen at the next chunk, not at part 2.
    expect(read.pulled).toBe(SIZE + 1);
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('sends no further part once one in flight has failed, even from the same chunk', async () => {
    const refused = new Error('part refused');
    s3Mock.on(UploadPartCommand).callsFake(async () => {
      await nextTurn();
      throw refused;
    });

    const failed = uploadParts(upload({ plan: planOf(3, 1), body: from(bytes(3 * SIZE)) }));

    await expect(failed).rejects.toBe(refused);
    expect(partInputs().map((part) => part.PartNumber)).toEqual([1]);
  });

  it('stops with the abort reason, before creating anything, when the signal is already aborted', async () => {
    const controller = new AbortController();
    const deadline = new Error('deadline');
    controller.abort(deadline);

    await expect(uploadParts(upload({ signal: controller.signal, body: from(bytes(SIZE)) }))).rejects.toBe(
      deadline,
    );

    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
  });

  it('refuses to complete an upload whose body ended before its last planned part', async () => {
    const progress = newProgress();

    const failed = uploadParts(upload({ plan: planOf(3), body: from(bytes(2 * SIZE)), progress }));

    await expect(failed).rejects.toThrow(IntegrityError);
    await expect(failed).rejects.toThrow(
      's3://destination/big.bin: 2 parts uploaded, 3 planned; not completed',
    );
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(progress).toMatchObject({ uploadId: 'upload-1', contiguousParts: 2 });
  });

  it.each([
    { planned: 3, case: 'in place of a missing part' },
    { planned: 2, case: 'besides every planned part' },
  ])('refuses to complete with an earlier part beyond the plan, $case', async ({ planned }) => {
    const failed = uploadParts(
      upload({
        plan: planOf(planned),
        body: from(bytes(2 * SIZE)),
        resume: { uploadId: 'earlier', parts: [{ PartNumber: 4, ETag: '"stray"' }] },
      }),
    );

    await expect(failed).rejects.toThrow(`3 parts uploaded, ${planned} planned; not completed`);
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it("refuses to continue an earlier run's upload whose part does not hold the bytes read again, naming the object", async () => {
    const earlier = bytes(SIZE, 2);

    const failed = uploadParts(
      upload({
        body: from(bytes(2 * SIZE)),
        resume: { uploadId: 'earlier', parts: [{ PartNumber: 1, ETag: `"${md5(earlier)}"` }] },
      }),
    );

    await expect(failed).rejects.toThrow(IntegrityError);
    await expect(failed).rejects.toThrow(
      's3://destination/big.bin: part 1 uploaded by an earlier run does not hold the bytes read again; the upload is not continued',
    );
    expect(partInputs()).toHaveLength(0);
  });

  it("lists each part's MD5: computed for the parts sent, the earlier run's ETag (or nothing) for the others", async () => {
    const progress = newProgress();
    const last = bytes(SIZE, 3);

    await uploadParts(
      upload({
        plan: planOf(3),
        body: from(last),
        bodyStart: 2 * SIZE,
        resume: { uploadId: 'earlier', parts: [{ PartNumber: 1, ETag: '"e1"' }, { PartNumber: 2 }] },
        progress,
      }),
    );

    expect(progress.partEtags).toEqual(['"e1"', '', md5(last)]);
    expect(partInputs().map((part) => part.PartNumber)).toEqual([3]);
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)[0]?.args[0].input).toMatchObject({
      UploadId: 'earlier',
      IfNoneMatch: '*',
    });
  });
});

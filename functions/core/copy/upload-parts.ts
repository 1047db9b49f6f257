/**
 * The resumable multipart upload: a body sent as the planned parts, each with its Content-MD5, in reused
 * buffers, then completed under the write's condition; `progress` says where it stands when it stops.
 */
import { createHash } from 'node:crypto';
import {
  type CompletedPart,
  CompleteMultipartUploadCommand,
  type CompleteMultipartUploadCommandOutput,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandInput,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { IntegrityError } from '../errors.js';
import { PartBuffers } from './part-buffers.js';
import type { PartPlan } from './part-plan.js';
import { RereadCheck } from './reread-check.js';

/** Where a multipart upload stands; read by the caller when the upload stops short. */
export interface UploadProgress {
  uploadId?: string;
  /** Parts 1..n are uploaded. */
  contiguousParts: number;
  /** Per part, the MD5 of its bytes from the last source-part boundary inside it (see `boundaryInside`). */
  tailMd5s: Map<number, Buffer>;
  /**
   * Per part stored, the MD5 of its bytes and the ETag S3 gave it: for parts this run sent, the Content-MD5
   * S3 checked them against; for parts an earlier run sent, what it recorded (and a read again confirms).
   */
  partDigests: Map<number, PartDigest>;
  /**
   * Once all parts are uploaded, in order: the MD5 (hex) of each part's bytes, computed here for the parts
   * this run sent and taken from S3's ETag for parts an earlier run sent (MD5s, unless the destination is
   * SSE-KMS encrypted: then they are not compared).
   */
  partEtags?: string[];
}

/** The MD5 of a stored part's bytes, and the ETag S3 gave the part. */
export interface PartDigest {
  md5: Buffer;
  etag: string;
}

/** One multipart upload to write, or to continue. */
export interface PartsUpload {
  s3: S3Client;
  /** Bucket, Key, content headers and metadata: the CreateMultipartUpload input. */
  create: CreateMultipartUploadCommandInput & { Bucket: string; Key: string };
  /** The write's condition (If-None-Match / If-Match), applied when the upload is completed. */
  condition: { IfMatch?: string; IfNoneMatch?: string };
  plan: PartPlan;
  /** The body, from object offset `bodyStart`; bytes before the first part to upload are skipped. */
  body: AsyncIterable<Buffer>;
  bodyStart: number;
  /**
   * An upload an earlier run started, with its parts 1..n in `parts`. The body starts at or before the end
   * of part n; the bytes it carries before that end are compared with what the parts hold (the MD5 the
   * earlier run recorded in `partDigests`, else the part's ETag as an MD5, or `tailMd5` for the part
   * `bodyStart` falls inside), so the continued object is one read.
   */
  resume?: {
    uploadId: string;
    parts: CompletedPart[];
    tailMd5?: Buffer;
    partDigests?: ReadonlyMap<number, PartDigest>;
  };
  /**
   * The MD5 of part `partNumber` when something upstream already hashed exactly those bytes (a multipart
   * source read whose parts are the upload's parts), so each byte is MD5-hashed once; undefined otherwise.
   */
  knownPartMd5?: (partNumber: number, length: number) => Buffer | undefined;
  /** The last source-part boundary strictly inside [start, end), if any (multipart sources). */
  boundaryInside?: (start: number, end: number) => number | undefined;
  signal?: AbortSignal;
  /**
   * Called before CreateMultipartUpload: a run killed between creating the upload and `onCreated` still
   * leaves a record (key and time) that lets the next run find the upload and abort it.
   */
  beforeCreate?: () => Promise<void>;
  /** Called once the upload exists and before its first part, so a run that dies can be cleaned up after. */
  onCreated: (uploadId: string) => Promise<void>;
  progress: UploadProgress;
}

/**
 * Uploads a body as the parts of `plan`, `plan.queueSize` at a time, each with its Content-MD5 (S3 refuses a part
 * whose bytes changed on the way), then completes the upload under the write's condition. Part memory is
 * (queueSize + 1) × partSize, by construction: the parts in flight and the one being filled, in buffers
 * reused once their UploadPart settles (`PartBuffers`).
 *
 * It never completes an upload whose body failed: the body (a VerifyStream) errors instead of ending when
 * the source read was wrong, and the last part is only formed from its last chunk. It never aborts either:
 * on failure `progress` says what exists, and the caller aborts it or keeps it to continue (the deadline).
 */
export async function uploadParts(upload: PartsUpload): Promise<CompleteMultipartUploadCommandOutput> {
  const { s3, create, plan, signal, progress } = upload;
  const { Bucket, Key } = create;
  const parts = new Map<number, CompletedPart>(
    (upload.resume?.parts ?? []).map((p) => [p.PartNumber ?? 0, p]),
  );
  progress.uploadId = upload.resume?.uploadId;
  progress.contiguousParts = contiguous(parts);
  for (const [number, digest] of upload.resume?.partDigests ?? []) progress.partDigests.set(number, digest);
  const withChecksums = (await s3.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
  const inFlight = new Set<Promise<void>>();
  const sentMd5s = new Map<number, string>();
  const buffers = new PartBuffers(plan.partSize);
  let failure: unknown;
  let nextPart = progress.contiguousParts + 1;

  const uploadId = async (): Promise<string> => {
    if (!progress.uploadId) {
      await upload.beforeCreate?.();
      const created = await s3.send(
        new CreateMultipartUploadCommand({
          ...create,
          // As lib-storage does: the SDK sends a CRC32 with each part, so the upload must expect one.
          ...(withChecksums && { ChecksumAlgorithm: 'CRC32' }),
        }),
        { abortSignal: signal },
      );
      if (!created.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      progress.uploadId = created.UploadId;
      await upload.onCreated(created.UploadId);
    }
    return progress.uploadId;
  };

  /** Sends the first `length` bytes of `buffer` as the next part; `buffer` goes back to the pool once sent. */
  const send = async (buffer: Buffer, length: number): Promise<void> => {
    while (inFlight.size >= plan.queueSize) await Promise.race(inFlight);
    if (failure) throw failure;
    const data = buffer.subarray(0, length);
    const PartNumber = nextPart;
    nextPart += 1;
    const partStart = (PartNumber - 1) * plan.partSize;
    const boundary = upload.boundaryInside?.(partStart, partStart + data.length);
    if (boundary !== undefined) {
      progress.tailMd5s.set(
        PartNumber,
        createHash('md5')
          .update(data.subarray(boundary - partStart))
          .digest(),
      );
    }
    const UploadId = await uploadId();
    const md5 = upload.knownPartMd5?.(PartNumber, data.length) ?? createHash('md5').update(data).digest();
    sentMd5s.set(PartNumber, md5.toString('hex'));
    const running = s3
      .send(
        new UploadPartCommand({
          Bucket,
          Key,
          UploadId,
          PartNumber,
          Body: data,
          ContentLength: data.length,
          ContentMD5: md5.toString('base64'),
          ...(withChecksums && { ChecksumAlgorithm: 'CRC32' }),
        }),
        { abortSignal: signal },
      )
      .then((result) => {
        progress.partDigests.set(PartNumber, { md5, etag: result.ETag ?? '' });
        parts.set(PartNumber, {
          PartNumber,
          ETag: result.ETag,
          ...(result.ChecksumCRC32 && { ChecksumCRC32: result.ChecksumCRC32 }),
        });
        progress.contiguousParts = contiguous(parts);
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => {
        // Settled either way: the SDK no longer writes the body (its retries are inside `send`).
        buffers.give(buffer);
        inFlight.delete(running);
      });
    inFlight.add(running);
  };

  try {
    const skipUntil = progress.contiguousParts * plan.partSize;
    const reread = new RereadCheck(
      upload.bodyStart,
      plan.partSize,
      (partNumber) =>
        progress.partDigests.get(partNumber)?.md5 ??
        // Stryker disable next-line StringLiteral: no ETag and any non-hex text both decode to an empty buffer, which no part's MD5 equals
        Buffer.from((parts.get(partNumber)?.ETag ?? '').replace(/"/g, ''), 'hex'),
      upload.resume?.tailMd5,
      `s3://${Bucket}/${Key}`,
    );
    let offset = upload.bodyStart;
    let part: Buffer | undefined;
    let filled = 0;
    for await (const chunk of upload.body) {
      if (failure) throw failure;
      signal?.throwIfAborted();
      let data = chunk;
      // Stryker disable next-line EqualityOperator: at offset === skipUntil nothing is skipped: an empty update
      if (offset < skipUntil) {
        const skipped = Math.min(data.length, skipUntil - offset);
        reread.update(data.subarray(0, skipped));
        offset += skipped;
        data = data.subarray(skipped);
      }
      offset += data.length;
      let at = 0;
      while (at < data.length) {
        // Filled in place: joining the chunks (Buffer.concat) held each part twice while it was joined.
        part ??= buffers.take();
        const copied = data.copy(part, filled, at);
        filled += copied;
        at += copied;
        if (filled === plan.partSize) {
          await send(part, filled);
          part = undefined;
          filled = 0;
        }
      }
    }
    if (part && filled > 0) await send(part, filled);
  } finally {
    await Promise.all(inFlight);
  }
  if (failure) throw failure;

  const completed = [...parts.values()].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  progress.partEtags = completed.map((part) => sentMd5s.get(part.PartNumber ?? 0) ?? part.ETag ?? '');
  if (completed.length !== plan.partCount || progress.contiguousParts !== plan.partCount) {
    throw new IntegrityError(
      `s3://${Bucket}/${Key}: ${completed.length} parts uploaded, ${plan.partCount} planned; not completed`,
    );
  }
  return s3.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key,
      UploadId: await uploadId(),
      MultipartUpload: { Parts: completed },
      ...upload.condition,
    }),
    { abortSignal: signal },
  );
}
/** The highest n such that parts 1..n are all done. */
function contiguous(parts: Map<number, CompletedPart>): number {
  let n = 0;
  while (parts.has(n + 1)) n += 1;
  return n;
}

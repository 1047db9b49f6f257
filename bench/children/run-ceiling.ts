/**
 * The ceiling: the raw SDK copying the same objects with nothing else: no listing, no state, no
 * conditions, no hashing. Reads with the assumed role, writes with the environment's keys.
 *
 * - objects up to SMALL_OBJECT_BYTES: one GetObject, one PutObject of the body;
 * - larger ones: one GetObject whose body is cut into PART_SIZE parts as it arrives, QUEUE_SIZE
 *   UploadParts in flight, then CompleteMultipartUpload: the sync's part size and parts in flight.
 *
 * `concurrency` objects at once, large or small. Two shapes that look simpler are no ceiling on moto: a
 * single streamed PutObject goes aws-chunked, which moto decodes at about 5 MB/s, and a ranged GET reads
 * the whole stored object for every range (about 10 MB/s on a 1 GiB object).
 *
 *   node run-ceiling.mjs <task.json>
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { PART_SIZE, QUEUE_SIZE } from '../../functions/core/copy/copy-object.js';
import { SMALL_OBJECT_BYTES } from '../../functions/core/run/sync-job.js';
import { assumedRoleS3, printResult, readTask, type SourceAccess } from './task.js';

interface CeilingTask extends SourceAccess {
  sourceBucket: string;
  sourcePrefix: string;
  destinationBucket: string;
  destinationPrefix: string;
  objects: { key: string; size: number }[];
  concurrency: number;
}

const task = readTask<CeilingTask>();
const source = await assumedRoleS3(task);
const destination = new S3Client({ forcePathStyle: true });
let bytes = 0;

async function read(key: string): Promise<AsyncIterable<Uint8Array>> {
  const object = await source.send(new GetObjectCommand({ Bucket: task.sourceBucket, Key: key }));
  return object.Body as AsyncIterable<Uint8Array>;
}

async function copySmall(key: string, destinationKey: string): Promise<void> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of await read(key)) chunks.push(chunk);
  await destination.send(
    new PutObjectCommand({
      Bucket: task.destinationBucket,
      Key: destinationKey,
      Body: Buffer.concat(chunks),
    }),
  );
}

/** One GET, cut into PART_SIZE parts as it arrives; at most QUEUE_SIZE UploadParts in flight. */
async function copyLarge(key: string, destinationKey: string): Promise<void> {
  const target = { Bucket: task.destinationBucket, Key: destinationKey };
  const { UploadId } = await destination.send(new CreateMultipartUploadCommand(target));
  const parts: { PartNumber: number; ETag: string | undefined }[] = [];
  const inFlight = new Set<Promise<void>>();
  const send = async (body: Buffer) => {
    while (inFlight.size >= QUEUE_SIZE) await Promise.race(inFlight);
    const PartNumber = parts.length + 1;
    parts.push({ PartNumber, ETag: undefined });
    const upload = destination
      .send(new UploadPartCommand({ ...target, UploadId, PartNumber, Body: body }))
      .then(({ ETag }) => {
        parts[PartNumber - 1] = { PartNumber, ETag };
      })
      .finally(() => inFlight.delete(upload));
    inFlight.add(upload);
  };
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const chunk of await read(key)) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= PART_SIZE) {
      const joined = Buffer.concat(pending);
      await send(joined.subarray(0, PART_SIZE));
      pending = [joined.subarray(PART_SIZE)];
      pendingBytes = joined.length - PART_SIZE;
    }
  }
  if (pendingBytes > 0 || parts.length === 0) await send(Buffer.concat(pending));
  await Promise.all(inFlight);
  await destination.send(
    new CompleteMultipartUploadCommand({ ...target, UploadId, MultipartUpload: { Parts: parts } }),
  );
}

async function forEach(count: number, width: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < count; index = next++) await task(index);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}

await forEach(task.objects.length, task.concurrency, async (index) => {
  const { key, size } = task.objects[index] as CeilingTask['objects'][number];
  const destinationKey = task.destinationPrefix + key.slice(task.sourcePrefix.length);
  if (size > SMALL_OBJECT_BYTES) await copyLarge(key, destinationKey);
  else await copySmall(key, destinationKey);
  bytes += size;
});
printResult({ copied: task.objects.length, bytes });

/**
 * The ceiling: the raw SDK copying the same objects with nothing else: no listing, no state, no
 * conditions, no hashing. Reads with the assumed role, writes with the environment's keys.
 *
 * - objects up to SMALL_OBJECT_BYTES: one GetObject, one PutObject of the body;
 * - larger ones: CreateMultipartUpload, then per PART_SIZE part a ranged GetObject and an UploadPart,
 *   QUEUE_SIZE parts in flight, then CompleteMultipartUpload: the sync's part size and parts in flight.
 *
 * `concurrency` objects at once, large or small. (A single streamed PutObject of a large object sends it
 * aws-chunked, which moto decodes at about 5 MB/s, so it would be no ceiling.)
 *
 *   node run-ceiling.mjs <task.json>
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client as S3,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { PART_SIZE, QUEUE_SIZE } from '../../functions/core/copy-object.js';
import { SMALL_OBJECT_BYTES } from '../../functions/core/sync-job.js';
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
const destination = new S3({ forcePathStyle: true });
let bytes = 0;

async function read(s3: S3Client, key: string, range?: string): Promise<Uint8Array> {
  const object = await s3.send(new GetObjectCommand({ Bucket: task.sourceBucket, Key: key, Range: range }));
  return (await object.Body?.transformToByteArray()) ?? new Uint8Array();
}

async function copySmall(key: string, destinationKey: string): Promise<void> {
  const body = await read(source, key);
  await destination.send(
    new PutObjectCommand({ Bucket: task.destinationBucket, Key: destinationKey, Body: body }),
  );
}

async function copyLarge(key: string, destinationKey: string, size: number): Promise<void> {
  const target = { Bucket: task.destinationBucket, Key: destinationKey };
  const { UploadId } = await destination.send(new CreateMultipartUploadCommand(target));
  const partCount = Math.ceil(size / PART_SIZE);
  const parts: { PartNumber: number; ETag: string | undefined }[] = [];
  await forEach(partCount, QUEUE_SIZE, async (index) => {
    const start = index * PART_SIZE;
    const end = Math.min(size, start + PART_SIZE) - 1;
    const body = await read(source, key, `bytes=${start}-${end}`);
    const { ETag } = await destination.send(
      new UploadPartCommand({ ...target, UploadId, PartNumber: index + 1, Body: body }),
    );
    parts[index] = { PartNumber: index + 1, ETag };
  });
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
  if (size > SMALL_OBJECT_BYTES) await copyLarge(key, destinationKey, size);
  else await copySmall(key, destinationKey);
  bytes += size;
});
printResult({ copied: task.objects.length, bytes });

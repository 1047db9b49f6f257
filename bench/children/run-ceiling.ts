/**
 * The ceiling: the raw SDK doing one GetObject and one PutObject per object (body streamed straight
 * through, length known), `concurrency` objects at once, and nothing else: no listing, no state, no
 * conditions, no hashing. Reads with the assumed role, writes with the environment's keys.
 *
 *   node run-ceiling.mjs <task.json>
 */
import type { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
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
let next = 0;
let bytes = 0;

async function worker(): Promise<void> {
  for (let index = next++; index < task.objects.length; index = next++) {
    const { key, size } = task.objects[index] as CeilingTask['objects'][number];
    const object = await source.send(new GetObjectCommand({ Bucket: task.sourceBucket, Key: key }));
    await destination.send(
      new PutObjectCommand({
        Bucket: task.destinationBucket,
        Key: task.destinationPrefix + key.slice(task.sourcePrefix.length),
        Body: object.Body as Readable,
        ContentLength: size,
      }),
    );
    bytes += size;
  }
}

await Promise.all(Array.from({ length: Math.min(task.concurrency, task.objects.length) }, worker));
printResult({ copied: task.objects.length, bytes });

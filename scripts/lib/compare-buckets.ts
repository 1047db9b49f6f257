/** What the demos check at their end: every source object under a prefix is at the destination, byte for byte. */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { sandboxS3 } from '../../sandbox/clients.js';
import type { Sandbox } from '../../sandbox/sandbox.js';

/** The source keys under `prefix` whose destination copy is missing or differs, each as a line to print. */
export async function compareBuckets(sandbox: Sandbox, prefix = ''): Promise<string[]> {
  const producer = sandboxS3(sandbox, sandbox.accountA.admin);
  const consumer = sandboxS3(sandbox, sandbox.accountB.admin);
  const problems: string[] = [];
  let token: string | undefined;
  do {
    const page = await producer.send(
      new ListObjectsV2Command({ Bucket: sandbox.accountA.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const { Key } of page.Contents ?? []) {
      if (!Key) continue;
      const [source, copy] = await Promise.all([
        readText(producer, sandbox.accountA.bucket, Key),
        readText(consumer, sandbox.accountB.destinationBucket, Key).catch(() => undefined),
      ]);
      if (copy !== source) problems.push(`${Key}: destination differs from source`);
    }
    token = page.NextContinuationToken;
  } while (token);
  return problems;
}

export async function readText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await object.Body?.transformToString()) ?? '';
}

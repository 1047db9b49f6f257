/**
 * The bare listing: a paginated ListObjectsV2 of the source prefix with the assumed role, the least any
 * incremental sync must do. Workload 4 compares the no-change sync against it.
 *
 *   node list-objects.mjs <task.json>
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { assumedRoleS3, printResult, readTask, type SourceAccess } from './task.js';

const task = readTask<SourceAccess & { bucket: string; prefix: string }>();
const s3 = await assumedRoleS3(task);
let listed = 0;
let listRequests = 0;
let token: string | undefined;
do {
  const page = await s3.send(
    new ListObjectsV2Command({ Bucket: task.bucket, Prefix: task.prefix, ContinuationToken: token }),
  );
  listRequests += 1;
  listed += page.KeyCount ?? 0;
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);
printResult({ listed, listRequests });

/**
 * The source links: the assumed role lists the job's prefix and reads an object, and, for a server-side
 * copy, this identity may read it itself through AccountA's bucket policy.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { checkServerSideCopy, sourceListFailure, sourceReadFix } from '../access/preflight.js';
import { grantFix } from '../copy/server-side-refusal.js';
import { awsErrorCode, describeError, networkFailure } from '../errors.js';
import type { Job } from '../job.js';
import type { DoctorCheck } from './diagnose-job.js';

/** The listSource link; the first listed object, to test reading with. */
export async function checkListSource(s3: S3Client, job: Job, checks: DoctorCheck[]) {
  const { bucket, prefix } = job.source;
  const where = `s3://${bucket}/${prefix}`;
  try {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, MaxKeys: 1 }),
    );
    const first = page.Contents?.[0];
    checks.push({
      link: 'listSource',
      status: 'ok',
      detail: `listed ${where}${first?.Key ? '' : ' (empty)'}`,
    });
    return first;
  } catch (error) {
    const failure = sourceListFailure(error, job);
    const unreachable = networkFailure(error) !== undefined;
    checks.push({
      link: 'listSource',
      status: 'fail',
      detail: failure.problem,
      fix: unreachable
        ? 'check the network path to S3 from here, and AWS_ENDPOINT_URL_S3 if you set one'
        : failure.kind === 'other'
          ? 'S3 did not refuse: retry, and if it persists the error above says what failed'
          : failure.fix,
      ...(unreachable && { unreachable }),
    });
    return undefined;
  }
}

/** The getSource link: one byte of the first listed object, skipped when listing failed or found none. */
export async function checkGetSource(
  s3: S3Client,
  job: Job,
  first: { Key?: string; StorageClass?: string } | undefined,
  checks: DoctorCheck[],
): Promise<void> {
  const { bucket, roleArn } = job.source;
  if (checks.at(-1)?.status === 'fail') {
    checks.push({ link: 'getSource', status: 'skipped', detail: 'not tested: listing failed' });
    return;
  }
  if (!first?.Key) {
    checks.push({ link: 'getSource', status: 'skipped', detail: 'no object to test GetObject with' });
    return;
  }
  const key = first.Key;
  try {
    // One byte is enough to prove s3:GetObject (and any KMS decrypt it needs).
    await s3
      .send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-0' }))
      .then((object) => object.Body?.transformToByteArray());
    checks.push({ link: 'getSource', status: 'ok', detail: `read the first byte of s3://${bucket}/${key}` });
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    if (name === 'InvalidRange' || status === 416) {
      // A zero-byte object has no byte 0; S3 checked the permission before the range.
      checks.push({ link: 'getSource', status: 'ok', detail: `s3://${bucket}/${key} is readable (empty)` });
    } else if (name === 'InvalidObjectState') {
      checks.push({
        link: 'getSource',
        status: 'skipped',
        detail: `s3://${bucket}/${key} is archived (${first.StorageClass}); no readable object to test with`,
      });
    } else {
      checks.push({
        link: 'getSource',
        status: 'fail',
        detail: `${roleArn} may not read s3://${bucket}/${key}: ${describeError(error)}`,
        fix: sourceReadFix(job),
      });
    }
  }
}

/**
 * For a job with options.copyMethod "server-side": whether this identity (the function's role when the
 * doctor runs in the function) may itself read the listed key, as CopyObject will, through AccountA's
 * bucket policy. The preflight's check, reported as a link.
 */
export async function checkServerSideRead(
  s3: S3Client,
  job: Job,
  key: string | undefined,
  caller: string | undefined,
): Promise<DoctorCheck> {
  const { bucket } = job.source;
  if (key === undefined) {
    return {
      link: 'serverSideCopy',
      status: 'skipped',
      detail: 'no listed object to test the copy grant with',
    };
  }
  try {
    await checkServerSideCopy(s3, job, key);
  } catch (error) {
    return {
      link: 'serverSideCopy',
      status: 'fail',
      detail: `${caller ?? 'this identity'} may not read s3://${bucket}/${key} itself: ${describeError((error as Error).cause ?? error)}`,
      fix: grantFix({ sourceBucket: bucket, copyTags: job.options.copyTags }),
    };
  }
  return {
    link: 'serverSideCopy',
    status: 'ok',
    detail: `${caller ?? 'this identity'} may read s3://${bucket}/${key} itself (AccountA's bucket policy grants it)`,
  };
}

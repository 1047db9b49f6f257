/**
 * The links in this (the consumer's) account: this identity may write the destination bucket, and the
 * state table answers.
 */
import { randomBytes } from 'node:crypto';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { awsErrorCode, describeError } from '../errors.js';
import type { Job } from '../job.js';
import type { DoctorCheck, DoctorDependencies } from './diagnose-job.js';

/** Where the write probe goes: dot-named, beside the run manifests, so data readers skip it. */
export const PROBE_PREFIX = '.cross-account-sync/doctor/';

/**
 * Proves s3:PutObject (and, on an SSE-KMS bucket, the data key) without leaving an object behind: a
 * multipart upload is started and aborted, never completed. No s3:DeleteObject is needed, which the
 * function's role has only for mirror jobs, so the same probe serves the doctor run by the function.
 */
export async function checkWriteDestination(s3: S3Client, job: Job): Promise<DoctorCheck> {
  const { bucket } = job.destination;
  const key = `${PROBE_PREFIX}${job.jobId}-${randomBytes(6).toString('hex')}`;
  let uploadId: string | undefined;
  try {
    ({ UploadId: uploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key })));
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    const missing = name === 'NoSuchBucket' || status === 404;
    return {
      link: 'writeDestination',
      status: 'fail',
      detail: missing
        ? `destination bucket "${bucket}" does not exist`
        : `this identity may not write s3://${bucket}: ${describeError(error)}`,
      fix: missing
        ? 'check job.destination.bucket, or deploy template.yaml with DestinationBucketName empty to create one'
        : `allow s3:PutObject on arn:aws:s3:::${bucket}/* (template.yaml grants it to the function)`,
    };
  }
  try {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  } catch (error) {
    return {
      link: 'writeDestination',
      status: 'warn',
      detail: `started an upload to s3://${bucket}/${key} but could not abort it: ${describeError(error)}`,
      fix:
        `allow s3:AbortMultipartUpload on arn:aws:s3:::${bucket}/* (runs abort the uploads a deadline cuts); ` +
        "the bucket's lifecycle rule removes the probe's upload",
    };
  }
  return {
    link: 'writeDestination',
    status: 'ok',
    detail: `started and aborted a multipart upload to s3://${bucket}/${key}`,
  };
}

/** The stateTable link: the table answers a read of the job's lease. */
export async function checkStateTable(deps: DoctorDependencies, job: Job): Promise<DoctorCheck> {
  const { tableName } = deps;
  if (!tableName) {
    return {
      link: 'stateTable',
      status: 'fail',
      detail: 'STATE_TABLE_NAME is not set',
      fix: "set STATE_TABLE_NAME to the stack's StateTableName output",
    };
  }
  try {
    const { Item: lease } = await DynamoDBDocumentClient.from(deps.dynamodb).send(
      new GetCommand({ TableName: tableName, Key: { pk: `job#${job.jobId}`, sk: 'lease' } }),
    );
    const held = typeof lease?.expiresAt === 'number' && lease.expiresAt > Date.now();
    return {
      link: 'stateTable',
      status: 'ok',
      // Stryker disable next-line OptionalChaining: `held` is true only when lease is defined (its expiresAt was read), so lease.owner never meets undefined here
      detail: `table ${tableName} answers; the job's lease is ${held ? `held by run ${lease?.owner}` : 'free'}`,
    };
  } catch (error) {
    const { name } = awsErrorCode(error);
    if (name === 'ResourceNotFoundException') {
      return {
        link: 'stateTable',
        status: 'fail',
        detail: `table ${tableName} does not exist (in this account and region)`,
        fix: "set STATE_TABLE_NAME to the stack's StateTableName output, and AWS_REGION to the stack's region",
      };
    }
    return {
      link: 'stateTable',
      status: 'fail',
      detail: `table ${tableName} did not answer: ${describeError(error)}`,
      fix: `allow dynamodb:GetItem, Query, PutItem, UpdateItem and DeleteItem on table ${tableName}`,
    };
  }
}

import { HeadBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { awsErrorCode, BucketAccessError, describeError } from './errors.js';
import type { Job } from './job.js';
import { sourceCredentials } from './source-credentials.js';

/**
 * Checks, before any side effect, that the assumed role can list the source bucket. Uses only
 * s3:ListBucket, which S3GetListRole grants.
 */
export async function checkSourceBucket(sourceS3: S3Client, job: Job): Promise<void> {
  const { bucket, prefix, roleArn } = job.source;
  try {
    await sourceS3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, MaxKeys: 1 }),
    );
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    if (name === 'NoSuchBucket' || status === 404) {
      throw new BucketAccessError(
        `source bucket "${bucket}" does not exist (as seen by ${roleArn}): check job.source.bucket`,
        { cause: error },
      );
    }
    if (name === 'AccessDenied' || status === 403) {
      throw new BucketAccessError(
        `${roleArn} may not list source bucket "${bucket}": grant it s3:ListBucket on arn:aws:s3:::${bucket}` +
          ', or check that job.source.bucket names the bucket the role was made for',
        { cause: error },
      );
    }
    throw new BucketAccessError(`cannot list source bucket "${bucket}": ${describeError(error)}`, {
      cause: error,
    });
  }
}

/** Checks that the destination bucket exists and this identity may use it. */
export async function checkDestinationBucket(destinationS3: S3Client, job: Job): Promise<void> {
  const { bucket } = job.destination;
  try {
    await destinationS3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    if (name === 'NotFound' || name === 'NoSuchBucket' || status === 404) {
      throw new BucketAccessError(
        `destination bucket "${bucket}" does not exist: create it, or deploy template.yaml with ` +
          'DestinationBucketName left empty so the stack creates one, and check job.destination.bucket',
        { cause: error },
      );
    }
    if (name === 'Forbidden' || name === 'AccessDenied' || status === 403) {
      throw new BucketAccessError(
        `this identity may not use destination bucket "${bucket}": it needs s3:ListBucket, s3:PutObject ` +
          'and s3:GetObject there (template.yaml grants them to the function)',
        { cause: error },
      );
    }
    throw new BucketAccessError(`cannot reach destination bucket "${bucket}": ${describeError(error)}`, {
      cause: error,
    });
  }
}

/**
 * Everything a run or a dry run does before reading: assume the source role (failing early with the
 * reason), build the client that reads the source with it, and check both buckets.
 */
export async function openSource(
  deps: {
    sts: STSClient;
    destinationS3: S3Client;
    sourceS3: (credentials: AwsCredentialIdentityProvider, region?: string) => S3Client;
  },
  job: Job,
  runId: string,
): Promise<S3Client> {
  const credentials = sourceCredentials(deps.sts, job, runId);
  await credentials();
  const sourceS3 = deps.sourceS3(credentials, job.source.region);
  await checkSourceBucket(sourceS3, job);
  await checkDestinationBucket(deps.destinationS3, job);
  return sourceS3;
}

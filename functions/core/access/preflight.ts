/**
 * The access room: reaching the source account before any side effect.
 *
 * - preflight.ts (this file): the bucket checks, with the permission a failure lacks named;
 * - source-credentials.ts: the assumed role's refreshing credentials and session name.
 */
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { grantFix } from '../copy/server-side-refusal.js';
import { awsErrorCode, BucketAccessError, describeError } from '../errors.js';
import type { Job } from '../job.js';
import { type SourceCredentials, sourceCredentials } from './source-credentials.js';

/**
 * Checks, before any side effect, that the assumed role can list the source bucket. Uses only
 * s3:ListBucket, which S3GetListRole grants.
 *
 * @returns the first key under the job's prefix, if there is one, for checkSourceRead.
 */
export async function checkSourceBucket(sourceS3: S3Client, job: Job): Promise<string | undefined> {
  const { bucket, prefix } = job.source;
  try {
    const page = await sourceS3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, MaxKeys: 1 }),
    );
    return page.Contents?.[0]?.Key;
  } catch (error) {
    const { problem, fix } = sourceListFailure(error, job);
    throw new BucketAccessError(`${problem}: ${fix}`, { cause: error });
  }
}

/**
 * Why listing the source bucket failed and what to do, so a run and `doctor` say the same. S3 answers
 * NoSuchBucket (404) only for a name no account has; a mistyped name that happens to be another
 * account's bucket is refused (403) like a missing permission, so a refusal names both causes.
 */
export function sourceListFailure(
  error: unknown,
  job: Job,
): { kind: 'missing' | 'refused' | 'other'; problem: string; fix: string } {
  const { bucket, roleArn } = job.source;
  const { name, status } = awsErrorCode(error);
  if (name === 'NoSuchBucket' || status === 404) {
    return {
      kind: 'missing',
      problem: `source bucket "${bucket}" does not exist (S3 answered NoSuchBucket to ${roleArn})`,
      fix: 'check job.source.bucket for a typo',
    };
  }
  if (name === 'AccessDenied' || status === 403) {
    return {
      kind: 'refused',
      problem:
        `S3 refused ${roleArn} listing source bucket "${bucket}" (AccessDenied): either the role lacks ` +
        `s3:ListBucket there, or "${bucket}" is not AccountA's bucket (a mistyped name that another account ` +
        'owns is refused, not reported missing)',
      fix:
        'check that job.source.bucket is spelled as the bucket the role was made for; if it is, ask ' +
        `AccountA to allow s3:ListBucket on arn:aws:s3:::${bucket} in the role's policy`,
    };
  }
  return {
    kind: 'other',
    problem: `cannot list source bucket "${bucket}": ${describeError(error)}`,
    fix: 'run `cross-account-sync doctor <job.json>`',
  };
}

/**
 * What to ask AccountA for when the source role may not read objects. `doctor` gives the same fix, so a
 * run and the diagnosis say the same thing.
 */
export function sourceReadFix(job: Job): string {
  const { bucket, prefix } = job.source;
  return (
    `ask AccountA to allow s3:GetObject on arn:aws:s3:::${bucket}/${prefix}* in the role's policy ` +
    '(and kms:Decrypt on the key, if the bucket uses SSE-KMS)'
  );
}

/**
 * Reads one byte of `key` (a key the listing returned), so a role that may list but not read fails here,
 * before anything is written, instead of object by object. A zero-byte object has no byte 0: S3 checks
 * the permission before the range, so InvalidRange proves the read. Only a refusal fails the check.
 */
export async function checkSourceRead(sourceS3: S3Client, job: Job, key: string): Promise<void> {
  const { bucket, roleArn } = job.source;
  try {
    const object = await sourceS3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-0' }),
    );
    await object.Body?.transformToByteArray();
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    // An archived object (Glacier, or an Intelligent-Tiering archive tier) is refused after the permission
    // check, so the refusal proves the read; the copy reports such objects as archived.
    if (name === 'InvalidObjectState') return;
    if (name === 'AccessDenied' || status === 403) {
      throw new BucketAccessError(
        `${roleArn} may list but not read s3://${bucket}/${key} (s3:GetObject denied): ${sourceReadFix(job)}`,
        { cause: error },
      );
    }
    // Anything else (throttling, a 5xx after the SDK's retries) says nothing about permissions: the copy
    // meets it again and reports it per object.
  }
}

/**
 * A job that copies tags reads them with the source role, which then needs s3:GetObjectTagging: checked
 * on the key checkSourceRead read, so a role without it fails before anything is written, naming the
 * producer template's parameter that grants it.
 */
export async function checkSourceTagsRead(sourceS3: S3Client, job: Job, key: string): Promise<void> {
  const { bucket, roleArn } = job.source;
  try {
    await sourceS3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    const { name, status } = awsErrorCode(error);
    if (name === 'AccessDenied' || status === 403) {
      throw new BucketAccessError(
        `${roleArn} may not read the tags of s3://${bucket}/${key} (s3:GetObjectTagging denied), which ` +
          `options.copyTags needs: ask AccountA to deploy source-account/template.yaml with ` +
          'AllowGetObjectTagging=true, or set options.copyTags to false',
        { cause: error },
      );
    }
    // Anything else is met again, and reported, by the copy of that key.
  }
}

/**
 * A job that copies server-side (options.copyMethod) reads the source with this function's own role, not
 * the assumed one: AccountA's bucket policy must grant it. Proved with the requests the copy makes, on
 * the key checkSourceRead read: HeadObject (s3:GetObject) and, for a job that copies tags,
 * GetObjectTagging, both with the destination's credentials. A refusal fails before anything is written,
 * naming the producer template's parameter that adds the grant.
 */
export async function checkServerSideCopy(destinationS3: S3Client, job: Job, key: string): Promise<void> {
  const { bucket } = job.source;
  const reads = [
    { verb: 'read', send: () => destinationS3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })) },
    ...(job.options.copyTags
      ? [
          {
            verb: 'read the tags of',
            send: () => destinationS3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key })),
          },
        ]
      : []),
  ];
  for (const { verb, send } of reads) {
    try {
      await send();
    } catch (error) {
      const { name, status } = awsErrorCode(error);
      if (name === 'AccessDenied' || name === 'Forbidden' || status === 403) {
        throw new BucketAccessError(
          `options.copyMethod is "server-side", but this function's role may not ${verb} ` +
            `s3://${bucket}/${key}: ${grantFix({ sourceBucket: bucket, copyTags: job.options.copyTags })}`,
          { cause: error },
        );
      }
      // Anything else (an archived object, throttling) says nothing about the grant; the copy meets it.
    }
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
 * reason), build the client that reads the source with it, check both buckets, and read one byte of one
 * listed object (and its tags, for a job that copies them), or, for a server-side copy, check that this
 * function's role may read it (checkServerSideCopy).
 */
export async function openSource(deps: SourceDependencies, job: Job, runId: string): Promise<S3Client> {
  return (await openSourceAccess(deps, job, runId)).sourceS3;
}

/** What opening the source needs. */
export interface SourceDependencies {
  sts: STSClient;
  destinationS3: S3Client;
  sourceS3: (credentials: AwsCredentialIdentityProvider, region?: string) => S3Client;
}

/** As openSource, also returning the credentials, so a copy refused with them can have them renewed. */
export async function openSourceAccess(
  deps: SourceDependencies,
  job: Job,
  runId: string,
): Promise<{ sourceS3: S3Client; credentials: SourceCredentials }> {
  // The destination's check needs nothing from the source's, so it runs alongside them; its outcome is
  // awaited after theirs, so a source that fails its checks is still what a run reports first.
  const destinationChecked = checkDestinationBucket(deps.destinationS3, job);
  destinationChecked.catch(() => {});
  const credentials = sourceCredentials(deps.sts, job, runId);
  await credentials();
  let sourceS3 = deps.sourceS3(credentials, job.source.region);
  if (!job.source.region) {
    const region = await bucketRegion(sourceS3, job.source.bucket);
    if (region && region !== (await sourceS3.config.region())) sourceS3 = deps.sourceS3(credentials, region);
  }
  const firstKey = await checkSourceBucket(sourceS3, job);
  // A server-side copy reads objects with this function's role; the assumed one only lists.
  if (firstKey !== undefined && job.options.copyMethod === 'server-side') {
    await checkServerSideCopy(deps.destinationS3, job, firstKey);
  } else if (firstKey !== undefined) {
    await checkSourceRead(sourceS3, job, firstKey);
    if (job.options.copyTags) await checkSourceTagsRead(sourceS3, job, firstKey);
  }
  await destinationChecked;
  return { sourceS3, credentials };
}

/**
 * The region a bucket is in, from one HeadBucket (s3:ListBucket): S3 names it in x-amz-bucket-region on
 * the answer, on a redirect and on a refusal alike. With it the source client is built in the bucket's
 * region, so no object request pays a region redirect; undefined (no answer) leaves the client to follow
 * redirects, and the listing that follows explains any failure.
 */
export async function bucketRegion(s3: S3Client, bucket: string): Promise<string | undefined> {
  try {
    const head = await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    // Stryker disable next-line OptionalChaining: the SDK always resolves an output object; were it undefined, head.BucketRegion would throw a TypeError, which the catch below turns into the same undefined
    return head?.BucketRegion;
  } catch (error) {
    return (error as { $response?: { headers?: Record<string, string> } }).$response?.headers?.[
      'x-amz-bucket-region'
    ];
  }
}

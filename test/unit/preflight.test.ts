import { ListObjectsV2Command, NoSuchBucket, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import { checkSourceBucket } from '../../functions/core/access/preflight.js';
import { BucketAccessError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';

const s3Mock = mockClient(S3Client);
const job = parseJob({
  jobId: 'nightly',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'sorce-bucket' },
  destination: { bucket: 'destination-bucket' },
});
const list = () => checkSourceBucket(new S3Client({ region: 'us-east-1' }), job).catch((e: unknown) => e);

describe('checkSourceBucket', () => {
  beforeEach(() => s3Mock.reset());

  it('says a bucket S3 reports missing does not exist, not that a permission is missing', async () => {
    s3Mock.on(ListObjectsV2Command).rejects(
      new NoSuchBucket({
        message: 'The specified bucket does not exist',
        $metadata: { httpStatusCode: 404 },
      }),
    );

    const error = await list();

    expect(error).toBeInstanceOf(BucketAccessError);
    expect(exitCodeFor(error)).toBe(EXIT.access);
    expect((error as Error).message).toBe(
      'source bucket "sorce-bucket" does not exist (S3 answered NoSuchBucket to ' +
        'arn:aws:iam::111111111111:role/S3GetListRole): check job.source.bucket for a typo',
    );
  });

  it('names both causes of AccessDenied: a missing s3:ListBucket, or a mistyped name another account owns', async () => {
    s3Mock.on(ListObjectsV2Command).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        message: 'Access Denied',
        $metadata: { httpStatusCode: 403 },
      }),
    );

    const message = ((await list()) as Error).message;

    expect(message).toMatch(
      /either the role lacks s3:ListBucket there, or "sorce-bucket" is not AccountA's bucket/,
    );
    expect(message).toMatch(/check that job\.source\.bucket is spelled as the bucket the role was made for/);
    expect(message).toMatch(/allow s3:ListBucket on arn:aws:s3:::sorce-bucket/);
  });
});

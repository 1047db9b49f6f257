import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchBucket,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../cli/exit-codes.js';
import {
  bucketRegion,
  checkDestinationBucket,
  checkServerSideCopy,
  checkSourceBucket,
  checkSourceRead,
  checkSourceTagsRead,
  openSourceAccess,
  sourceListFailure,
} from '../../functions/core/access/preflight.js';
import { BucketAccessError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';

const s3Mock = mockClient(S3Client);
const stsMock = mockClient(STSClient);
const job = parseJob({
  jobId: 'nightly',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'sorce-bucket' },
  destination: { bucket: 'destination-bucket' },
});
const s3 = () => new S3Client({ region: 'us-east-1' });
const list = () => checkSourceBucket(s3(), job).catch((e: unknown) => e);
const read = () => checkSourceRead(s3(), job, 'data/part-0').catch((e: unknown) => e);
const readTags = () => checkSourceTagsRead(s3(), job, 'data/part-0').catch((e: unknown) => e);
const headDestination = () => checkDestinationBucket(s3(), job).catch((e: unknown) => e);

/** An S3 error as the SDK throws it: a name (the XML Code, or the SDK's for a body-less HEAD) and a status. */
const s3Error = (name: string, status?: number, message = `${name} from S3`) =>
  new S3ServiceException({ name, $fault: 'client', message, $metadata: { httpStatusCode: status } });

/** Each way S3 says a thing: by its name alone, or by its HTTP status alone under a name the code does not know. */
const refusals: [string, S3ServiceException][] = [
  ['named AccessDenied, with no status', s3Error('AccessDenied')],
  ['a bare 403 under another name', s3Error('UnknownError', 403)],
];
const throttled = () => s3Error('SlowDown', 503, 'Please reduce your request rate.');

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

  it.each([
    ['named NoSuchBucket, with no status', s3Error('NoSuchBucket')],
    ['a bare 404 under another name', s3Error('UnknownError', 404)],
  ])('says the bucket does not exist for a listing answered %s', async (_, missing) => {
    s3Mock.on(ListObjectsV2Command).rejects(missing);

    const error = await list();

    expect(error).toBeInstanceOf(BucketAccessError);
    expect((error as Error).message).toMatch(/^source bucket "sorce-bucket" does not exist/);
    expect((error as Error).message).toMatch(/check job\.source\.bucket for a typo$/);
    expect((error as Error).cause).toBe(missing);
    expect(sourceListFailure(missing, job).kind).toBe('missing');
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
    expect(message).toMatch(/a mistyped name that another account owns is refused, not reported missing/);
    expect(message).toMatch(/check that job\.source\.bucket is spelled as the bucket the role was made for/);
    expect(message).toMatch(/allow s3:ListBucket on arn:aws:s3:::sorce-bucket/);
  });

  it.each(refusals)(
    'treats a listing answered %s as a refusal, keeping it as the cause',
    async (_, refused) => {
      s3Mock.on(ListObjectsV2Command).rejects(refused);

      const error = await list();

      expect(error).toBeInstanceOf(BucketAccessError);
      expect((error as Error).message).toMatch(
        /^S3 refused arn:aws:iam::111111111111:role\/S3GetListRole listing source bucket "sorce-bucket" \(AccessDenied\)/,
      );
      expect((error as Error).message).toMatch(/allow s3:ListBucket on arn:aws:s3:::sorce-bucket/);
      expect((error as Error).cause).toBe(refused);
      expect(sourceListFailure(refused, job).kind).toBe('refused');
    },
  );

  it('reports any other listing failure as it is, sends the operator to doctor and keeps it as the cause', async () => {
    const slowDown = throttled();
    s3Mock.on(ListObjectsV2Command).rejects(slowDown);

    const error = await list();

    expect(error).toBeInstanceOf(BucketAccessError);
    expect((error as Error).message).toBe(
      'cannot list source bucket "sorce-bucket": SlowDown: Please reduce your request rate.: ' +
        'run `cross-account-sync doctor <job.json>`',
    );
    expect((error as Error).cause).toBe(slowDown);
    expect(sourceListFailure(slowDown, job).kind).toBe('other');
  });

  it('asks for one key under the prefix and returns it', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'data/part-0' }] });

    const first = await checkSourceBucket(s3(), job);

    expect(first).toBe('data/part-0');
    expect(s3Mock).toHaveReceivedCommandWith(ListObjectsV2Command, { Bucket: 'sorce-bucket', MaxKeys: 1 });
  });
});

describe('checkSourceRead', () => {
  beforeEach(() => s3Mock.reset());

  it.each(refusals)(
    'fails a role whose read of one object is answered %s, naming s3:GetObject and kms:Decrypt',
    async (_, refused) => {
      s3Mock.on(GetObjectCommand).rejects(refused);

      const error = await read();

      expect(error).toBeInstanceOf(BucketAccessError);
      expect((error as Error).message).toBe(
        'arn:aws:iam::111111111111:role/S3GetListRole may list but not read s3://sorce-bucket/data/part-0 ' +
          "(s3:GetObject denied): ask AccountA to allow s3:GetObject on arn:aws:s3:::sorce-bucket/* in the role's " +
          'policy (and kms:Decrypt on the key, if the bucket uses SSE-KMS)',
      );
      expect((error as Error).cause).toBe(refused);
    },
  );

  it.each([
    ['an archived object (InvalidObjectState)', s3Error('InvalidObjectState', 403)],
    ['a zero-byte object (InvalidRange)', s3Error('InvalidRange', 416)],
    ['throttling, which says nothing about permissions', throttled()],
  ])('passes a read answered by %s', async (_, answer) => {
    s3Mock.on(GetObjectCommand).rejects(answer);

    await expect(checkSourceRead(s3(), job, 'data/part-0')).resolves.toBeUndefined();
  });

  it('reads only the first byte of the key', async () => {
    s3Mock.on(GetObjectCommand).resolves({});

    await checkSourceRead(s3(), job, 'data/part-0');

    expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: 'sorce-bucket',
      Key: 'data/part-0',
      Range: 'bytes=0-0',
    });
  });
});

describe('checkSourceTagsRead', () => {
  beforeEach(() => s3Mock.reset());

  it.each(refusals)(
    'fails a job copying tags whose tag read is answered %s, naming the template parameter or the option',
    async (_, refused) => {
      s3Mock.on(GetObjectTaggingCommand).rejects(refused);

      const error = await readTags();

      expect(error).toBeInstanceOf(BucketAccessError);
      expect((error as Error).message).toBe(
        'arn:aws:iam::111111111111:role/S3GetListRole may not read the tags of s3://sorce-bucket/data/part-0 ' +
          '(s3:GetObjectTagging denied), which options.copyTags needs: ask AccountA to deploy ' +
          'source-account/template.yaml with AllowGetObjectTagging=true, or set options.copyTags to false',
      );
      expect((error as Error).cause).toBe(refused);
    },
  );

  it('leaves any other failure of the tag read to the copy of that key', async () => {
    s3Mock.on(GetObjectTaggingCommand).rejects(throttled());

    await expect(readTags()).resolves.toBeUndefined();
  });
});

describe('checkDestinationBucket', () => {
  beforeEach(() => s3Mock.reset());

  it.each([
    ['named NotFound (a HEAD has no body), with no status', s3Error('NotFound')],
    ['named NoSuchBucket, with no status', s3Error('NoSuchBucket')],
    ['a bare 404 under another name', s3Error('UnknownError', 404)],
  ])('says a destination answered %s does not exist, and how to have one', async (_, missing) => {
    s3Mock.on(HeadBucketCommand).rejects(missing);

    const error = await headDestination();

    expect(error).toBeInstanceOf(BucketAccessError);
    expect((error as Error).message).toBe(
      'destination bucket "destination-bucket" does not exist: create it, or deploy template.yaml with ' +
        'DestinationBucketName left empty so the stack creates one, and check job.destination.bucket',
    );
    expect((error as Error).cause).toBe(missing);
  });

  it.each([['named Forbidden (a HEAD has no body), with no status', s3Error('Forbidden')], ...refusals])(
    'says a destination answered %s may not be used, naming the permissions it needs',
    async (_, refused) => {
      s3Mock.on(HeadBucketCommand).rejects(refused);

      const error = await headDestination();

      expect(error).toBeInstanceOf(BucketAccessError);
      expect((error as Error).message).toBe(
        'this identity may not use destination bucket "destination-bucket": it needs s3:ListBucket, ' +
          's3:PutObject and s3:GetObject there (template.yaml grants them to the function)',
      );
      expect((error as Error).cause).toBe(refused);
    },
  );

  it('reports any other failure to reach the destination as it is, keeping it as the cause', async () => {
    const slowDown = throttled();
    s3Mock.on(HeadBucketCommand).rejects(slowDown);

    const error = await headDestination();

    expect(error).toBeInstanceOf(BucketAccessError);
    expect((error as Error).message).toBe(
      'cannot reach destination bucket "destination-bucket": SlowDown: Please reduce your request rate.',
    );
    expect((error as Error).cause).toBe(slowDown);
  });

  it('passes a destination that answers', async () => {
    s3Mock.on(HeadBucketCommand).resolves({});

    await expect(checkDestinationBucket(s3(), job)).resolves.toBeUndefined();
    expect(s3Mock).toHaveReceivedCommandWith(HeadBucketCommand, { Bucket: 'destination-bucket' });
  });
});

describe('bucketRegion', () => {
  beforeEach(() => s3Mock.reset());

  it('reads the region from the answer', async () => {
    s3Mock.on(HeadBucketCommand).resolves({ BucketRegion: 'eu-west-1' });

    await expect(bucketRegion(s3(), 'sorce-bucket')).resolves.toBe('eu-west-1');
  });

  it('reads the region from the header of a refusal', async () => {
    s3Mock.on(HeadBucketCommand).rejects(
      Object.assign(s3Error('Forbidden', 403), {
        $response: { headers: { 'x-amz-bucket-region': 'ap-southeast-2' } },
      }),
    );

    await expect(bucketRegion(s3(), 'sorce-bucket')).resolves.toBe('ap-southeast-2');
  });

  it('gives no region for a failure that names none', async () => {
    s3Mock.on(HeadBucketCommand).rejects(throttled());

    await expect(bucketRegion(s3(), 'sorce-bucket')).resolves.toBeUndefined();
  });
});

describe('openSourceAccess', () => {
  /** The source clients built, by the region each was asked for (undefined: the default, us-east-1). */
  let built: (string | undefined)[];
  const deps = () => ({
    sts: new STSClient({ region: 'us-east-1' }),
    destinationS3: s3(),
    sourceS3: (credentials: AwsCredentialIdentityProvider, region?: string) => {
      built.push(region);
      return new S3Client({ region: region ?? 'us-east-1', credentials });
    },
  });

  beforeEach(() => {
    built = [];
    s3Mock.reset();
    stsMock.reset();
    stsMock.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'AKIA1',
        SecretAccessKey: 'secret',
        SessionToken: 'token',
        Expiration: new Date(Date.now() + 3_600_000),
      },
    });
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [] });
    s3Mock.on(HeadBucketCommand, { Bucket: 'destination-bucket' }).resolves({});
  });

  it('rebuilds the source client in the bucket region when it differs from the client region', async () => {
    s3Mock.on(HeadBucketCommand, { Bucket: 'sorce-bucket' }).resolves({ BucketRegion: 'eu-west-1' });

    const { sourceS3 } = await openSourceAccess(deps(), job, 'run1');

    expect(built).toEqual([undefined, 'eu-west-1']);
    expect(await sourceS3.config.region()).toBe('eu-west-1');
  });

  it('keeps the one source client when the bucket is in its region', async () => {
    s3Mock.on(HeadBucketCommand, { Bucket: 'sorce-bucket' }).resolves({ BucketRegion: 'us-east-1' });

    await openSourceAccess(deps(), job, 'run1');

    expect(built).toEqual([undefined]);
  });

  it('keeps the one source client when the bucket region is unknown', async () => {
    s3Mock.on(HeadBucketCommand, { Bucket: 'sorce-bucket' }).rejects(throttled());

    await openSourceAccess(deps(), job, 'run1');

    expect(built).toEqual([undefined]);
  });

  it("checks the destination bucket while the source role is still being assumed, not after the source's checks", async () => {
    // AssumeRole answers only once the destination's HeadBucket has been sent: one after the other, it never would.
    let destinationAsked: () => void = () => {};
    const asked = new Promise<void>((resolve) => {
      destinationAsked = resolve;
    });
    s3Mock.on(HeadBucketCommand, { Bucket: 'destination-bucket' }).callsFake(() => {
      destinationAsked();
      return {};
    });
    s3Mock.on(HeadBucketCommand, { Bucket: 'sorce-bucket' }).resolves({ BucketRegion: 'us-east-1' });
    stsMock.on(AssumeRoleCommand).callsFake(async () => {
      await asked;
      return {
        Credentials: {
          AccessKeyId: 'AKIA1',
          SecretAccessKey: 'secret',
          SessionToken: 'token',
          Expiration: new Date(Date.now() + 3_600_000),
        },
      };
    });

    await openSourceAccess(deps(), job, 'run1');

    expect(s3Mock.commandCalls(HeadBucketCommand, { Bucket: 'destination-bucket' })).toHaveLength(1);
  });

  it('reports a source it may not list before a destination that is missing too', async () => {
    s3Mock.on(HeadBucketCommand, { Bucket: 'sorce-bucket' }).resolves({ BucketRegion: 'us-east-1' });
    s3Mock.on(ListObjectsV2Command).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    s3Mock
      .on(HeadBucketCommand, { Bucket: 'destination-bucket' })
      .rejects(Object.assign(new Error('not found'), { name: 'NotFound' }));

    await expect(openSourceAccess(deps(), job, 'run1')).rejects.toThrow(/refused .* listing source bucket/);
  });
});

describe('checkServerSideCopy', () => {
  const serverSide = (copyTags: boolean) =>
    parseJob({ ...job, options: { ...job.options, copyMethod: 'server-side', copyTags } });
  beforeEach(() => s3Mock.reset());

  it('reads the listed key with the destination credentials, and its tags when the job copies them', async () => {
    s3Mock.on(HeadObjectCommand).resolves({}).on(GetObjectTaggingCommand).resolves({ TagSet: [] });

    await checkServerSideCopy(s3(), serverSide(true), 'data/part-0');

    expect(s3Mock).toHaveReceivedCommandWith(HeadObjectCommand, {
      Bucket: 'sorce-bucket',
      Key: 'data/part-0',
    });
    expect(s3Mock).toHaveReceivedCommandWith(GetObjectTaggingCommand, {
      Bucket: 'sorce-bucket',
      Key: 'data/part-0',
    });
  });

  it.each([
    ['HeadObject', HeadObjectCommand, 'read'],
    ['GetObjectTagging', GetObjectTaggingCommand, 'read the tags of'],
  ] as const)('fails naming the producer template parameter when %s is refused', async (_, command, verb) => {
    s3Mock.on(HeadObjectCommand).resolves({}).on(GetObjectTaggingCommand).resolves({ TagSet: [] });
    if (command === HeadObjectCommand) s3Mock.on(HeadObjectCommand).rejects(s3Error('Forbidden', 403));
    else s3Mock.on(GetObjectTaggingCommand).rejects(s3Error('AccessDenied', 403));

    const error = await checkServerSideCopy(s3(), serverSide(true), 'data/part-0').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(BucketAccessError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `may not ${verb} s3://sorce-bucket/data/part-0: .*s3:GetObject and s3:GetObjectTagging.*ServerSideCopyPrincipalArn`,
      ),
    );
  });

  it('lets other failures through to the copy, which reports them per object', async () => {
    s3Mock.on(HeadObjectCommand).rejects(throttled());

    await expect(checkServerSideCopy(s3(), serverSide(false), 'data/part-0')).resolves.toBeUndefined();
    expect(s3Mock).toHaveReceivedCommandTimes(GetObjectTaggingCommand, 0);
  });
});

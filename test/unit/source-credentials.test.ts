import { AssumeRoleCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { roleSessionName, sourceCredentials } from '../../functions/core/access/source-credentials.js';
import { AssumeRoleError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';

const stsMock = mockClient(STSClient);
const sts = new STSClient({ region: 'us-east-1' });
const job = parseJob({
  jobId: 'nightly',
  source: {
    roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole',
    externalId: 'ext-1',
    bucket: 'src-bucket',
  },
  destination: { bucket: 'dst-bucket' },
});
const issued = (minutes: number, key = 'AKIA1') => ({
  Credentials: {
    AccessKeyId: key,
    SecretAccessKey: 'secret',
    SessionToken: 'token',
    Expiration: new Date(Date.now() + minutes * 60_000),
  },
});

describe('sourceCredentials', () => {
  beforeEach(() => stsMock.reset());

  it('assumes the job role with its ExternalId, a readable session name and a chained-role duration', async () => {
    stsMock.on(AssumeRoleCommand).resolves(issued(60));

    const credentials = await sourceCredentials(sts, job, 'run1')();

    expect(credentials).toMatchObject({
      accessKeyId: 'AKIA1',
      secretAccessKey: 'secret',
      sessionToken: 'token',
    });
    expect(stsMock).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: 'arn:aws:iam::111111111111:role/S3GetListRole',
      ExternalId: 'ext-1',
      RoleSessionName: 'sync-nightly-run1',
      DurationSeconds: 3600,
    });
  });

  it('reuses credentials until they near expiry, then refreshes them', async () => {
    stsMock
      .on(AssumeRoleCommand)
      .resolvesOnce(issued(60, 'first'))
      .resolvesOnce(issued(2, 'second'))
      .resolves(issued(60, 'third'));
    const provider = sourceCredentials(sts, job, 'run1');

    expect((await provider()).accessKeyId).toBe('first');
    expect((await provider()).accessKeyId).toBe('first');
    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 1);
  });

  it('refreshes credentials that expire within five minutes', async () => {
    stsMock.on(AssumeRoleCommand).resolvesOnce(issued(2, 'short')).resolves(issued(60, 'fresh'));
    const provider = sourceCredentials(sts, job, 'run1');

    expect((await provider()).accessKeyId).toBe('short');
    expect((await provider()).accessKeyId).toBe('fresh');
  });

  it('assumes the role again once when S3 refused a session, however many copies saw the refusal', async () => {
    stsMock.on(AssumeRoleCommand).resolvesOnce(issued(60, 'refused')).resolves(issued(60, 'renewed'));
    const provider = sourceCredentials(sts, job, 'run1');
    await provider();
    const seen = provider.generation();

    provider.renewAfterRefusal(seen);
    provider.renewAfterRefusal(seen);
    const [one, two] = await Promise.all([provider(), provider()]);

    expect([one.accessKeyId, two.accessKeyId]).toEqual(['renewed', 'renewed']);
    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
    expect(provider.memoized).toBe(true);
  });

  it('explains an AccessDenied in terms of trust policy, ExternalId and caller permission', async () => {
    stsMock.on(AssumeRoleCommand).rejects(
      new STSServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'not authorized',
      }),
    );

    const attempt = sourceCredentials(sts, job, 'run1')();

    await expect(attempt).rejects.toThrow(AssumeRoleError);
    await expect(attempt).rejects.toThrow(
      /trust policy.*job\.source\.externalId.*sts:AssumeRole on arn:aws:iam::111111111111:role\/S3GetListRole/,
    );
  });

  it('keeps the STS error as the cause', async () => {
    const denied = new Error('boom');
    stsMock.on(AssumeRoleCommand).rejects(denied);

    const error = await sourceCredentials(sts, job, 'run1')().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AssumeRoleError);
    expect((error as Error).cause).toBe(denied);
  });
});

describe('roleSessionName', () => {
  it('stays within STS limits of 64 characters', () => {
    expect(roleSessionName('j'.repeat(40), '20261129T190000Z-abcdef').length).toBeLessThanOrEqual(64);
  });
});

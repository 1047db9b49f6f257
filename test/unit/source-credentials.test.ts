import { AssumeRoleCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
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
const withoutExternalId = parseJob({
  ...job,
  source: { roleArn: job.source.roleArn, bucket: job.source.bucket },
});
const issued = (minutes: number, key = 'AKIA1') => ({
  Credentials: {
    AccessKeyId: key,
    SecretAccessKey: 'secret',
    SessionToken: 'token',
    Expiration: new Date(Date.now() + minutes * 60_000),
  },
});

/** An STS error as the SDK throws it: a name (the XML Code) and an HTTP status, either possibly absent. */
const stsError = (name: string, status?: number, message = `${name} from STS`) =>
  new STSServiceException({ name, $fault: 'client', message, $metadata: { httpStatusCode: status } });
/** The error with which assuming the role fails; a success fails the test. */
const assumeFailure = (target = job) =>
  sourceCredentials(sts, target, 'run1')().then(
    (): never => {
      throw new Error('expected AssumeRole to fail');
    },
    (e: unknown) => e as Error,
  );

describe('sourceCredentials', () => {
  beforeEach(() => stsMock.reset());
  afterEach(() => vi.useRealTimers());

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
    expect((error as Error).message).toBe(
      'AssumeRole into arn:aws:iam::111111111111:role/S3GetListRole failed: boom',
    );
  });

  it('reports a throttled AssumeRole as it is, not as a refusal', async () => {
    const throttled = stsError('Throttling', 400, 'Rate exceeded');
    stsMock.on(AssumeRoleCommand).rejects(throttled);

    const error = await assumeFailure();

    expect(error).toBeInstanceOf(AssumeRoleError);
    expect(error.message).toBe(
      'AssumeRole into arn:aws:iam::111111111111:role/S3GetListRole failed: Rate exceeded',
    );
    expect(error.cause).toBe(throttled);
  });

  it.each([
    ['named AccessDenied, with no status', stsError('AccessDenied')],
    ['a bare 403 under another name', stsError('UnknownError', 403)],
  ])('explains an AssumeRole answered %s as a refusal, keeping it as the cause', async (_, refused) => {
    stsMock.on(AssumeRoleCommand).rejects(refused);

    const error = await assumeFailure();

    expect(error).toBeInstanceOf(AssumeRoleError);
    expect(error.message).toBe(
      'cannot assume arn:aws:iam::111111111111:role/S3GetListRole (AccessDenied). Check, in this order: ' +
        '1) the role exists and its trust policy names this account ' +
        '("Principal": {"AWS": "arn:aws:iam::<this account>:root"}); ' +
        "2) job.source.externalId matches the role's sts:ExternalId condition; " +
        "3) this identity's policy allows sts:AssumeRole on arn:aws:iam::111111111111:role/S3GetListRole.",
    );
    expect(error.cause).toBe(refused);
  });

  it('asks for an ExternalId to be set when a job without one is refused', async () => {
    stsMock.on(AssumeRoleCommand).rejects(stsError('AccessDenied', 403));

    const error = await assumeFailure(withoutExternalId);

    expect(error.message).toContain(
      "2) job.source.externalId is set to the role's sts:ExternalId condition;",
    );
  });

  it('says STS rejected a request it found invalid, with its reason, keeping it as the cause', async () => {
    const invalid = stsError(
      'ValidationError',
      400,
      'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    );
    stsMock.on(AssumeRoleCommand).rejects(invalid);

    const error = await assumeFailure();

    expect(error).toBeInstanceOf(AssumeRoleError);
    expect(error.message).toBe(
      'STS rejected the AssumeRole request for arn:aws:iam::111111111111:role/S3GetListRole: ' +
        'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    );
    expect(error.cause).toBe(invalid);
  });

  it.each([
    ['no credentials at all', {}],
    ['credentials without a secret', { Credentials: { AccessKeyId: 'AKIA1' } }],
  ])('names the role when STS answers with %s', async (_, answer) => {
    stsMock.on(AssumeRoleCommand).resolves(answer as never);

    const error = await assumeFailure();

    expect(error).toBeInstanceOf(AssumeRoleError);
    expect(error.message).toBe(
      'STS returned no credentials for arn:aws:iam::111111111111:role/S3GetListRole',
    );
  });

  it('reuses credentials exactly five minutes from expiry, and refreshes them a millisecond later', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-29T19:00:00Z'));
    stsMock.on(AssumeRoleCommand).resolvesOnce(issued(5, 'edge')).resolves(issued(60, 'fresh'));
    const provider = sourceCredentials(sts, job, 'run1');
    await provider();

    const atTheEdge = await provider();
    vi.setSystemTime(Date.now() + 1);
    const pastTheEdge = await provider();

    expect(atTheEdge.accessKeyId).toBe('edge');
    expect(pastTheEdge.accessKeyId).toBe('fresh');
    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
  });

  it('refreshes a stale session once for concurrent callers', async () => {
    stsMock.on(AssumeRoleCommand).resolvesOnce(issued(2, 'stale')).resolves(issued(60, 'fresh'));
    const provider = sourceCredentials(sts, job, 'run1');
    await provider();

    const [one, two] = await Promise.all([provider(), provider()]);

    expect([one.accessKeyId, two.accessKeyId]).toEqual(['fresh', 'fresh']);
    expect(stsMock).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
  });

  it('counts the sessions renewed after a refusal, ignoring a refusal of an older one', () => {
    const provider = sourceCredentials(sts, job, 'run1');
    const first = provider.generation();

    provider.renewAfterRefusal(first);
    const second = provider.generation();
    provider.renewAfterRefusal(first);
    const unchanged = provider.generation();
    provider.renewAfterRefusal(second);

    expect([first, second, unchanged, provider.generation()]).toEqual([0, 1, 1, 2]);
  });
});

describe('roleSessionName', () => {
  it('stays within STS limits of 64 characters', () => {
    expect(roleSessionName('j'.repeat(40), '20261129T190000Z-abcdef').length).toBeLessThanOrEqual(64);
  });

  it('replaces each character STS refuses with a dash', () => {
    expect(roleSessionName('nightly', '2026-11-29 19:00:00Z')).toBe('sync-nightly-2026-11-29-19-00-00Z');
  });
});

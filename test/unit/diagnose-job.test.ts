import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type DoctorDependencies,
  type DoctorReport,
  diagnoseJob,
} from '../../functions/core/diagnose/diagnose-job.js';
import { parseJob } from '../../functions/core/job.js';

const ROLE = 'arn:aws:iam::111111111111:role/S3GetListRole';
const USER = 'arn:aws:iam::222222222222:user/syncer';
const FUNCTION_ROLE = 'arn:aws:iam::222222222222:role/service-role/SyncFn';
const FUNCTION_SESSION = 'arn:aws:sts::222222222222:assumed-role/SyncFn/sync-session';
const KEYS = { AccessKeyId: 'AKIA', SecretAccessKey: 'secret', SessionToken: 'token' };

const stsClient = new STSClient({ region: 'us-east-1' });
const sourceClient = new S3Client({ region: 'us-east-1' });
const destinationClient = new S3Client({ region: 'us-east-1' });
const stsMock = mockClient(stsClient);
const sourceMock = mockClient(sourceClient);
const destinationMock = mockClient(destinationClient);
const dynamoMock = mockClient(DynamoDBDocumentClient);

const jobWith = (source: { externalId?: string; prefix?: string } = {}) =>
  parseJob({
    jobId: 'nightly',
    source: { roleArn: ROLE, bucket: 'source-bucket', prefix: 'data/', ...source },
    destination: { bucket: 'destination-bucket' },
  });

const deps = (overrides: Partial<DoctorDependencies> = {}): DoctorDependencies => ({
  sts: stsClient,
  destinationS3: destinationClient,
  sourceS3: () => sourceClient,
  dynamodb: new DynamoDBClient({ region: 'us-east-1' }),
  tableName: 'state-table',
  ...overrides,
});

/** An AWS error as the SDK throws it: a name and, when given, an HTTP status. */
const awsError = (name: string, status?: number, message = `${name} from AWS`) =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
const trustRefusal = () =>
  awsError('AccessDenied', 403, 'User: x is not authorized to perform: sts:AssumeRole on resource: y');
const callerPolicyRefusal = () =>
  awsError(
    'AccessDenied',
    403,
    'User: x is not authorized to perform: sts:AssumeRole on resource: y because no identity-based policy allows the sts:AssumeRole action',
  );
const connectionRefused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), {
    code: 'ECONNREFUSED',
    address: '127.0.0.1',
    port: 4566,
  });

const check = (report: DoctorReport, link: string) =>
  report.checks.find((c) => c.link === link) ?? expect.fail(`no ${link} check`);
const statuses = (report: DoctorReport) => report.checks.map((c) => `${c.link} ${c.status}`);

describe('diagnoseJob', () => {
  beforeEach(() => {
    stsMock.reset();
    sourceMock.reset();
    destinationMock.reset();
    dynamoMock.reset();
    stsMock.on(GetCallerIdentityCommand).resolves({ Arn: USER });
    stsMock.on(AssumeRoleCommand).resolves({ Credentials: KEYS as never });
    sourceMock
      .on(ListObjectsV2Command)
      .resolves({ Contents: [{ Key: 'data/part-0', StorageClass: 'STANDARD' }] });
    sourceMock.on(GetObjectCommand).resolves({});
    destinationMock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    destinationMock.on(AbortMultipartUploadCommand).resolves({});
    dynamoMock.on(GetCommand).resolves({});
  });

  afterEach(() => vi.restoreAllMocks());

  describe('a working job', () => {
    it('passes every link, names what it did, and assumes the role as the doctor for 900 s', async () => {
      stsMock.on(AssumeRoleCommand, { ExternalId: undefined }).rejects(trustRefusal());
      stsMock.on(AssumeRoleCommand, { ExternalId: 'shared-id' }).resolves({ Credentials: KEYS as never });

      const report = await diagnoseJob(deps(), jobWith({ externalId: 'shared-id' }));

      expect(report).toMatchObject({ jobId: 'nightly', ok: true, caller: USER });
      expect(report.checks).toEqual([
        { link: 'assumeRole', status: 'ok', detail: `${USER} assumed ${ROLE}` },
        {
          link: 'externalId',
          status: 'ok',
          detail: 'the role requires the ExternalId, and accepts the job’s',
        },
        {
          link: 'consumerTrust',
          status: 'warn',
          detail:
            `${USER} is not the sync function's role and could still assume ${ROLE}: its trust is broader ` +
            'than recommended (any identity of account 222222222222 that its IAM lets call sts:AssumeRole)',
          fix:
            'ask AccountA to deploy source-account/template.yaml with ConsumerPrincipalArns=<SyncFunctionRoleArn output>, ' +
            'so that the role trusts only the sync function (an aws:PrincipalArn condition)',
        },
        { link: 'listSource', status: 'ok', detail: 'listed s3://source-bucket/data/' },
        { link: 'getSource', status: 'ok', detail: 'read the first byte of s3://source-bucket/data/part-0' },
        {
          link: 'writeDestination',
          status: 'ok',
          detail: expect.stringMatching(
            /^started and aborted a multipart upload to s3:\/\/destination-bucket\/\.cross-account-sync\/doctor\/nightly-[0-9a-f]{12}$/,
          ),
        },
        { link: 'stateTable', status: 'ok', detail: "table state-table answers; the job's lease is free" },
      ]);
      expect(stsMock).toReceiveCommandWith(AssumeRoleCommand, {
        RoleArn: ROLE,
        ExternalId: 'shared-id',
        RoleSessionName: 'sync-nightly-doctor',
        DurationSeconds: 900,
      });
      expect(sourceMock).toReceiveCommandWith(GetObjectCommand, {
        Bucket: 'source-bucket',
        Key: 'data/part-0',
        Range: 'bytes=0-0',
      });
      expect(destinationMock).toReceiveCommandWith(AbortMultipartUploadCommand, {
        Bucket: 'destination-bucket',
        UploadId: 'upload-1',
      });
      expect(dynamoMock).toReceiveCommandWith(GetCommand, {
        TableName: 'state-table',
        Key: { pk: 'job#nightly', sk: 'lease' },
      });
    });

    it('says "this identity" when STS does not say who the caller is, and skips the trust check', async () => {
      stsMock.on(GetCallerIdentityCommand).rejects(new Error('no credentials'));

      const report = await diagnoseJob(deps(), jobWith());

      expect(report.caller).toBeUndefined();
      expect(check(report, 'assumeRole').detail).toBe(`this identity assumed ${ROLE}`);
      expect(check(report, 'consumerTrust')).toEqual({
        link: 'consumerTrust',
        status: 'skipped',
        detail: 'not told: STS did not say who the caller is',
      });
    });
  });

  describe('the ExternalId', () => {
    it('warns of a confused deputy when the role also opens without the job’s ExternalId', async () => {
      const report = await diagnoseJob(deps(), jobWith({ externalId: 'shared-id' }));

      expect(check(report, 'externalId')).toEqual({
        link: 'externalId',
        status: 'warn',
        detail: 'the role can also be assumed WITHOUT an ExternalId: a confused-deputy risk',
        fix:
          'ask AccountA to add "Condition": {"StringEquals": {"sts:ExternalId": "<shared value>"}} to the trust ' +
          `policy of ${ROLE} (source-account/template.yaml does)`,
      });
      expect(report.ok).toBe(true);
    });

    it('does not say the role requires the ExternalId when the try without it fails for another reason', async () => {
      stsMock
        .on(AssumeRoleCommand, { ExternalId: undefined })
        .rejects(awsError('Throttling', 400, 'Rate exceeded'));
      stsMock.on(AssumeRoleCommand, { ExternalId: 'shared-id' }).resolves({ Credentials: KEYS as never });

      const report = await diagnoseJob(deps(), jobWith({ externalId: 'shared-id' }));

      expect(check(report, 'externalId')).toEqual({
        link: 'externalId',
        status: 'skipped',
        detail:
          'not told: assuming the role without the ExternalId failed, but not with a refusal (Throttling: Rate exceeded); run doctor again',
      });
      expect(check(report, 'listSource').status).toBe('ok');
    });

    it('warns, without trying again, when the job sets no ExternalId, and says to set one', async () => {
      // a second AssumeRole without ExternalId would be refused: the job's own already went without
      stsMock
        .on(AssumeRoleCommand)
        .resolvesOnce({ Credentials: KEYS as never })
        .rejects(trustRefusal());

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'externalId')).toEqual({
        link: 'externalId',
        status: 'warn',
        detail: 'the job sets no ExternalId and the role does not require one: a confused-deputy risk',
        fix:
          'ask AccountA to add "Condition": {"StringEquals": {"sts:ExternalId": "<shared value>"}} to the trust ' +
          `policy of ${ROLE} (source-account/template.yaml does), and set job.source.externalId to that value`,
      });
      expect(stsMock).toReceiveCommandTimes(AssumeRoleCommand, 1);
    });
  });

  describe('whether the caller is the sync function', () => {
    it('passes a session of the function’s role, matched by account and name whatever the role’s path', async () => {
      stsMock.on(GetCallerIdentityCommand).resolves({ Arn: FUNCTION_SESSION });

      const report = await diagnoseJob(
        deps({ functionRoleArns: ['arn:aws:iam::222222222222:role/Other', FUNCTION_ROLE] }),
        jobWith(),
      );

      expect(check(report, 'consumerTrust')).toEqual({
        link: 'consumerTrust',
        status: 'ok',
        detail: `${FUNCTION_SESSION} is the sync function's role, which the role must trust`,
      });
    });

    it.each([
      [
        'a role of the same name in another account',
        'arn:aws:iam::333333333333:role/SyncFn',
        FUNCTION_SESSION,
      ],
      ['another role of the same account', FUNCTION_ROLE, 'arn:aws:sts::222222222222:assumed-role/Other/s'],
      [
        'a federated user named like the role',
        FUNCTION_ROLE,
        'arn:aws:sts::222222222222:federated-user/SyncFn',
      ],
      ['a user, even listed as the function', USER, USER],
    ])('warns that the trust is broader for %s', async (_, functionRole, caller) => {
      stsMock.on(GetCallerIdentityCommand).resolves({ Arn: caller });

      const report = await diagnoseJob(
        deps({ functionRoleArns: [functionRole, 'arn:aws:iam::1:role/x'] }),
        jobWith(),
      );

      expect(check(report, 'consumerTrust')).toMatchObject({
        status: 'warn',
        fix: expect.stringContaining(`ConsumerPrincipalArns=${functionRole},arn:aws:iam::1:role/x, `),
      });
    });

    it.each([
      ['an IAM ARN shaped like a session', 'arn:aws:iam::222222222222:assumed-role/SyncFn/s', FUNCTION_ROLE],
      ['a non-IAM ARN shaped like a role', FUNCTION_SESSION, 'arn:aws:s3::222222222222:role/SyncFn'],
    ])('counts only STS sessions and IAM roles as roles: warns for %s', async (_, caller, functionRole) => {
      stsMock.on(GetCallerIdentityCommand).resolves({ Arn: caller });

      const report = await diagnoseJob(deps({ functionRoleArns: [functionRole] }), jobWith());

      expect(check(report, 'consumerTrust').status).toBe('warn');
    });

    it.each([
      ['not given', undefined],
      ['given empty', []],
    ])('does not tell for a role caller when the function’s role is %s', async (_, functionRoleArns) => {
      stsMock.on(GetCallerIdentityCommand).resolves({ Arn: FUNCTION_SESSION });

      const report = await diagnoseJob(deps({ functionRoleArns }), jobWith());

      expect(check(report, 'consumerTrust')).toEqual({
        link: 'consumerTrust',
        status: 'skipped',
        detail: `not told: ${FUNCTION_SESSION} is a role, and the sync function's role is not known here (doctor --stack <stack> knows it)`,
      });
    });

    it('passes when run by the function itself, naming its role, or "its role" when STS does not say', async () => {
      stsMock.on(GetCallerIdentityCommand).resolves({ Arn: FUNCTION_SESSION });
      const named = await diagnoseJob(deps({ callerIsFunction: true }), jobWith());
      expect(check(named, 'consumerTrust')).toEqual({
        link: 'consumerTrust',
        status: 'ok',
        detail: `run by the sync function, as ${FUNCTION_SESSION}, which the role must trust`,
      });

      stsMock.on(GetCallerIdentityCommand).rejects(new Error('no credentials'));
      const unnamed = await diagnoseJob(deps({ callerIsFunction: true }), jobWith());
      expect(check(unnamed, 'consumerTrust').detail).toBe(
        'run by the sync function, as its role, which the role must trust',
      );
    });
  });

  describe('a refused AssumeRole', () => {
    it('passes the trust when the role refuses an identity that is not the function’s role', async () => {
      stsMock.on(AssumeRoleCommand).rejects(trustRefusal());

      const report = await diagnoseJob(deps({ functionRoleArns: [FUNCTION_ROLE] }), jobWith());

      expect(report.checks.slice(0, 5)).toEqual([
        {
          link: 'assumeRole',
          status: 'skipped',
          detail:
            `${ROLE} refuses ${USER}, which is not the sync function's role: as it should when ` +
            "AccountA trusts only the function (ConsumerPrincipalArns); the function's own check tells whether it gets in",
        },
        {
          link: 'externalId',
          status: 'skipped',
          detail: `not tested as ${USER}: the source role refused it`,
        },
        {
          link: 'consumerTrust',
          status: 'ok',
          detail: `the role refused ${USER}, an identity that is not the sync function's role`,
        },
        { link: 'listSource', status: 'skipped', detail: 'not tested: the source role could not be assumed' },
        { link: 'getSource', status: 'skipped', detail: 'not tested: the source role could not be assumed' },
      ]);
      expect(report.ok).toBe(true);
    });

    it('blames the caller’s policy, even for an outsider, when AWS says no identity-based policy allows it', async () => {
      stsMock.on(AssumeRoleCommand).rejects(callerPolicyRefusal());

      const report = await diagnoseJob(deps({ functionRoleArns: [FUNCTION_ROLE] }), jobWith());

      expect(report.checks.slice(0, 3)).toEqual([
        {
          link: 'assumeRole',
          status: 'fail',
          detail: `the caller's permission: ${USER} may not call sts:AssumeRole on ${ROLE}`,
          fix: `allow "sts:AssumeRole" on "${ROLE}" in the policy of ${USER} (template.yaml grants it for SourceRoleArn and SourceRoleArns)`,
        },
        {
          link: 'externalId',
          status: 'skipped',
          detail: 'not tested: the caller may not call AssumeRole on the role',
        },
        {
          link: 'consumerTrust',
          status: 'skipped',
          detail: 'not tested: the source role could not be assumed',
        },
      ]);
      expect(report.ok).toBe(false);
    });

    it('blames the trust policy when it refuses the function’s own role, naming the ExternalId', async () => {
      stsMock.on(GetCallerIdentityCommand).resolves({ Arn: FUNCTION_SESSION });
      stsMock.on(AssumeRoleCommand).rejects(trustRefusal());

      const report = await diagnoseJob(
        deps({ functionRoleArns: [FUNCTION_ROLE] }),
        jobWith({ externalId: 'shared-id' }),
      );

      expect(check(report, 'assumeRole')).toEqual({
        link: 'assumeRole',
        status: 'fail',
        detail: `the role's trust policy: ${ROLE} refuses ${FUNCTION_SESSION} with this ExternalId`,
        fix:
          `ask AccountA to check the trust policy of ${ROLE}: "Principal": {"AWS": "arn:aws:iam::222222222222:root"} ` +
          `(or ${FUNCTION_SESSION}), and an sts:ExternalId condition equal to job.source.externalId ` +
          '("shared-id"); also that the role exists',
      });
      expect(check(report, 'externalId').detail).toBe(
        'not told apart: STS refuses a wrong ExternalId and an untrusted caller alike',
      );
    });

    it.each([
      ['named AccessDenied, with no status', awsError('AccessDenied')],
      ['named AccessDeniedException, with no status', awsError('AccessDeniedException')],
      ['a bare 403 under another name', awsError('Forbidden', 403)],
    ])(
      'blames the trust policy for a refusal %s, for "this identity" in "<this account>"',
      async (_, error) => {
        stsMock.on(GetCallerIdentityCommand).rejects(new Error('no credentials'));
        stsMock.on(AssumeRoleCommand).rejects(error);

        const report = await diagnoseJob(deps(), jobWith());

        expect(check(report, 'assumeRole')).toEqual({
          link: 'assumeRole',
          status: 'fail',
          detail: `the role's trust policy: ${ROLE} refuses this identity`,
          fix:
            `ask AccountA to check the trust policy of ${ROLE}: "Principal": {"AWS": "arn:aws:iam::<this account>:root"} ` +
            '(or this identity), and an sts:ExternalId condition equal to job.source.externalId ' +
            '(which the job leaves unset); also that the role exists',
        });
      },
    );

    it('reports a failure that is no refusal as such, even for an outsider, and says to check the role ARN', async () => {
      stsMock.on(AssumeRoleCommand).rejects(awsError('MalformedPolicyDocument', 400, 'bad role'));

      const report = await diagnoseJob(deps({ functionRoleArns: [FUNCTION_ROLE] }), jobWith());

      expect(check(report, 'assumeRole')).toEqual({
        link: 'assumeRole',
        status: 'fail',
        detail: `AssumeRole into ${ROLE} failed: MalformedPolicyDocument: bad role`,
        fix: 'check job.source.roleArn',
      });
    });

    it('says there are no usable credentials when STS neither names the caller nor gives keys', async () => {
      stsMock.on(GetCallerIdentityCommand).rejects(new Error('no credentials'));
      stsMock.on(AssumeRoleCommand).resolves({});

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'assumeRole')).toEqual({
        link: 'assumeRole',
        status: 'fail',
        detail: `AssumeRole into ${ROLE} failed: STS returned no credentials`,
        fix: 'no usable AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID',
      });
    });

    it('reports, without crashing, an STS failure that is not even an Error', async () => {
      stsMock.on(AssumeRoleCommand).callsFake(() => Promise.reject(null));

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'assumeRole').detail).toBe(`AssumeRole into ${ROLE} failed: null`);
    });

    it('names the STS endpoint, not a policy, when STS does not answer', async () => {
      stsMock.on(AssumeRoleCommand).rejects(connectionRefused());

      const report = await diagnoseJob(deps({ stsEndpoint: 'http://127.0.0.1:4566' }), jobWith());
      const regional = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'assumeRole')).toEqual({
        link: 'assumeRole',
        status: 'fail',
        unreachable: true,
        detail: `STS did not answer at http://127.0.0.1:4566 (ECONNREFUSED 127.0.0.1:4566): AssumeRole into ${ROLE} was never evaluated`,
        fix:
          'check the network path to STS from here (proxy, firewall, VPC endpoint, DNS) and ' +
          'AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL if you set one',
      });
      expect(check(regional, 'assumeRole').detail).toMatch(
        /^STS did not answer at the regional STS endpoint \(/,
      );
    });
  });

  describe('the source', () => {
    it('says an empty prefix was listed and that there is nothing to read', async () => {
      sourceMock.on(ListObjectsV2Command).resolves({});

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'listSource').detail).toBe('listed s3://source-bucket/data/ (empty)');
      expect(check(report, 'getSource')).toEqual({
        link: 'getSource',
        status: 'skipped',
        detail: 'no object to test GetObject with',
      });
    });

    it('fails a refused listing with its fix, and does not test GetObject', async () => {
      sourceMock.on(ListObjectsV2Command).rejects(awsError('AccessDenied', 403));

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'listSource')).toEqual({
        link: 'listSource',
        status: 'fail',
        detail: expect.stringContaining(`S3 refused ${ROLE} listing source bucket "source-bucket"`),
        fix: expect.stringContaining('allow s3:ListBucket on arn:aws:s3:::source-bucket'),
      });
      expect(check(report, 'getSource')).toEqual({
        link: 'getSource',
        status: 'skipped',
        detail: 'not tested: listing failed',
      });
      expect(sourceMock).toReceiveCommandTimes(GetObjectCommand, 0);
      expect(report.ok).toBe(false);
    });

    it('says S3 did not refuse a listing that failed otherwise', async () => {
      sourceMock.on(ListObjectsV2Command).rejects(awsError('InternalError', 500, 'try again'));

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'listSource')).toEqual({
        link: 'listSource',
        status: 'fail',
        detail: 'cannot list source bucket "source-bucket": InternalError: try again',
        fix: 'S3 did not refuse: retry, and if it persists the error above says what failed',
      });
    });

    it('names the network, not S3, when S3 does not answer the listing', async () => {
      sourceMock.on(ListObjectsV2Command).rejects(connectionRefused());

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'listSource')).toMatchObject({
        status: 'fail',
        unreachable: true,
        fix: 'check the network path to S3 from here, and AWS_ENDPOINT_URL_S3 if you set one',
      });
    });

    it.each([
      ['named InvalidRange, with no status', awsError('InvalidRange')],
      ['a bare 416 under another name', awsError('RangeError', 416)],
    ])('passes a zero-byte object whose range is refused %s', async (_, error) => {
      sourceMock.on(GetObjectCommand).rejects(error);

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'getSource')).toEqual({
        link: 'getSource',
        status: 'ok',
        detail: 's3://source-bucket/data/part-0 is readable (empty)',
      });
    });

    it('skips an archived object, naming its class', async () => {
      sourceMock
        .on(ListObjectsV2Command)
        .resolves({ Contents: [{ Key: 'data/old', StorageClass: 'GLACIER' }] });
      sourceMock.on(GetObjectCommand).rejects(awsError('InvalidObjectState', 403));

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'getSource')).toEqual({
        link: 'getSource',
        status: 'skipped',
        detail: 's3://source-bucket/data/old is archived (GLACIER); no readable object to test with',
      });
    });

    it('fails a read refused by S3, or cut while the byte streams, naming the role and the fix', async () => {
      sourceMock.on(GetObjectCommand).resolves({
        Body: {
          transformToByteArray: () => Promise.reject(awsError('AccessDenied', 403, 'denied')),
        } as never,
      });

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'getSource')).toEqual({
        link: 'getSource',
        status: 'fail',
        detail: `${ROLE} may not read s3://source-bucket/data/part-0: AccessDenied: denied`,
        fix: "ask AccountA to allow s3:GetObject on arn:aws:s3:::source-bucket/data/* in the role's policy (and kms:Decrypt on the key, if the bucket uses SSE-KMS)",
      });
    });
  });

  describe('the destination', () => {
    it.each([
      ['named NoSuchBucket, with no status', awsError('NoSuchBucket')],
      ['a bare 404 under another name', awsError('NotFound', 404)],
    ])('says a destination bucket %s does not exist', async (_, error) => {
      destinationMock.on(CreateMultipartUploadCommand).rejects(error);

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'writeDestination')).toEqual({
        link: 'writeDestination',
        status: 'fail',
        detail: 'destination bucket "destination-bucket" does not exist',
        fix: 'check job.destination.bucket, or deploy template.yaml with DestinationBucketName empty to create one',
      });
      expect(report.ok).toBe(false);
    });

    it('says this identity may not write a bucket that refuses the upload', async () => {
      destinationMock.on(CreateMultipartUploadCommand).rejects(awsError('AccessDenied', 403, 'denied'));

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'writeDestination')).toEqual({
        link: 'writeDestination',
        status: 'fail',
        detail: 'this identity may not write s3://destination-bucket: AccessDenied: denied',
        fix: 'allow s3:PutObject on arn:aws:s3:::destination-bucket/* (template.yaml grants it to the function)',
      });
    });

    it('warns when the probe upload cannot be aborted', async () => {
      destinationMock.on(AbortMultipartUploadCommand).rejects(awsError('AccessDenied', 403, 'denied'));

      const report = await diagnoseJob(deps(), jobWith());

      expect(check(report, 'writeDestination')).toEqual({
        link: 'writeDestination',
        status: 'warn',
        detail: expect.stringMatching(
          /^started an upload to s3:\/\/destination-bucket\/\.cross-account-sync\/doctor\/nightly-[0-9a-f]{12} but could not abort it: AccessDenied: denied$/,
        ),
        fix:
          'allow s3:AbortMultipartUpload on arn:aws:s3:::destination-bucket/* (runs abort the uploads a deadline cuts); ' +
          "the bucket's lifecycle rule removes the probe's upload",
      });
      expect(report.ok).toBe(true);
    });
  });

  describe('the state table', () => {
    it('fails when STATE_TABLE_NAME is not set', async () => {
      const report = await diagnoseJob(deps({ tableName: undefined }), jobWith());

      expect(check(report, 'stateTable')).toEqual({
        link: 'stateTable',
        status: 'fail',
        detail: 'STATE_TABLE_NAME is not set',
        fix: "set STATE_TABLE_NAME to the stack's StateTableName output",
      });
      expect(dynamoMock).toReceiveCommandTimes(GetCommand, 0);
    });

    it('names the run holding an unexpired lease, and calls a lease expiring now free', async () => {
      const now = 1_800_000_000_000;
      vi.spyOn(Date, 'now').mockReturnValue(now);
      dynamoMock.on(GetCommand).resolves({ Item: { owner: 'run-7', expiresAt: now + 1 } });
      const held = await diagnoseJob(deps(), jobWith());
      expect(check(held, 'stateTable').detail).toBe(
        "table state-table answers; the job's lease is held by run run-7",
      );

      dynamoMock.on(GetCommand).resolves({ Item: { owner: 'run-7', expiresAt: now } });
      const expiring = await diagnoseJob(deps(), jobWith());
      expect(check(expiring, 'stateTable').detail).toBe("table state-table answers; the job's lease is free");
    });

    it('says a missing table does not exist, and names the permissions for one that does not answer', async () => {
      dynamoMock.on(GetCommand).rejects(awsError('ResourceNotFoundException', 400, 'no table'));
      const missing = await diagnoseJob(deps(), jobWith());
      expect(check(missing, 'stateTable')).toEqual({
        link: 'stateTable',
        status: 'fail',
        detail: 'table state-table does not exist (in this account and region)',
        fix: "set STATE_TABLE_NAME to the stack's StateTableName output, and AWS_REGION to the stack's region",
      });

      dynamoMock.on(GetCommand).rejects(awsError('AccessDeniedException', 400, 'denied'));
      const refused = await diagnoseJob(deps(), jobWith());
      expect(check(refused, 'stateTable')).toEqual({
        link: 'stateTable',
        status: 'fail',
        detail: 'table state-table did not answer: AccessDeniedException: denied',
        fix: 'allow dynamodb:GetItem, Query, PutItem, UpdateItem and DeleteItem on table state-table',
      });
      expect(statuses(refused).at(-1)).toBe('stateTable fail');
      expect(refused.ok).toBe(false);
    });
  });
});

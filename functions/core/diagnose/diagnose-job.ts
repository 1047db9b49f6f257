/**
 * The diagnose room: read-only looks at a job, for the CLI.
 *
 * - diagnose-job.ts (this file): the doctor, checking each link a run depends on and naming the fix;
 * - preview-job.ts: the plan a run would follow, without copying;
 * - read-job-status.ts: the lease, checkpoint and last runs on record.
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsCredentialIdentity } from '@smithy/types';
import { checkServerSideCopy, sourceListFailure, sourceReadFix } from '../access/preflight.js';
import { roleSessionName } from '../access/source-credentials.js';
import { grantFix } from '../copy/server-side-copy.js';
import { awsErrorCode, describeError, networkFailure } from '../errors.js';
import type { Job } from '../job.js';
import { diagnoseEventPath, type EventPathDependencies } from './event-path.js';

/** STS's shortest session: the doctor only needs the keys for a few calls. */
const PROBE_SESSION_SECONDS = 900;
/** Where the write probe goes: dot-named, beside the run manifests, so data readers skip it. */
export const PROBE_PREFIX = '.cross-account-sync/doctor/';

/** The links of the chain a run depends on, in the order a run uses them. */
export type DoctorLink =
  | 'assumeRole'
  | 'externalId'
  | 'consumerTrust'
  | 'listSource'
  | 'getSource'
  | 'serverSideCopy'
  | 'writeDestination'
  | 'stateTable'
  // A job that follows S3 events (event-path.ts).
  | 'bucketEvents'
  | 'producerRule'
  | 'busPolicy'
  | 'eventDelivery';

/** One link's verdict. `warn` works but is risky; `skipped` could not be tested (an earlier link broke). */
export interface DoctorCheck {
  link: DoctorLink;
  status: 'ok' | 'warn' | 'fail' | 'skipped';
  /** What was found, e.g. "listed s3://bucket/prefix". */
  detail: string;
  /** What to change, for `warn` and `fail`. */
  fix?: string;
  /** The link failed because an endpoint did not answer (refused, no such host, timed out): not access. */
  unreachable?: boolean;
}

/** The doctor's findings: `ok` unless some link failed. */
export interface DoctorReport {
  jobId: string;
  ok: boolean;
  /** The identity the checks ran as (GetCallerIdentity), when STS answered. */
  caller?: string;
  checks: DoctorCheck[];
}

/** The caller's clients. The table name may be missing: that is one of the findings. */
export interface DoctorDependencies {
  sts: STSClient;
  destinationS3: S3Client;
  sourceS3: (credentials: AwsCredentialIdentity, region?: string) => S3Client;
  dynamodb: DynamoDBClient;
  tableName?: string;
  /** Where STS is called, for a message when it does not answer (AWS_ENDPOINT_URL_STS, or AWS's). */
  stsEndpoint?: string;
  /**
   * The execution role(s) of the deployed sync function (the stack's SyncFunctionRoleArn output), when
   * known: a caller outside them that may still assume the source role shows the trust is account-wide.
   */
  functionRoleArns?: string[];
  /** The doctor runs inside the sync function (a doctor event), so the caller is its role. */
  callerIsFunction?: boolean;
  /** For a job that follows S3 events: what the event path's checks need (event-path.ts); without it none run. */
  eventPath?: EventPathDependencies;
}

/**
 * Checks, in order, every link a run of `job` needs and says which is broken and how to fix it: the
 * caller may assume the source role, the ExternalId is required and accepted, the role may list and get
 * the source, this identity may write the destination, and the state table answers. Its only write is a
 * multipart upload started and aborted in the destination (no object is ever stored); no lease, no state.
 */
export async function diagnoseJob(deps: DoctorDependencies, job: Job): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const caller = await callerArn(deps.sts);
  const assumed = await checkAssumeRole(deps, job, caller, checks);
  if (assumed) {
    const sourceS3 = deps.sourceS3(assumed, job.source.region);
    const firstKey = await checkListSource(sourceS3, job, checks);
    await checkGetSource(sourceS3, job, firstKey, checks);
    if (job.options.copyMethod === 'server-side') {
      checks.push(await checkServerSideRead(deps.destinationS3, job, firstKey?.Key, caller));
    }
  } else {
    const why = 'not tested: the source role could not be assumed';
    checks.push({ link: 'listSource', status: 'skipped', detail: why });
    checks.push({ link: 'getSource', status: 'skipped', detail: why });
  }
  checks.push(await checkWriteDestination(deps.destinationS3, job));
  checks.push(await checkStateTable(deps, job));
  if (job.options.events && deps.eventPath) checks.push(...(await diagnoseEventPath(deps.eventPath, job)));
  return { jobId: job.jobId, ok: checks.every((check) => check.status !== 'fail'), caller, checks };
}

async function callerArn(sts: STSClient): Promise<string | undefined> {
  // GetCallerIdentity needs no permission; it fails only without usable credentials.
  return sts
    .send(new GetCallerIdentityCommand({}))
    .then((identity) => identity.Arn)
    .catch(() => undefined);
}

async function assumeRole(sts: STSClient, job: Job, externalId: string | undefined) {
  const { Credentials: keys } = await sts.send(
    new AssumeRoleCommand({
      RoleArn: job.source.roleArn,
      ExternalId: externalId,
      RoleSessionName: roleSessionName(job.jobId, 'doctor'),
      DurationSeconds: PROBE_SESSION_SECONDS,
    }),
  );
  if (!keys?.AccessKeyId || !keys.SecretAccessKey) throw new Error('STS returned no credentials');
  return {
    accessKeyId: keys.AccessKeyId,
    secretAccessKey: keys.SecretAccessKey,
    sessionToken: keys.SessionToken,
    expiration: keys.Expiration,
  };
}

function isAccessDenied(error: unknown): boolean {
  const { name, status } = awsErrorCode(error);
  return name === 'AccessDenied' || name === 'AccessDeniedException' || status === 403;
}

/**
 * AWS words a refusal by the caller's own policy "... because no identity-based policy allows ..." or
 * "... with an explicit deny in an identity-based policy"; a trust policy that refuses (wrong principal
 * or wrong ExternalId: STS does not say which) gets no such reason.
 */
function refusedByCallerPolicy(error: unknown): boolean {
  // Stryker disable next-line StringLiteral: the fallback is only tested against /identity-based policy/, which no replacement text without that phrase matches either
  return /identity-based policy/i.test((error as Error)?.message ?? '');
}

async function checkAssumeRole(
  deps: DoctorDependencies,
  job: Job,
  caller: string | undefined,
  checks: DoctorCheck[],
): Promise<AwsCredentialIdentity | undefined> {
  const { roleArn, externalId } = job.source;
  const who = caller ?? 'this identity';
  let credentials: AwsCredentialIdentity;
  try {
    credentials = await assumeRole(deps.sts, job, externalId);
  } catch (error) {
    if (refusedAsRecommended(error, caller, deps)) {
      checks.push(...refusedOutsider(job, caller));
      return undefined;
    }
    checks.push(assumeRoleFailure(error, job, caller, deps.stsEndpoint));
    checks.push({
      link: 'externalId',
      status: 'skipped',
      detail: refusedByCallerPolicy(error)
        ? 'not tested: the caller may not call AssumeRole on the role'
        : 'not told apart: STS refuses a wrong ExternalId and an untrusted caller alike',
    });
    checks.push({
      link: 'consumerTrust',
      status: 'skipped',
      detail: 'not tested: the source role could not be assumed',
    });
    return undefined;
  }
  checks.push({ link: 'assumeRole', status: 'ok', detail: `${who} assumed ${roleArn}` });

  // A role that also opens without the ExternalId lets anyone it trusts be tricked into using it. Only a
  // refusal shows that it does not: a throttled or failed request shows nothing.
  const withoutExternalId: boolean | Error =
    externalId === undefined ||
    (await assumeRole(deps.sts, job, undefined).then(
      () => true,
      (error: unknown) => (isAccessDenied(error) ? false : (error as Error)),
    ));
  if (withoutExternalId instanceof Error) {
    checks.push({
      link: 'externalId',
      status: 'skipped',
      detail:
        'not told: assuming the role without the ExternalId failed, but not with a refusal ' +
        `(${describeError(withoutExternalId)}); run doctor again`,
    });
  } else if (!withoutExternalId) {
    checks.push({
      link: 'externalId',
      status: 'ok',
      detail: 'the role requires the ExternalId, and accepts the job’s',
    });
  } else {
    checks.push({
      link: 'externalId',
      status: 'warn',
      detail: externalId
        ? 'the role can also be assumed WITHOUT an ExternalId: a confused-deputy risk'
        : 'the job sets no ExternalId and the role does not require one: a confused-deputy risk',
      fix:
        `ask AccountA to add "Condition": {"StringEquals": {"sts:ExternalId": "<shared value>"}} to the trust ` +
        `policy of ${roleArn} (source-account/template.yaml does)` +
        (externalId ? '' : ', and set job.source.externalId to that value'),
    });
  }
  checks.push(consumerTrustCheck(job, caller, deps));
  return credentials;
}

/**
 * The role ARN behind an assumed-role session (`arn:aws:sts::<id>:assumed-role/<name>/<session>`), which
 * is what a trust policy's aws:PrincipalArn sees; a user's or the root's ARN stays as it is. The session
 * ARN drops the role's path, so roles are compared by account and name.
 */
function principalName(arn: string): { account: string; role?: string } {
  const [, , service, , account = '', resource = ''] = arn.split(':');
  const [kind, name] = resource.split('/');
  if (service === 'sts' && kind === 'assumed-role') return { account, role: name };
  if (service === 'iam' && kind === 'role') return { account, role: resource.split('/').at(-1) };
  return { account };
}

function isFunctionRole(caller: string, functionRoleArns: string[]): boolean {
  const who = principalName(caller);
  return functionRoleArns.some((arn) => {
    const role = principalName(arn);
    return who.role !== undefined && role.account === who.account && role.role === who.role;
  });
}

/**
 * The producer should trust only the sync function's role (source-account/template.yaml's
 * ConsumerPrincipalArns, an aws:PrincipalArn condition), not every identity of this account. AccountA's
 * trust policy cannot be read from here, but it shows itself: an identity that is not the function's
 * role (no IAM user ever is one) and still assumed the role is proof the trust is broader.
 */
function consumerTrustCheck(
  job: Job,
  caller: string | undefined,
  { functionRoleArns, callerIsFunction }: DoctorDependencies,
): DoctorCheck {
  const { roleArn } = job.source;
  if (callerIsFunction) {
    return {
      link: 'consumerTrust',
      status: 'ok',
      detail: `run by the sync function, as ${caller ?? 'its role'}, which the role must trust`,
    };
  }
  if (caller === undefined) {
    return {
      link: 'consumerTrust',
      status: 'skipped',
      detail: 'not told: STS did not say who the caller is',
    };
  }
  const known = functionRoleArns !== undefined && functionRoleArns.length > 0;
  if (known && isFunctionRole(caller, functionRoleArns)) {
    return {
      link: 'consumerTrust',
      status: 'ok',
      detail: `${caller} is the sync function's role, which the role must trust`,
    };
  }
  if (!known && principalName(caller).role !== undefined) {
    return {
      link: 'consumerTrust',
      status: 'skipped',
      detail: `not told: ${caller} is a role, and the sync function's role is not known here (doctor --stack <stack> knows it)`,
    };
  }
  const functionRole = known ? functionRoleArns.join(',') : '<SyncFunctionRoleArn output>';
  return {
    link: 'consumerTrust',
    status: 'warn',
    detail:
      `${caller} is not the sync function's role and could still assume ${roleArn}: its trust is broader ` +
      `than recommended (any identity of account ${principalName(caller).account} that its IAM lets call sts:AssumeRole)`,
    fix:
      `ask AccountA to deploy source-account/template.yaml with ConsumerPrincipalArns=${functionRole}, ` +
      'so that the role trusts only the sync function (an aws:PrincipalArn condition)',
  };
}

/**
 * The trust policy refused a caller that is not the sync function's role: what a role trusting only the
 * function (ConsumerPrincipalArns) does, so not a broken link. (STS gives a wrong ExternalId the same
 * refusal: the function's own check, `doctor --stack`, tells that apart.)
 */
function refusedAsRecommended(
  error: unknown,
  caller: string | undefined,
  { functionRoleArns, callerIsFunction }: DoctorDependencies,
): caller is string {
  if (callerIsFunction || caller === undefined || !functionRoleArns?.length) return false;
  return isAccessDenied(error) && !refusedByCallerPolicy(error) && !isFunctionRole(caller, functionRoleArns);
}

function refusedOutsider(job: Job, caller: string): DoctorCheck[] {
  const why = `not tested as ${caller}: the source role refused it`;
  return [
    {
      link: 'assumeRole',
      status: 'skipped',
      detail:
        `${job.source.roleArn} refuses ${caller}, which is not the sync function's role: as it should when ` +
        "AccountA trusts only the function (ConsumerPrincipalArns); the function's own check tells whether it gets in",
    },
    { link: 'externalId', status: 'skipped', detail: why },
    {
      link: 'consumerTrust',
      status: 'ok',
      detail: `the role refused ${caller}, an identity that is not the sync function's role`,
    },
  ];
}

function assumeRoleFailure(
  error: unknown,
  job: Job,
  caller: string | undefined,
  stsEndpoint = 'the regional STS endpoint',
): DoctorCheck {
  const { roleArn, externalId } = job.source;
  const who = caller ?? 'this identity';
  const network = networkFailure(error);
  if (network !== undefined) {
    // No answer says nothing about credentials or the role: name the endpoint, not a policy.
    return {
      link: 'assumeRole',
      status: 'fail',
      unreachable: true,
      detail: `STS did not answer at ${stsEndpoint} (${network}): AssumeRole into ${roleArn} was never evaluated`,
      fix:
        'check the network path to STS from here (proxy, firewall, VPC endpoint, DNS) and ' +
        'AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL if you set one',
    };
  }
  if (!isAccessDenied(error)) {
    return {
      link: 'assumeRole',
      status: 'fail',
      detail: `AssumeRole into ${roleArn} failed: ${describeError(error)}`,
      fix: caller
        ? 'check job.source.roleArn'
        : 'no usable AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID',
    };
  }
  if (refusedByCallerPolicy(error)) {
    return {
      link: 'assumeRole',
      status: 'fail',
      detail: `the caller's permission: ${who} may not call sts:AssumeRole on ${roleArn}`,
      fix:
        `allow "sts:AssumeRole" on "${roleArn}" in the policy of ${who} ` +
        '(template.yaml grants it for SourceRoleArn and SourceRoleArns)',
    };
  }
  const account = caller?.split(':')[4] ?? '<this account>';
  return {
    link: 'assumeRole',
    status: 'fail',
    detail: `the role's trust policy: ${roleArn} refuses ${who}${externalId ? ' with this ExternalId' : ''}`,
    fix:
      `ask AccountA to check the trust policy of ${roleArn}: "Principal": {"AWS": "arn:aws:iam::${account}:root"} ` +
      `(or ${who}), and an sts:ExternalId condition equal to job.source.externalId ` +
      `(${externalId ? `"${externalId}"` : 'which the job leaves unset'}); also that the role exists`,
  };
}

async function checkListSource(s3: S3Client, job: Job, checks: DoctorCheck[]) {
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

async function checkGetSource(
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
async function checkServerSideRead(
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

/**
 * Proves s3:PutObject (and, on an SSE-KMS bucket, the data key) without leaving an object behind: a
 * multipart upload is started and aborted, never completed. No s3:DeleteObject is needed, which the
 * function's role has only for mirror jobs, so the same probe serves the doctor run by the function.
 */
async function checkWriteDestination(s3: S3Client, job: Job): Promise<DoctorCheck> {
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

async function checkStateTable(deps: DoctorDependencies, job: Job): Promise<DoctorCheck> {
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

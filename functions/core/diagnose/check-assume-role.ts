/**
 * The doctor's first links: who the caller is, whether it may assume the source role, and whether the
 * role requires the job's ExternalId; a refusal is named as the caller's policy, the role's trust, or an
 * STS that did not answer.
 */
import { AssumeRoleCommand, GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity } from '@smithy/types';
import { roleSessionName } from '../access/source-credentials.js';
import { awsErrorCode, describeError, networkFailure } from '../errors.js';
import type { Job } from '../job.js';
import { consumerTrustCheck, isFunctionRole } from './consumer-trust.js';
import type { DoctorCheck, DoctorDependencies } from './diagnose-job.js';

/** STS's shortest session: the doctor only needs the keys for a few calls. */
const PROBE_SESSION_SECONDS = 900;

/** The caller's ARN (GetCallerIdentity), or undefined when it has no usable credentials. */
export async function callerArn(sts: STSClient): Promise<string | undefined> {
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

/**
 * The assumeRole, externalId and consumerTrust links; the source role's credentials when it was assumed.
 */
export async function checkAssumeRole(
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

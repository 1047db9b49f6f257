/**
 * The consumerTrust link: whether AccountA's source role trusts only the sync function's role, told from
 * who the caller is and whether it got in.
 */
import type { Job } from '../job.js';
import type { DoctorCheck, DoctorDependencies } from './diagnose-job.js';

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

/** Whether the caller is (a session of) one of the sync function's roles. */
export function isFunctionRole(caller: string, functionRoleArns: string[]): boolean {
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
export function consumerTrustCheck(
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

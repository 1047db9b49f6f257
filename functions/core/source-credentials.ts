import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { AssumeRoleError, awsErrorCode } from './errors.js';
import type { Job } from './job.js';

/** Fetch new credentials this long before the old ones expire, so no request is signed with stale keys. */
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60 * 1000;
/** STS caps RoleSessionName at 64 characters. */
const MAX_SESSION_NAME = 64;

/** `sync-<job>-<run>`: shows up in AccountA's CloudTrail, so the producer can see who read what. */
export function roleSessionName(jobId: string, runId: string): string {
  return `sync-${jobId}-${runId}`.slice(0, MAX_SESSION_NAME).replace(/[^\w+=,.@-]/g, '-');
}

/**
 * Credentials for reading the source: AssumeRole into the job's role with its ExternalId, cached and
 * refreshed before they expire, so runs longer than one session keep working.
 *
 * @param sts AccountB's STS client (the caller's own identity).
 */
export function sourceCredentials(sts: STSClient, job: Job, runId: string): AwsCredentialIdentityProvider {
  let current: Promise<AwsCredentialIdentity> | undefined;
  const assume = async (): Promise<AwsCredentialIdentity> => {
    const { roleArn, externalId } = job.source;
    try {
      const { Credentials: credentials } = await sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          ExternalId: externalId,
          RoleSessionName: roleSessionName(job.jobId, runId),
          DurationSeconds: job.options.sessionDurationSeconds,
        }),
      );
      if (!credentials?.AccessKeyId || !credentials.SecretAccessKey) {
        throw new AssumeRoleError(`STS returned no credentials for ${roleArn}`);
      }
      return {
        accessKeyId: credentials.AccessKeyId,
        secretAccessKey: credentials.SecretAccessKey,
        sessionToken: credentials.SessionToken,
        expiration: credentials.Expiration,
      };
    } catch (error) {
      throw explainAssumeRoleFailure(error, job);
    }
  };
  return async () => {
    const cached = current && (await current.catch(() => undefined));
    const expiresAt = cached?.expiration?.getTime() ?? 0;
    if (!cached || expiresAt - Date.now() < REFRESH_BEFORE_EXPIRY_MS) {
      current = assume();
      return current;
    }
    return cached;
  };
}

function explainAssumeRoleFailure(error: unknown, job: Job): Error {
  if (error instanceof AssumeRoleError) return error;
  const { name, status } = awsErrorCode(error);
  const { roleArn, externalId } = job.source;
  if (name === 'AccessDenied' || status === 403) {
    return new AssumeRoleError(
      `cannot assume ${roleArn} (AccessDenied). Check, in this order: ` +
        `1) the role exists and its trust policy names this account ("Principal": {"AWS": "arn:aws:iam::<this account>:root"}); ` +
        `2) job.source.externalId ${externalId ? 'matches' : 'is set to'} the role's sts:ExternalId condition; ` +
        `3) this identity's policy allows sts:AssumeRole on ${roleArn}.`,
      { cause: error },
    );
  }
  if (name === 'ValidationError') {
    return new AssumeRoleError(
      `STS rejected the AssumeRole request for ${roleArn}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return new AssumeRoleError(
    `AssumeRole into ${roleArn} failed: ${(error as Error).message ?? String(error)}`,
    {
      cause: error,
    },
  );
}

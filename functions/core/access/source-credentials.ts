import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { AssumeRoleError, awsErrorCode } from '../errors.js';
import type { Job } from '../job.js';

/** Fetch new credentials this long before the old ones expire, so no request is signed with stale keys. */
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60 * 1000;
/** STS caps RoleSessionName at 64 characters. */
const MAX_SESSION_NAME = 64;

/** `sync-<job>-<run>`: shows up in AccountA's CloudTrail, so the producer can see who read what. */
export function roleSessionName(jobId: string, runId: string): string {
  return `sync-${jobId}-${runId}`.slice(0, MAX_SESSION_NAME).replace(/[^\w+=,.@-]/g, '-');
}

/** The source role's credentials, which a caller can have renewed when S3 refuses them. */
export interface SourceCredentials extends AwsCredentialIdentityProvider {
  /**
   * Tells the SDK this provider caches by itself. Without it the S3 client memoizes the identity until
   * its stated expiry and a forced renewal would never reach it.
   */
  memoized: true;
  /** Which session the provider hands out now; a caller notes it before a request. */
  generation(): number;
  /**
   * S3 refused the credentials of `generation` (ExpiredToken, InvalidToken, …): the next call assumes
   * the role again. Concurrent copies that saw the same refusal cause one AssumeRole, not one each.
   */
  renewAfterRefusal(generation: number): void;
}

/**
 * Credentials for reading the source: AssumeRole into the job's role with its ExternalId, cached and
 * refreshed before they expire, so runs longer than one session keep working, and renewed at once when
 * S3 refuses them earlier (see SourceCredentials.renewAfterRefusal).
 *
 * @param sts AccountB's STS client (the caller's own identity).
 */
export function sourceCredentials(sts: STSClient, job: Job, runId: string): SourceCredentials {
  let current: Promise<AwsCredentialIdentity> | undefined;
  let generation = 0;
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
  const provide = async (): Promise<AwsCredentialIdentity> => {
    const pending = current;
    const cached = pending && (await pending.catch(() => undefined));
    const expiresAt = cached?.expiration?.getTime() ?? 0;
    if (!cached || expiresAt - Date.now() < REFRESH_BEFORE_EXPIRY_MS) {
      // Concurrent callers that found the same stale session share one AssumeRole.
      if (current === pending) current = assume();
      return current as Promise<AwsCredentialIdentity>;
    }
    return cached;
  };
  return Object.assign(provide, {
    memoized: true as const,
    generation: () => generation,
    renewAfterRefusal: (refused: number) => {
      if (refused !== generation) return; // another copy already renewed them
      generation += 1;
      current = undefined;
    },
  });
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

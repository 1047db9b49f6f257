import type { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { type SyncDependencies, syncJob } from '../../functions/core/run/sync-job.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { isolatedJob, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, producer, consumer } = useSandbox();

/**
 * The production dependencies (fresh clients, so nothing leaks into other tests), counting AssumeRole
 * calls, with the first assumed session refused by S3 from the first object copy on: what S3 does to a
 * revoked session, or one it judges expired before its stated Expiration. moto, with auth enforced,
 * answers a wrong session token with InvalidToken.
 */
function revokingFirstSession(): { deps: SyncDependencies; assumeRoles: () => number } {
  const base = dependenciesFromEnvironment(consoleLogger('error'));
  let assumeRoles = 0;
  base.sts.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'AssumeRoleCommand') assumeRoles += 1;
      return next(args);
    },
    { step: 'initialize' },
  );
  const sourceS3 = (credentials: AwsCredentialIdentityProvider, region?: string): S3Client => {
    let first: string | undefined;
    let revoked = false;
    const refused = Object.assign(
      async (options?: Record<string, unknown>): Promise<AwsCredentialIdentity> => {
        const identity = await credentials(options);
        first ??= identity.accessKeyId;
        return revoked && identity.accessKeyId === first
          ? { ...identity, sessionToken: 'revoked' }
          : identity;
      },
      { memoized: true },
    );
    const client = base.sourceS3(refused, region);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        // A whole-object GET is a copy; preflight's read carries a Range.
        const input = args.input as { Range?: string };
        if (context.commandName === 'GetObjectCommand' && input.Range === undefined) revoked = true;
        return next(args);
      },
      { step: 'initialize' },
    );
    return client;
  };
  return { deps: { ...base, sourceS3 }, assumeRoles: () => assumeRoles };
}

describe('source credentials that S3 refuses before they expire', () => {
  it('are renewed with exactly one more AssumeRole, and every object is copied', async () => {
    // Prepare: five objects, copied concurrently, all meeting the refused session.
    const job = isolatedJob(sandbox, 'heal');
    const names = ['a', 'b', 'c', 'd', 'e'];
    for (const name of names)
      await putObject(producer, sandbox.accountA.bucket, `${job.source.prefix}${name}`, name);
    const { deps, assumeRoles } = revokingFirstSession();

    // Act
    const summary = await syncJob(deps, job);

    // Assess
    expect(summary).toMatchObject({ copied: names.length, failed: 0 });
    expect(assumeRoles()).toBe(2);
    expect(await listKeys(consumer, job.destination.bucket, job.destination.prefix)).toHaveLength(
      names.length,
    );
  });
});

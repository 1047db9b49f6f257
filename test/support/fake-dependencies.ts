import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { type Job, parseJob } from '../../functions/core/job.js';
import type { SyncDependencies } from '../../functions/core/run/sync-job.js';
import { StateStore } from '../../functions/core/state/state-store.js';
import type { SandboxInfo } from '../../sandbox/sandbox.js';

const keys = { accessKeyId: 'fake', secretAccessKey: 'fake' };

/**
 * The sync's dependencies with S3 and STS in-process (S3 answered by a FakeS3 created in the same test
 * file, STS handing out dummy credentials) and DynamoDB real: the sandbox's DynamoDB Local.
 */
export function fakeS3Dependencies(sandbox: SandboxInfo): SyncDependencies {
  mockClient(STSClient)
    .on(AssumeRoleCommand)
    .resolves({
      Credentials: {
        AccessKeyId: 'a',
        SecretAccessKey: 'b',
        SessionToken: 'c',
        Expiration: new Date(Date.now() + 3.6e6),
      },
    });
  const s3 = new S3Client({ region: 'us-east-1', credentials: keys });
  return {
    sts: new STSClient({ region: 'us-east-1', credentials: keys }),
    destinationS3: s3,
    sourceS3: () => s3,
    state: new StateStore(
      new DynamoDBClient({ region: sandbox.region, endpoint: sandbox.dynamodbEndpoint, credentials: keys }),
      sandbox.accountB.tableName,
    ),
  };
}

/**
 * Jobs over FakeS3's buckets `source` and `destination`, each under its own prefix (`<name>-<n>-<time>/`,
 * copied to `copy/<id>/`), so the tests of one file never see each other's objects or state.
 */
export function fakeS3Jobs(name: string): {
  SOURCE: string;
  DESTINATION: string;
  newJob: (options?: Record<string, unknown>) => Job;
  at: (job: Job, key: string) => string;
} {
  const SOURCE = 'source';
  const DESTINATION = 'destination';
  let jobs = 0;
  const newJob = (options: Record<string, unknown> = {}): Job => {
    jobs += 1;
    const id = `${name}-${jobs}-${Date.now()}`;
    return parseJob({
      jobId: id,
      source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: SOURCE, prefix: `${id}/` },
      destination: { bucket: DESTINATION, prefix: `copy/${id}/` },
      options,
    });
  };
  return { SOURCE, DESTINATION, newJob, at: (job, key) => `${job.source.prefix}${key}` };
}

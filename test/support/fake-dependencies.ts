import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
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

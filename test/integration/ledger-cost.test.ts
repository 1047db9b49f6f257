/**
 * What an incremental run costs: a no-change run over a few thousand objects reads the ledger with
 * Query, billed per 4 KB read (eventually consistent: 0.5 unit per 4 KB), and lists at one request per
 * 1,000 keys. S3 is the in-process FakeS3 with S3's 1,000-key pages; DynamoDB is the sandbox's DynamoDB
 * Local, which reports ConsumedCapacity as DynamoDB does.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, inject, it } from 'vitest';
import { parseJob } from '../../functions/core/job.js';
import { StateStore } from '../../functions/core/state-store.js';
import { type SyncDependencies, syncJob } from '../../functions/core/sync-job.js';
import { FakeS3 } from '../support/fake-s3.js';

const OBJECTS = 3000;
/** GetItem per object would cost this much per object (eventually consistent, item under 4 KB). */
const GET_ITEM_UNITS = 0.5;

describe('cost of a run that finds nothing to copy', () => {
  it('reads the ledger per 4 KB, not per object, and lists once per 1,000 keys', async () => {
    // Prepare: a source of OBJECTS small objects, all copied once.
    const sandbox = inject('sandbox');
    const fake = new FakeS3();
    fake.pageSize = 1000;
    fake.createBucket('source');
    fake.createBucket('destination');
    for (let i = 0; i < OBJECTS; i += 1) {
      fake.put(
        'source',
        `data/2026/11/29/part-${String(i).padStart(5, '0')}.json`,
        Buffer.from(`{"row":${i}}`),
      );
    }
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
    const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const deps: SyncDependencies = {
      sts: new STSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }),
      destinationS3: s3,
      sourceS3: () => s3,
      state: new StateStore(
        new DynamoDBClient({
          region: sandbox.region,
          endpoint: sandbox.dynamodbEndpoint,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }),
        sandbox.accountB.tableName,
      ),
    };
    const job = parseJob({
      jobId: `cost-${Date.now()}`,
      source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'source', prefix: 'data/' },
      destination: { bucket: 'destination' },
      options: { concurrency: 32 },
    });
    const first = await syncJob(deps, job);
    expect(first.copied).toBe(OBJECTS);

    // Act
    const rerun = await syncJob(deps, job);

    // Assess
    const perThousand = (rerun.readCapacityUnits / OBJECTS) * 1000;
    console.log(
      `no-change run over ${OBJECTS} objects: ${rerun.readCapacityUnits} read units ` +
        `(${perThousand.toFixed(1)} per 1,000 objects; GetItem per object would be ${GET_ITEM_UNITS * 1000}), ` +
        `${rerun.listRequests} LIST requests`,
    );
    expect(rerun).toMatchObject({ copied: 0, skipped: OBJECTS, failed: 0 });
    expect(rerun.listRequests).toBe(Math.ceil(OBJECTS / 1000));
    // Ledger items are a few hundred bytes: a Query returns ~10-20 per 4 KB read.
    expect(rerun.readCapacityUnits).toBeGreaterThan(0);
    expect(rerun.readCapacityUnits).toBeLessThan((OBJECTS * GET_ITEM_UNITS) / 5);
  }, 300_000);
});

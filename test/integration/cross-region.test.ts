/**
 * Buckets in another region than the clients are configured for (issue 10), over real HTTP: the sandbox
 * answers a request signed for the wrong region as S3 does (301 PermanentRedirect naming the bucket's
 * region), and the sync follows the bucket's region on both sides.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CreateBucketCommand, HeadBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { createSourceRole, isolatedJob, listKeys, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer } = useSandbox();
const FAR = 'eu-west-1';
const suffix = randomBytes(3).toString('hex');
const SOURCE = `region-test-source-${suffix}`;
const DESTINATION = `accountb-region-test-${suffix}`;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const producerFar = sandboxS3({ ...sandbox, region: FAR }, sandbox.accountA.admin);

beforeAll(async () => {
  await producerFar.send(
    new CreateBucketCommand({ Bucket: SOURCE, CreateBucketConfiguration: { LocationConstraint: FAR } }),
  );
  await sandboxS3({ ...sandbox, region: FAR }, sandbox.accountB.admin).send(
    new CreateBucketCommand({ Bucket: DESTINATION, CreateBucketConfiguration: { LocationConstraint: FAR } }),
  );
});

describe('buckets in another region', () => {
  it("the sandbox answers a request signed for another region 301 PermanentRedirect naming the bucket's region, as S3 does", async () => {
    const listing = await producer
      .send(new ListObjectsV2Command({ Bucket: SOURCE }))
      .catch((e: unknown) => e);
    const head = await producer.send(new HeadBucketCommand({ Bucket: SOURCE })).catch((e: unknown) => e);

    for (const refused of [listing, head]) {
      expect(refused).toMatchObject({ $metadata: { httpStatusCode: 301 } });
      expect(
        (refused as { $response?: { headers: Record<string, string> } }).$response?.headers,
      ).toMatchObject({ 'x-amz-bucket-region': FAR });
    }
    expect(listing).toMatchObject({ name: 'PermanentRedirect' });
    expect(await producerFar.send(new ListObjectsV2Command({ Bucket: SOURCE }))).toMatchObject({
      KeyCount: 0,
    });
    expect(await producerFar.send(new HeadBucketCommand({ Bucket: SOURCE }))).toMatchObject({
      BucketRegion: FAR,
    });
  });

  it('syncs a source and a destination in another region than the function, with no region in the job', async () => {
    const roleArn = await createSourceRole(sandbox, 'far', { bucket: SOURCE });
    const base = isolatedJob(sandbox, 'far');
    const job = {
      ...base,
      source: { ...base.source, roleArn, bucket: SOURCE },
      destination: { ...base.destination, bucket: DESTINATION },
    };
    const small = randomBytes(2_000);
    const big = randomBytes(9 * 1024 * 1024 + 3);
    await putObject(producerFar, SOURCE, `${job.source.prefix}a.bin`, small);
    await putObject(producerFar, SOURCE, `${job.source.prefix}b.bin`, big);

    const regions: (string | undefined)[] = [];
    const sourceS3: typeof deps.sourceS3 = (credentials, region) => {
      regions.push(region);
      return deps.sourceS3(credentials, region);
    };

    const summary = await syncJob({ ...deps, sourceS3 }, job);

    expect(summary).toMatchObject({ copied: 2, failed: 0 });
    // The source client is rebuilt in the bucket's region, so object requests are not redirected.
    expect(regions.at(-1)).toBe(FAR);
    const far = sandboxS3({ ...sandbox, region: FAR }, sandbox.accountB.admin);
    expect(sha256(await readObject(far, DESTINATION, `${job.destination.prefix}a.bin`))).toBe(sha256(small));
    expect(sha256(await readObject(far, DESTINATION, `${job.destination.prefix}b.bin`))).toBe(sha256(big));
    expect(await listKeys(far, DESTINATION, '.cross-account-sync/')).not.toEqual([]);
  });
});

describe('regions named in the job', () => {
  it('reads and writes through clients built in the regions the job names', async () => {
    const roleArn = await createSourceRole(sandbox, 'far-named', { bucket: SOURCE });
    const base = isolatedJob(sandbox, 'far-named');
    const job = {
      ...base,
      source: { ...base.source, roleArn, bucket: SOURCE, region: FAR },
      destination: { ...base.destination, bucket: DESTINATION, region: FAR },
    };
    const data = randomBytes(3_000);
    await putObject(producerFar, SOURCE, `${job.source.prefix}c.bin`, data);
    const built: string[] = [];
    const sourceS3: typeof deps.sourceS3 = (credentials, region) => {
      built.push(`source ${region}`);
      return deps.sourceS3(credentials, region);
    };
    const destinationS3In = (region: string) => {
      built.push(`destination ${region}`);
      return deps.destinationS3In?.(region) ?? expect.fail('the production wiring builds regional clients');
    };

    const summary = await syncJob({ ...deps, sourceS3, destinationS3In }, job);

    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    expect(built).toEqual([`destination ${FAR}`, `source ${FAR}`]);
    const far = sandboxS3({ ...sandbox, region: FAR }, sandbox.accountB.admin);
    expect(sha256(await readObject(far, DESTINATION, `${job.destination.prefix}c.bin`))).toBe(sha256(data));
  });
});

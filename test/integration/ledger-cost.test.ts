import { describe, expect, inject, it } from 'vitest';
import { parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { fakeS3Dependencies } from '../support/fake-dependencies.js';
import { FakeS3 } from '../support/fake-s3.js';

const OBJECTS = 10_000;
/** Issue 9's bound: a no-change run reads at most this many units per 1,000 unchanged objects. */
const MAX_UNITS_PER_THOUSAND = 25;
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
    const deps = fakeS3Dependencies(sandbox);
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
    expect(perThousand).toBeLessThanOrEqual(MAX_UNITS_PER_THOUSAND);
  }, 600_000);
});

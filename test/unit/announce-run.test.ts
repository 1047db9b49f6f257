import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { parseJob } from '../../functions/core/job.js';
import { announceRun } from '../../functions/core/report/announce-run.js';
import type { RunSummary } from '../../functions/core/run/sync-types.js';

const job = parseJob({
  jobId: 'nightly',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'source-bucket' },
  destination: { bucket: 'destination-bucket' },
});

const summary = {
  jobId: 'nightly',
  copied: 3,
  bytes: 300,
  failed: 1,
  deferred: 2,
  archived: 4,
  durationMs: 1200,
  replicationLagSeconds: 42,
  backlogObjects: 3,
  backlogBytes: 3072,
} as RunSummary;

const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('announceRun', () => {
  it('emits each metric for all jobs (service) and for this job (service, jobId), backlog included', async () => {
    // Prepare: Powertools' own Metrics, as the Lambda uses it, read back as the EMF document it writes.
    const metrics = new Metrics({ namespace: 'CrossAccountSync', serviceName: 'cross-account-sync' });

    // Act
    await announceRun({ metrics }, job, summary, silent);
    const emf = metrics.serializeMetrics();

    // Assess
    const [directive] = emf._aws.CloudWatchMetrics;
    expect(directive?.Dimensions).toEqual([['service'], ['service', 'jobId']]);
    expect(directive?.Metrics.map((metric) => metric.Name)).toEqual(
      expect.arrayContaining([
        'objectsCopied',
        'objectsFailed',
        'objectsArchived',
        'replicationLag',
        'backlogObjects',
        'backlogBytes',
      ]),
    );
    expect(emf).toMatchObject({
      service: 'cross-account-sync',
      jobId: 'nightly',
      objectsArchived: 4,
      replicationLag: 42,
      backlogObjects: 3,
      backlogBytes: 3072,
    });
  });
});

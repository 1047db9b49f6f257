import {
  type _Object,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { previewJob } from '../../functions/core/diagnose/preview-job.js';
import { parseJob } from '../../functions/core/job.js';
import type { LedgerEntry, StateStore } from '../../functions/core/state/state-store.js';

const s3Mock = mockClient(S3Client);
const stsMock = mockClient(STSClient);
const job = parseJob({
  jobId: 'nightly',
  source: {
    roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole',
    bucket: 'source-bucket',
    prefix: 'in/',
    region: 'us-east-1',
  },
  destination: { bucket: 'destination-bucket', prefix: 'out/' },
  options: { mirror: true },
});
const at = new Date('2026-01-01T00:00:00.000Z');

/** A source object as S3 lists it. */
const listed = (key: string, etag: string, size: number, storageClass = 'STANDARD'): _Object => ({
  Key: `in/${key}`,
  ETag: etag,
  Size: size,
  LastModified: at,
  StorageClass: storageClass as _Object['StorageClass'],
});
/** A ledger entry of a copy of that version (or of a failed attempt, without etag). */
const copied = (key: string, etag?: string, size = 10): LedgerEntry => ({
  key: `in/${key}`,
  etag,
  size,
  lastModified: at.toISOString(),
  destinationKey: `out/${key}`,
});

function deps(ledger: LedgerEntry[], runIds: string[] = []) {
  const state = {
    async *ledger(jobId: string) {
      runIds.push(jobId);
      yield* ledger;
    },
  } as unknown as StateStore;
  return {
    sts: new STSClient({ region: 'us-east-1' }),
    destinationS3: new S3Client({ region: 'us-east-1' }),
    state,
    sourceS3: () => new S3Client({ region: 'us-east-1' }),
  };
}

describe('previewJob', () => {
  beforeEach(() => {
    s3Mock.reset();
    stsMock.reset();
    stsMock.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'AKIA',
        SecretAccessKey: 'secret',
        SessionToken: 't',
        Expiration: new Date(Date.now() + 3_600_000),
      },
    });
    s3Mock.on(GetObjectCommand).resolves({});
    s3Mock.on(HeadBucketCommand).resolves({});
    s3Mock.on(ListObjectsV2Command).resolves({
      Contents: [
        listed('a-new', '"n"', 100),
        listed('b-changed', '"c2"', 200),
        listed('c-retry', '"r"', 300),
        listed('d-same', '"s"', 10),
        listed('e-cold', '"g"', 50, 'GLACIER'),
      ],
    });
  });

  const ledger = [
    copied('b-changed', '"c1"'),
    copied('c-retry'),
    copied('d-same', '"s"'),
    copied('z-gone', '"z"'),
  ];

  it('counts every action, the copies by reason and their bytes, and lists what a run would act on', async () => {
    const preview = await previewJob(deps(ledger), job);

    expect(preview).toEqual({
      jobId: 'nightly',
      totals: {
        listed: 5,
        copy: 3,
        new: 1,
        changed: 1,
        retry: 1,
        unchanged: 1,
        archived: 1,
        deletedAtSource: 1,
        bytes: 600,
      },
      mirror: true,
      items: [
        {
          key: 'in/a-new',
          action: 'copy',
          reason: 'new',
          destinationKey: 'out/a-new',
          size: 100,
          etag: '"n"',
          previousEtag: undefined,
        },
        {
          key: 'in/b-changed',
          action: 'copy',
          reason: 'changed',
          destinationKey: 'out/b-changed',
          size: 200,
          etag: '"c2"',
          previousEtag: '"c1"',
        },
        {
          key: 'in/c-retry',
          action: 'copy',
          reason: 'retry',
          destinationKey: 'out/c-retry',
          size: 300,
          etag: '"r"',
          previousEtag: undefined,
        },
        { key: 'in/e-cold', action: 'archived', size: 50, storageClass: 'GLACIER' },
        { key: 'in/z-gone', action: 'deletedAtSource', destinationKey: 'out/z-gone' },
      ],
      truncated: false,
      listRequests: 1,
    });
  });

  it('keeps the first `limit` items and says the list is truncated, while the totals count them all', async () => {
    const preview = await previewJob(deps(ledger), job, { limit: 2 });

    expect(preview.items.map((item) => item.key)).toEqual(['in/a-new', 'in/b-changed']);
    expect(preview.truncated).toBe(true);
    expect(preview.totals).toMatchObject({ listed: 5, copy: 3, deletedAtSource: 1 });
  });

  it('is not truncated when the items exactly fill the limit', async () => {
    const preview = await previewJob(deps(ledger), job, { limit: 5 });

    expect(preview.items).toHaveLength(5);
    expect(preview.truncated).toBe(false);
  });

  it('assumes the source role with a "plan" session unless given a run id, and reads the job’s ledger', async () => {
    const jobIds: string[] = [];
    await previewJob(deps([], jobIds), job);
    expect(stsMock).toReceiveCommandWith(AssumeRoleCommand, { RoleSessionName: 'sync-nightly-plan' });

    await previewJob(deps([]), job, { runId: 'run-9' });
    expect(stsMock).toReceiveCommandWith(AssumeRoleCommand, { RoleSessionName: 'sync-nightly-run-9' });
    expect(jobIds).toEqual(['nightly']);
  });
});

import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { listSource } from '../../functions/core/plan/list-source.js';

const s3Mock = mockClient(S3Client);
const s3 = new S3Client({ region: 'us-east-1' });

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

const entry = (key: string) => ({ Key: key, ETag: `"${key}"`, Size: 3, LastModified: new Date(0) });

describe('listSource', () => {
  beforeEach(() => s3Mock.reset());

  it('follows continuation tokens across pages and counts the requests', async () => {
    // Prepare
    s3Mock
      .on(ListObjectsV2Command, { ContinuationToken: undefined })
      .resolves({ Contents: [entry('a'), entry('b')], IsTruncated: true, NextContinuationToken: 't1' })
      .on(ListObjectsV2Command, { ContinuationToken: 't1' })
      .resolves({ Contents: [entry('c')], IsTruncated: false });
    const counter = { listRequests: 0 };

    // Act
    const objects = await collect(listSource(s3, 'src', 'in/', {}, counter));

    // Assess
    expect(objects.map((o) => o.key)).toEqual(['a', 'b', 'c']);
    expect(counter.listRequests).toBe(2);
    expect(s3Mock).toHaveReceivedCommandWith(ListObjectsV2Command, { Bucket: 'src', Prefix: 'in/' });
    expect(s3Mock).toHaveReceivedNthCommandWith(ListObjectsV2Command, 2, { ContinuationToken: 't1' });
  });

  it('starts after the resume position and stops past the upper bound', async () => {
    s3Mock
      .on(ListObjectsV2Command)
      .resolves({ Contents: [entry('c'), entry('d'), entry('e')], IsTruncated: true });

    const objects = await collect(listSource(s3, 'src', '', { after: 'b', through: 'd' }));

    expect(objects.map((o) => o.key)).toEqual(['c', 'd']);
    expect(s3Mock).toHaveReceivedCommandTimes(ListObjectsV2Command, 1);
    expect(s3Mock).toHaveReceivedCommandWith(ListObjectsV2Command, { StartAfter: 'b' });
  });

  it('fetches at most one page ahead of the one being read', async () => {
    s3Mock
      .on(ListObjectsV2Command)
      .resolves({ Contents: [entry('a')], IsTruncated: true, NextContinuationToken: 'n' });
    const iterator = listSource(s3, 'src', '')[Symbol.asyncIterator]();

    await iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 10));

    expect(s3Mock).toHaveReceivedCommandTimes(ListObjectsV2Command, 2);
    await iterator.return(undefined);
  });

  it('asks for RestoreStatus and marks a restored archived object readable, and only that one', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({
      Contents: [
        { ...entry('done'), StorageClass: 'GLACIER', RestoreStatus: { IsRestoreInProgress: false } },
        { ...entry('pending'), StorageClass: 'GLACIER', RestoreStatus: { IsRestoreInProgress: true } },
        { ...entry('cold'), StorageClass: 'GLACIER' },
      ],
    });

    const objects = await collect(listSource(s3, 'src', ''));

    expect(s3Mock).toHaveReceivedCommandWith(ListObjectsV2Command, {
      OptionalObjectAttributes: ['RestoreStatus'],
    });
    expect(objects.map((o) => [o.key, o.storageClass, o.restored])).toEqual([
      ['done', 'GLACIER', true],
      ['pending', 'GLACIER', undefined],
      ['cold', 'GLACIER', undefined],
    ]);
  });

  it('fills what a listing entry leaves out with S3 defaults and skips an entry without a key', async () => {
    s3Mock.on(ListObjectsV2Command).resolves({ Contents: [{}, { Key: 'bare' }] });

    const objects = await collect(listSource(s3, 'src', ''));

    expect(objects).toEqual([
      { key: 'bare', etag: '', size: 0, lastModified: new Date(0), storageClass: 'STANDARD' },
    ]);
  });

  it("passes the run's abort signal to every LIST request, so a stalled listing can be cut", async () => {
    s3Mock
      .on(ListObjectsV2Command, { ContinuationToken: undefined })
      .resolves({ Contents: [entry('a')], IsTruncated: true, NextContinuationToken: 't1' })
      .on(ListObjectsV2Command, { ContinuationToken: 't1' })
      .resolves({ Contents: [entry('b')] });
    const controller = new AbortController();

    await collect(listSource(s3, 'src', '', {}, undefined, controller.signal));

    expect(s3Mock.calls()).toHaveLength(2);
    for (const call of s3Mock.calls())
      expect((call.args as unknown[])[1]).toEqual({ abortSignal: controller.signal });
  });

  it('stops asking once a page is not truncated, even if it carries a token', async () => {
    s3Mock
      .on(ListObjectsV2Command)
      .resolves({ Contents: [entry('a')], IsTruncated: false, NextContinuationToken: 'stale' });

    const objects = await collect(listSource(s3, 'src', ''));

    expect(objects.map((o) => o.key)).toEqual(['a']);
    expect(s3Mock).toHaveReceivedCommandTimes(ListObjectsV2Command, 1);
  });

  it('lets a consumer stop early without the prefetched page failing as an unhandled rejection', async () => {
    s3Mock
      .on(ListObjectsV2Command, { ContinuationToken: undefined })
      .resolves({ Contents: [entry('a'), entry('b')], IsTruncated: true, NextContinuationToken: 't1' })
      .on(ListObjectsV2Command, { ContinuationToken: 't1' })
      .rejects(new Error('connection reset'));
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);

    try {
      for await (const object of listSource(s3, 'src', '')) if (object.key === 'a') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('unhandledRejection', record);
    }

    expect(s3Mock).toHaveReceivedCommandTimes(ListObjectsV2Command, 2);
    expect(unhandled).toEqual([]);
  });
});

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
});

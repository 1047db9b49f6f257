/**
 * Object tags, copied when a job opts in (options.copyTags, issue 10), over real HTTP: read with the source
 * role (which then needs s3:GetObjectTagging) and written with the object, single-part or multipart.
 */
import { randomBytes } from 'node:crypto';
import { GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { BucketAccessError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { createSourceRole, isolatedJob, listKeys, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const destination = sandbox.accountB.destinationBucket;
const TAGGING = 'team=data%20eng&pii=no&empty=';
const TAGS = [
  { Key: 'empty', Value: '' },
  { Key: 'pii', Value: 'no' },
  { Key: 'team', Value: 'data eng' },
];

async function tagsOf(bucket: string, key: string) {
  const client = bucket === source ? producer : consumer;
  const { TagSet = [] } = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return [...TagSet].sort((a, b) => (a.Key ?? '').localeCompare(b.Key ?? ''));
}

async function taggingJob(name: string, actions: string[], copyTags: boolean) {
  const roleArn = await createSourceRole(sandbox, name, { actions });
  const job = isolatedJob(sandbox, name);
  return parseJob({ ...job, source: { ...job.source, roleArn }, options: { ...job.options, copyTags } });
}

describe('object tags (options.copyTags)', () => {
  it('copies the tags of single-part and multipart objects when the job asks', async () => {
    const job = await taggingJob('tags', ['s3:ListBucket', 's3:GetObject', 's3:GetObjectTagging'], true);
    await putObject(producer, source, `${job.source.prefix}small.txt`, 'tagged', { Tagging: TAGGING });
    await putObject(producer, source, `${job.source.prefix}big.bin`, randomBytes(9 * 1024 * 1024), {
      Tagging: TAGGING,
    });
    await putObject(producer, source, `${job.source.prefix}untagged.txt`, 'no tags');

    const summary = await syncJob(deps, job);

    expect(summary).toMatchObject({ copied: 3, failed: 0 });
    expect(await tagsOf(source, `${job.source.prefix}small.txt`)).toEqual(TAGS);
    expect(await tagsOf(destination, `${job.destination.prefix}small.txt`)).toEqual(TAGS);
    expect(await tagsOf(destination, `${job.destination.prefix}big.bin`)).toEqual(TAGS);
    expect(await tagsOf(destination, `${job.destination.prefix}untagged.txt`)).toEqual([]);
  });

  it('leaves tags behind by default, and asks for no tagging permission', async () => {
    const job = await taggingJob('no-tags', ['s3:ListBucket', 's3:GetObject'], false);
    await putObject(producer, source, `${job.source.prefix}small.txt`, 'tagged', { Tagging: TAGGING });

    const summary = await syncJob(deps, job);

    expect(job.options.copyTags).toBe(false);
    expect(summary).toMatchObject({ copied: 1, failed: 0 });
    expect(await tagsOf(destination, `${job.destination.prefix}small.txt`)).toEqual([]);
  });

  it('fails before writing anything, naming s3:GetObjectTagging and AllowGetObjectTagging, when the source role may not read tags', async () => {
    const job = await taggingJob('tags-denied', ['s3:ListBucket', 's3:GetObject'], true);
    await putObject(producer, source, `${job.source.prefix}small.txt`, 'tagged', { Tagging: TAGGING });

    const run = syncJob(deps, job, { objectRetry: { baseBackoffMs: 1 } });

    await expect(run).rejects.toThrow(BucketAccessError);
    await expect(run).rejects.toThrow(/s3:GetObjectTagging.*AllowGetObjectTagging=true/);
    expect(await listKeys(consumer, destination, job.destination.prefix)).toEqual([]);
  });
});

/**
 * The job store over real HTTP against the sandbox's DynamoDB Local: conditional adds, replace, pause and
 * resume, remove, paged listing, and validation on write and on read. Each test uses a table of its own,
 * so listings see only its jobs.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { JobExistsError, JobValidationError, UnknownJobError } from '../../functions/core/errors.js';
import type { JobInput } from '../../functions/core/job.js';
import { JobStore } from '../../functions/core/state/job-store.js';
import { sandboxDynamo } from '../../sandbox/clients.js';
import { createStateTable } from '../../sandbox/provision.js';
import { useSandbox } from './helpers.js';

const { sandbox } = useSandbox();

async function freshStore(): Promise<JobStore> {
  const table = `job-store-${randomBytes(4).toString('hex')}`;
  await createStateTable(sandbox, table);
  return new JobStore(sandboxDynamo(sandbox), table);
}

function jobInput(jobId: string, overrides: Partial<JobInput> = {}): JobInput {
  return {
    jobId,
    source: { roleArn: sandbox.accountA.roleArn, bucket: sandbox.accountA.bucket, prefix: `${jobId}/` },
    destination: { bucket: sandbox.accountB.destinationBucket, prefix: `${jobId}/` },
    ...overrides,
  };
}

describe('JobStore', () => {
  it('adds a job active, reads it back validated with defaults, and refuses the same id naming --replace', async () => {
    const store = await freshStore();

    const added = await store.add(jobInput('partner-a'), { schedule: 'rate(15 minutes)' });
    const error = await store.add(jobInput('partner-a')).catch((e: unknown) => e);

    expect(added).toMatchObject({ status: 'active', schedule: 'rate(15 minutes)' });
    expect(await store.require('partner-a')).toMatchObject({
      status: 'active',
      job: { jobId: 'partner-a', options: { concurrency: 16 } },
    });
    expect(error).toBeInstanceOf(JobExistsError);
    expect((error as Error).message).toContain('--replace');
  });

  it('replaces a job keeping its status and creation time', async () => {
    const store = await freshStore();
    const first = await store.add(jobInput('partner-b'));
    await store.setStatus('partner-b', 'paused');

    const replaced = await store.add(jobInput('partner-b', { options: { concurrency: 4 } }), {
      replace: true,
      schedule: 'rate(1 hour)',
    });

    expect(replaced).toMatchObject({
      status: 'paused',
      createdAt: first.createdAt,
      schedule: 'rate(1 hour)',
      job: { options: { concurrency: 4 } },
    });
  });

  it('refuses an invalid job before writing, naming the field', async () => {
    const store = await freshStore();

    const error = await store
      .add(jobInput('bad-one', { source: { roleArn: 'abc', bucket: sandbox.accountA.bucket } }))
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(JobValidationError);
    expect((error as Error).message).toContain('job.source.roleArn');
    expect(await store.get('bad-one')).toBeUndefined();
  });

  it('pauses and resumes a stored job, and names `jobs add` for an id it does not hold', async () => {
    const store = await freshStore();
    await store.add(jobInput('partner-c'));

    await store.setStatus('partner-c', 'paused');
    const paused = await store.require('partner-c');
    await store.setStatus('partner-c', 'active');
    const unknown = await store.setStatus('nobody', 'paused').catch((e: unknown) => e);
    const missing = await store.require('nobody').catch((e: unknown) => e);

    expect(paused.status).toBe('paused');
    expect((await store.require('partner-c')).status).toBe('active');
    for (const error of [unknown, missing]) {
      expect(error).toBeInstanceOf(UnknownJobError);
      expect((error as Error).message).toContain('jobs add');
    }
    expect(await store.get('nobody')).toBeUndefined();
  });

  it('removes a job once', async () => {
    const store = await freshStore();
    await store.add(jobInput('partner-d'));

    expect(await store.remove('partner-d')).toBe(true);
    expect(await store.remove('partner-d')).toBe(false);
    expect(await store.get('partner-d')).toBeUndefined();
  });

  it('lists every job in id order, page by page', async () => {
    const store = await freshStore();
    const ids = Array.from({ length: 7 }, (_, i) => `job-${i}`);
    await Promise.all(ids.map((id) => store.add(jobInput(id))));

    const first = await store.list({ limit: 3 });
    const second = await store.list({ limit: 3, after: first.next });
    const all: string[] = [];
    for await (const stored of store.all(2)) all.push(stored.job.jobId);

    expect(first.jobs.map((s) => s.job.jobId)).toEqual(ids.slice(0, 3));
    expect(second.jobs.map((s) => s.job.jobId)).toEqual(ids.slice(3, 6));
    expect(all).toEqual(ids);
  });

  it('validates a job again when reading it, naming the stored job and the field', async () => {
    const store = await freshStore();
    await DynamoDBDocumentClient.from(sandboxDynamo(sandbox)).send(
      new PutCommand({
        TableName: store.tableName,
        Item: { pk: 'jobs', sk: 'edited', job: { ...jobInput('edited'), destination: {} }, status: 'active' },
      }),
    );

    const error = await store.require('edited').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(JobValidationError);
    expect((error as Error).message).toMatch(/stored job "edited".*job\.destination\.bucket/);
  });
});

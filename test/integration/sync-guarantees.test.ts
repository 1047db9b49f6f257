/**
 * Guarantees from the README's "Exactly right, every run" table that live in S3 and STS behaviour, each
 * tested over real HTTP against the sandbox so that removing the code that keeps it makes a test fail.
 */
import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { HttpRequest } from '@smithy/types';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { PART_SIZE } from '../../functions/core/copy/copy-object.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { isolatedJob, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const destination = sandbox.accountB.destinationBucket;

describe('syncJob at the deadline', () => {
  it('has aborted the multipart upload it cut off by the time it returns', async () => {
    // Prepare: a three-part object; the deadline comes while part 1 is on its way, and that part is cut
    // (an AbortError, as the SDK raises for an aborted request), so no part is stored and nothing can be
    // continued: only an explicit AbortMultipartUpload before the run returns leaves no upload open.
    const job = isolatedJob(sandbox, 'abort-before-return');
    await putObject(producer, source, `${job.source.prefix}large.bin`, randomBytes(PART_SIZE * 3));
    const deadline = new AbortController();
    const destinationS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
    destinationS3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand') {
          deadline.abort();
          throw Object.assign(new Error('cut at the deadline'), { name: 'AbortError' });
        }
        return next(args);
      },
      { step: 'initialize' },
    );

    // Act
    const cut = await syncJob({ ...deps, destinationS3 }, job, { signal: deadline.signal });
    const openUploads = await consumer.send(
      new ListMultipartUploadsCommand({ Bucket: destination, Prefix: job.destination.prefix }),
    );

    // Assess
    expect(cut).toMatchObject({ status: 'partial', copied: 0, failed: 0, deferred: 1 });
    expect(openUploads.Uploads ?? []).toEqual([]);
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
  });
});

/** The access key id a signed request was signed with. */
function accessKeyOf(request: HttpRequest): string | undefined {
  return /Credential=([^/]+)\//.exec(request.headers.authorization ?? '')?.[1];
}

describe('syncJob with source credentials that expire during the run', () => {
  it('signs the source requests made after a refresh with the refreshed credentials', async () => {
    // Prepare: two real sessions of the source role. STS hands out the first as about to expire (within
    // the refresh margin), then the second, so every request after the preflight must use the second.
    const job = isolatedJob(sandbox, 'refresh');
    for (const name of ['a.txt', 'b.txt', 'c.txt']) {
      await putObject(producer, source, `${job.source.prefix}${name}`, name);
    }
    const realSts = new STSClient({});
    const session = async (name: string) => {
      const { Credentials } = await realSts.send(
        new AssumeRoleCommand({
          RoleArn: job.source.roleArn,
          ExternalId: job.source.externalId,
          RoleSessionName: name,
        }),
      );
      return Credentials ?? expect.fail('AssumeRole returned no credentials');
    };
    const expiring = await session('expiring');
    const refreshed = await session('refreshed');
    const sts = new STSClient({});
    const stsStub = mockClient(sts);
    stsStub
      .on(AssumeRoleCommand)
      .resolvesOnce({ Credentials: { ...expiring, Expiration: new Date(Date.now() + 60_000) } })
      .resolves({ Credentials: { ...refreshed, Expiration: new Date(Date.now() + 3_600_000) } });
    const signedWith: { command: string; accessKey: string | undefined }[] = [];
    const sourceS3 = (...args: Parameters<typeof deps.sourceS3>): S3Client => {
      const client = deps.sourceS3(...args);
      client.middlewareStack.add(
        (next, context) => async (input) => {
          signedWith.push({
            command: context.commandName ?? '',
            accessKey: accessKeyOf(input.request as HttpRequest),
          });
          return next(input);
        },
        { step: 'deserialize' },
      );
      return client;
    };

    // Act
    const summary = await syncJob({ ...deps, sts, sourceS3 }, job);

    // Assess
    expect(summary).toMatchObject({ copied: 3, failed: 0 });
    expect(stsStub.commandCalls(AssumeRoleCommand)).toHaveLength(2);
    expect(signedWith.map((request) => request.command)).toEqual(
      expect.arrayContaining(['ListObjectsV2Command', 'GetObjectCommand']),
    );
    expect(new Set(signedWith.map((request) => request.accessKey))).toEqual(new Set([refreshed.AccessKeyId]));
  });
});

describe('syncJob publishing a batch', () => {
  it('writes _SUCCESS only after the manifest is stored', async () => {
    const job = isolatedJob(sandbox, 'marker-order');
    await putObject(producer, source, `${job.source.prefix}a.csv`, 'a');
    await putObject(producer, source, `${job.source.prefix}b.csv`, 'b');
    const stored: string[] = [];
    const destinationS3 = sandboxS3(sandbox, sandbox.accountB.syncer);
    // Recorded when S3 has answered, so the order is the order in which objects became readable.
    destinationS3.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const input = args.input as { Key?: string };
        if (['PutObjectCommand', 'CompleteMultipartUploadCommand'].includes(context.commandName ?? '')) {
          stored.push(input.Key ?? '');
        }
        return result;
      },
      { step: 'initialize' },
    );

    const summary = await syncJob({ ...deps, destinationS3 }, job);

    const { manifestKey, markerKey } = summary.manifest ?? expect.fail('no manifest published');
    expect(stored).toContain(manifestKey);
    expect(stored.indexOf(markerKey)).toBeGreaterThan(stored.indexOf(manifestKey));
    expect(stored.at(-1)).toBe(markerKey);
  });
});

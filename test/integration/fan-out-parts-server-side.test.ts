/**
 * Part tasks of a server-side job (issue 11), over real HTTP: each part task copies its range with
 * UploadPartCopy, run by AccountB's syncer (the workers' own role), which reads AccountA's object only
 * because A's bucket policy grants SERVER_SIDE_COPY_PREFIX (sandbox/provision.ts, as
 * source-account/template.yaml's ServerSideCopyPrincipalArn would; moto_server.py enforces that grant
 * and x-amz-copy-source-if-match). Every S3 request the workers send is counted, so the test sees that
 * none of the object's bytes passed through them. Objects are made "giant" with `partTasksAbove` at its
 * 5 MiB minimum and 8 MiB parts; every delivery is made twice.
 */
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { versionId } from '../../functions/core/dispatch/part-tasks.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import { PartUploads } from '../../functions/core/state/part-uploads.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { SERVER_SIDE_COPY_PREFIX } from '../../sandbox/provision.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  isolatedJob,
  listKeys,
  localFanOut,
  passEnded,
  putObject,
  readObject,
  useSandbox,
} from './helpers.js';
import { bytesOf, ledgerOf, openUploads, sha, startPass } from './part-task-helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const MiB = 1024 * 1024;
const log = consoleLogger(process.env.PARTS_LOG === 'warn' ? 'warn' : 'error');

/** A server-side job over the granted part of A's bucket, whose objects above 5 MiB go as part tasks. */
function serverSideGiantJob(name: string): Job {
  const job = isolatedJob(sandbox, name);
  return parseJob({
    ...job,
    source: { ...job.source, prefix: `${SERVER_SIDE_COPY_PREFIX}${job.source.prefix}` },
    options: {
      ...job.options,
      copyMethod: 'server-side',
      fanOut: { mode: 'always', partTasksAbove: 5 * MiB },
    },
  });
}

describe('part tasks of a server-side job: UploadPartCopy, every delivery made twice', () => {
  let fanOut: LocalFanOut;
  /** The workers' S3 requests, as `<command> <bucket>`, from the destination and the source clients. */
  const sent: string[] = [];
  /** Destination keys whose first copied part is followed by a new source version. */
  const changeSource = new Map<string, () => Promise<unknown>>();
  const count = (command: string, bucket: string) =>
    sent.filter((request) => request === `${command} ${bucket}`).length;
  const watch = (client: S3Client) => {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Bucket?: string; Key?: string };
        sent.push(`${context.commandName} ${input.Bucket}`);
        const result = await next(args);
        const change = context.commandName === 'UploadPartCopyCommand' && changeSource.get(input.Key ?? '');
        if (change) {
          changeSource.delete(input.Key ?? '');
          await change();
        }
        return result;
      },
      { step: 'initialize', name: 'countRequests' },
    );
    return client;
  };

  beforeAll(async () => {
    const workerDeps = dependenciesFromEnvironment(log);
    watch(workerDeps.destinationS3);
    const sourceS3 = workerDeps.sourceS3;
    workerDeps.sourceS3 = (credentials, region) => watch(sourceS3(credentials, region));
    fanOut = await localFanOut(sandbox, workerDeps, {
      workers: 1,
      // One part at a time (each delivered twice), so a source changed after part 1 is seen by part 2.
      partWorkers: 1,
      worker: { log, minPartSize: 8 * MiB },
      around: (_kind, handler) => async (event: SQSEvent, context) => {
        const [first] = await Promise.all([handler(event, context), handler(event, context)]);
        return first;
      },
    });
  });
  beforeEach(() => {
    sent.length = 0;
  });
  afterAll(async () => {
    for (const mapping of Object.values(fanOut.mappings))
      expect(mapping.stats).toMatchObject({ returned: 0 });
    await fanOut?.stop();
  });

  it('copies a 24 MiB object as 3 UploadPartCopy parts byte for byte, reading none of its bytes, and completes it once', async () => {
    const job = serverSideGiantJob('ssc-parts');
    const key = `${job.source.prefix}giant.bin`;
    const giant = bytesOf(24 * MiB, 11);
    await putObject(producer, job.source.bucket, key, giant, {
      ContentType: 'application/x-giant',
      Metadata: { origin: 'server-side-parts' },
    });

    const pass = await startPass(fanOut, job);
    const run = await passEnded(fanOut.deps, job, pass.fence);

    expect(run).toMatchObject({ status: 'complete', copied: 1, failed: 0, bytes: giant.length });
    const copy = await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`);
    expect(sha(copy)).toBe(sha(giant));
    const head = await consumer.send(
      new HeadObjectCommand({ Bucket: job.destination.bucket, Key: `${job.destination.prefix}giant.bin` }),
    );
    expect(head).toMatchObject({
      ContentType: 'application/x-giant',
      Metadata: { origin: 'server-side-parts' },
    });
    expect(head.ETag).toMatch(/-3"$/);
    // No byte through the workers: no GET of the source, no UploadPart; S3 copied each range.
    expect(count('GetObjectCommand', job.source.bucket)).toBe(0);
    expect(count('UploadPartCommand', job.destination.bucket)).toBe(0);
    expect(count('UploadPartCopyCommand', job.destination.bucket)).toBeGreaterThanOrEqual(3);
    const upload = await new PartUploads(deps.state.client, deps.state.tableName, job.jobId, pass.fence).find(
      versionId(key, `"${createHash('md5').update(giant).digest('hex')}"`),
    );
    expect(upload).toMatchObject({ state: 'completed', recorded: 3, partCount: 3 });
    const [entry] = await ledgerOf(deps, job);
    expect(entry).toMatchObject({
      size: giant.length,
      destinationEtag: head.ETag?.replaceAll('"', ''),
      verifiedBy: 'copy-pinned',
      runId: pass.runId,
    });
    expect(await openUploads(consumer, job)).toEqual([]);
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);

    const next = await startPass(fanOut, job);
    expect(await passEnded(fanOut.deps, job, next.fence)).toMatchObject({ copied: 0, skipped: 1 });
  });

  it('completes nothing with mixed bytes when the source changes mid-parts (412), and copies the new version next pass', async () => {
    const job = serverSideGiantJob('ssc-parts-changes');
    const key = `${job.source.prefix}giant.bin`;
    const first = bytesOf(24 * MiB, 12);
    const second = bytesOf(24 * MiB, 13);
    await putObject(producer, job.source.bucket, key, first);
    changeSource.set(`${job.destination.prefix}giant.bin`, () =>
      putObject(producer, job.source.bucket, key, second),
    );

    const pass = await startPass(fanOut, job);
    const run = await passEnded(fanOut.deps, job, pass.fence);

    expect(run).toMatchObject({ copied: 0, failed: 1 });
    expect(JSON.stringify(run.failures)).toMatch(/changed after it was listed/);
    expect(await listKeys(consumer, job.destination.bucket, job.destination.prefix)).toEqual([]);
    expect(await openUploads(consumer, job)).toEqual([]);

    const next = await startPass(fanOut, job);
    expect(await passEnded(fanOut.deps, job, next.fence)).toMatchObject({ copied: 1, failed: 0 });
    expect(
      sha(await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`)),
    ).toBe(sha(second));
    expect(count('GetObjectCommand', job.source.bucket)).toBe(0);
    expect(await openUploads(consumer, job)).toEqual([]);
  });
});

/**
 * Gated: `PART_COPY_MEASURE_MIB=256` measures moto's UploadPartCopy (64 MiB ranges, one request at a
 * time, as the syncer) and then one pass copying an object of that size as 64 MiB part tasks by two part
 * workers, server-side and streamed (the figures in docs/fan-out.md).
 */
const MEASURE_MIB = Number(process.env.PART_COPY_MEASURE_MIB ?? 0);

describe.runIf(MEASURE_MIB > 0)('UploadPartCopy throughput on moto', () => {
  let fanOut: LocalFanOut;
  beforeAll(async () => {
    fanOut = await localFanOut(sandbox, deps, {
      workers: 1,
      partWorkers: 2,
      visibilityTimeoutSeconds: 600,
      worker: { log, minPartSize: 64 * MiB },
    });
  });
  afterAll(async () => {
    await fanOut?.stop();
  });

  it(`copies ${MEASURE_MIB} MiB in 64 MiB parts and reports the rates`, { timeout: 900_000 }, async () => {
    const job = serverSideGiantJob('ssc-parts-measure');
    const key = `${job.source.prefix}measure.bin`;
    const size = MEASURE_MIB * MiB;
    const body = bytesOf(size, 17);
    const { ETag } = await putObject(producer, job.source.bucket, key, body);
    const syncer = sandboxS3(sandbox, sandbox.accountB.syncer);
    const direct = `${job.destination.prefix}direct.bin`;
    const { UploadId } = await syncer.send(
      new CreateMultipartUploadCommand({ Bucket: job.destination.bucket, Key: direct }),
    );
    const directStarted = Date.now();
    for (let start = 0; start < size; start += 64 * MiB) {
      await syncer.send(
        new UploadPartCopyCommand({
          Bucket: job.destination.bucket,
          Key: direct,
          UploadId,
          PartNumber: start / (64 * MiB) + 1,
          CopySource: `${job.source.bucket}/${key}`,
          CopySourceIfMatch: ETag,
          CopySourceRange: `bytes=${start}-${Math.min(size, start + 64 * MiB) - 1}`,
        }),
      );
    }
    const directSeconds = (Date.now() - directStarted) / 1000;
    await syncer.send(
      new AbortMultipartUploadCommand({ Bucket: job.destination.bucket, Key: direct, UploadId }),
    );

    const passSeconds = async (measured: Job) => {
      const started = Date.now();
      const pass = await startPass(fanOut, measured);
      expect(await passEnded(fanOut.deps, measured, pass.fence, 840_000)).toMatchObject({
        copied: 1,
        failed: 0,
      });
      expect(
        sha(
          await readObject(
            consumer,
            measured.destination.bucket,
            `${measured.destination.prefix}measure.bin`,
          ),
        ),
      ).toBe(sha(body));
      return (Date.now() - started) / 1000;
    };
    const serverSide = await passSeconds(job);
    const streamed = await passSeconds(
      parseJob({
        ...job,
        jobId: `${job.jobId}-stream`,
        destination: { ...job.destination, prefix: `${job.destination.prefix}streamed/` },
        options: { ...job.options, copyMethod: 'stream' },
      }),
    );
    console.log(
      `[fan-out-parts-server-side] ${MEASURE_MIB} MiB: UploadPartCopy of 64 MiB ranges one at a time ` +
        `${(MEASURE_MIB / directSeconds).toFixed(0)} MiB/s (${directSeconds.toFixed(1)} s); a pass of ` +
        `${MEASURE_MIB / 64} part tasks by 2 part workers: server-side ${serverSide.toFixed(1)} s, ` +
        `streamed ${streamed.toFixed(1)} s`,
    );
  });
});

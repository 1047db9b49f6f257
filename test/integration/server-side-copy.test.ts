/**
 * Server-side copy (options.copyMethod "server-side", issue 11) over real HTTP: CopyObject and
 * UploadPartCopy run with AccountB's syncer keys, which read AccountA's objects only where A's bucket
 * policy grants it (the sandbox grants SERVER_SIDE_COPY_PREFIX, as source-account/template.yaml's
 * ServerSideCopyPrincipalArn would; moto_server.py enforces bucket policies and the copy conditions).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDoctorDependencies } from '../../cli/build-clients.js';
import { diagnoseJobCommand } from '../../cli/diagnose-job-command.js';
import { serverSideCopy } from '../../functions/core/copy/server-side-copy.js';
import { awsErrorCode, BucketAccessError } from '../../functions/core/errors.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import { type Job, parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { SERVER_SIDE_COPY_PREFIX } from '../../sandbox/provision.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { isolatedJob, listKeys, localFanOut, putObject, readObject, useSandbox } from './helpers.js';

const MiB = 1024 * 1024;
const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const destination = sandbox.accountB.destinationBucket;
/** AccountB's syncer, as the function's role: its own keys, no assumed role. */
const syncer: S3Client = sandboxS3(sandbox, sandbox.accountB.syncer);

const sha = (body: Buffer) => createHash('sha256').update(body).digest('hex');

/** A job over its own prefix of the granted part of A's bucket (or of the rest, `granted: false`). */
function serverSideJob(name: string, { granted = true, ...options }: Record<string, unknown> = {}): Job {
  const job = isolatedJob(sandbox, name);
  const prefix = granted ? `${SERVER_SIDE_COPY_PREFIX}${job.source.prefix}` : job.source.prefix;
  return parseJob({
    ...job,
    source: { ...job.source, prefix },
    options: { ...job.options, copyMethod: 'server-side', ...options },
  });
}

async function expectRefused(call: Promise<unknown>, code: string, status: number) {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${code}`).toBeDefined();
  expect(awsErrorCode(error)).toMatchObject({ status });
  if (code) expect(awsErrorCode(error).name).toBe(code);
  return error as Error;
}

async function ledgerOf(job: Job) {
  const entries = [];
  for await (const entry of deps.state.ledger(job.jobId)) entries.push(entry);
  return entries;
}

describe('the sandbox treats copies as S3 does', () => {
  const granted = `${SERVER_SIDE_COPY_PREFIX}moto-${randomBytes(3).toString('hex')}/`;
  const ungranted = `moto-${randomBytes(3).toString('hex')}/`;

  it('refuses a cross-account CopyObject and UploadPartCopy the source bucket policy does not grant', async () => {
    const { ETag } = await putObject(producer, source, `${ungranted}a.txt`, 'not granted');
    await putObject(producer, source, `${granted}a.txt`, 'granted');

    const denied = await expectRefused(
      syncer.send(
        new CopyObjectCommand({
          Bucket: destination,
          Key: `${ungranted}a.txt`,
          CopySource: `${source}/${ungranted}a.txt`,
        }),
      ),
      'AccessDenied',
      403,
    );
    expect(denied.message).toMatch(/s3:GetObject .*because no resource-based policy allows/);
    const { UploadId } = await syncer.send(
      new CreateMultipartUploadCommand({ Bucket: destination, Key: `${ungranted}parts.bin` }),
    );
    await expectRefused(
      syncer.send(
        new UploadPartCopyCommand({
          Bucket: destination,
          Key: `${ungranted}parts.bin`,
          UploadId,
          PartNumber: 1,
          CopySource: `${source}/${ungranted}a.txt`,
          CopySourceIfMatch: ETag,
        }),
      ),
      'AccessDenied',
      403,
    );
    // The same syncer reads, and copies, what the policy grants.
    await syncer.send(
      new CopyObjectCommand({
        Bucket: destination,
        Key: `${granted}a.txt`,
        CopySource: `${source}/${granted}a.txt`,
      }),
    );
    expect((await readObject(consumer, destination, `${granted}a.txt`)).toString()).toBe('granted');
    await expectRefused(
      syncer.send(new HeadObjectCommand({ Bucket: source, Key: `${ungranted}a.txt` })),
      '',
      403,
    );
    expect(await listKeys(consumer, destination, ungranted)).toEqual([]);
  });

  it('honours x-amz-copy-source-if-match and the destination conditions of a CopyObject', async () => {
    const key = `${granted}cond.txt`;
    const { ETag: first } = await putObject(producer, source, key, 'first');
    const { ETag: second } = await putObject(producer, source, key, 'second');
    const copy = (extra: Record<string, string>) =>
      syncer.send(
        new CopyObjectCommand({ Bucket: destination, Key: key, CopySource: `${source}/${key}`, ...extra }),
      );

    await expectRefused(copy({ CopySourceIfMatch: first ?? '' }), 'PreconditionFailed', 412);
    expect(await listKeys(consumer, destination, key)).toEqual([]);
    await copy({ CopySourceIfMatch: second ?? '', IfNoneMatch: '*' });
    await expectRefused(
      copy({ CopySourceIfMatch: second ?? '', IfNoneMatch: '*' }),
      'PreconditionFailed',
      412,
    );
    await expectRefused(copy({ IfMatch: '"0123456789abcdef0123456789abcdef"' }), 'PreconditionFailed', 412);
    await expectRefused(
      syncer.send(
        new CopyObjectCommand({
          Bucket: destination,
          Key: `${granted}absent.txt`,
          CopySource: `${source}/${key}`,
          IfMatch: second ?? '',
        }),
      ),
      'NoSuchKey',
      404,
    );
    expect((await readObject(consumer, destination, key)).toString()).toBe('second');
  });

  it('copies exactly the x-amz-copy-source-range of each part, and refuses a part of a changed source', async () => {
    const key = `${granted}ranges.bin`;
    const body = randomBytes(11 * MiB);
    const { ETag } = await putObject(producer, source, key, body);
    const { UploadId } = await syncer.send(
      new CreateMultipartUploadCommand({ Bucket: destination, Key: key }),
    );
    const part = (n: number, range: string, pin = ETag) =>
      syncer.send(
        new UploadPartCopyCommand({
          Bucket: destination,
          Key: key,
          UploadId,
          PartNumber: n,
          CopySource: `${source}/${key}`,
          CopySourceIfMatch: pin,
          CopySourceRange: range,
        }),
      );
    await expectRefused(
      part(1, 'bytes=0-5', '"0123456789abcdef0123456789abcdef"'),
      'PreconditionFailed',
      412,
    );
    const one = await part(1, `bytes=0-${6 * MiB - 1}`);
    const two = await part(2, `bytes=${6 * MiB}-${11 * MiB - 1}`);
    await syncer.send(
      new CompleteMultipartUploadCommand({
        Bucket: destination,
        Key: key,
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: one.CopyPartResult?.ETag },
            { PartNumber: 2, ETag: two.CopyPartResult?.ETag },
          ],
        },
      }),
    );
    expect(sha(await readObject(consumer, destination, key))).toBe(sha(body));
  });
});

describe('a job with options.copyMethod "server-side"', () => {
  it('copies small and multipart objects byte for byte, with their headers, metadata and tags, through no function', async () => {
    // Arrange
    const job = serverSideJob('ssc', { copyTags: true });
    const small = randomBytes(1000);
    const large = randomBytes(20 * MiB);
    const headers = { ContentType: 'text/csv', CacheControl: 'max-age=60', Metadata: { team: 'data' } };
    await putObject(producer, source, `${job.source.prefix}small.csv`, small, { ...headers, Tagging: 'k=v' });
    await putObject(producer, source, `${job.source.prefix}large.bin`, large, { ...headers, Tagging: 'k=v' });

    // Act
    const summary = await syncJob(deps, job, { minPartSize: 5 * MiB });

    // Assess
    expect(summary).toMatchObject({ copied: 2, failed: 0 });
    for (const [name, body] of [
      ['small.csv', small],
      ['large.bin', large],
    ] as const) {
      const key = `${job.destination.prefix}${name}`;
      expect(sha(await readObject(consumer, destination, key)), name).toBe(sha(body));
      const head = await consumer.send(new HeadObjectCommand({ Bucket: destination, Key: key }));
      expect(head, name).toMatchObject({
        ContentType: 'text/csv',
        CacheControl: 'max-age=60',
        Metadata: { team: 'data' },
      });
      const { TagSet } = await consumer.send(new GetObjectTaggingCommand({ Bucket: destination, Key: key }));
      expect(TagSet, name).toEqual([{ Key: 'k', Value: 'v' }]);
    }
    const layout = await consumer.send(
      new HeadObjectCommand({
        Bucket: destination,
        Key: `${job.destination.prefix}large.bin`,
        PartNumber: 1,
      }),
    );
    expect(layout.PartsCount).toBe(4); // 20 MiB in 5 MiB part copies, not one CopyObject
    const ledger = await ledgerOf(job);
    expect(ledger.map(({ key, verifiedBy }) => [key.slice(job.source.prefix.length), verifiedBy])).toEqual([
      ['large.bin', 'copy-pinned'],
      ['small.csv', 'copy-etag'],
    ]);
    // Nothing written twice: a second run finds both copied.
    expect(await syncJob(deps, job, { minPartSize: 5 * MiB })).toMatchObject({ copied: 0, skipped: 2 });
  });

  it('fails before writing anything, naming the bucket-policy fix, when AccountA does not grant the sync role', async () => {
    const job = serverSideJob('ssc-denied', { granted: false });
    await putObject(producer, source, `${job.source.prefix}a.txt`, 'a');

    const run = syncJob(deps, job);

    await expect(run).rejects.toThrow(BucketAccessError);
    await expect(run).rejects.toThrow(
      /copyMethod is "server-side".*AccountA's bucket policy must grant that role s3:GetObject.*ServerSideCopyPrincipalArn/,
    );
    expect(await listKeys(consumer, destination, job.destination.prefix)).toEqual([]);
  });

  it('a copy the bucket policy does not grant is refused with the bucket-policy fix, single or in parts', async () => {
    const job = serverSideJob('ssc-copy-denied', { granted: false });
    const key = `${job.source.prefix}a.bin`;
    const body = randomBytes(6 * MiB);
    const { ETag } = await putObject(producer, source, key, body);
    const request = {
      sourceBucket: source,
      key,
      etag: ETag ?? '',
      size: body.length,
      destinationBucket: destination,
      destinationKey: `${job.destination.prefix}a.bin`,
      overwrite: false,
    };
    const fix =
      /denied: .*AccountA's bucket policy must grant that role s3:GetObject.*ServerSideCopyPrincipalArn/;

    await expect(serverSideCopy({ destinationS3: syncer }, request)).rejects.toThrow(fix);
    await expect(serverSideCopy({ destinationS3: syncer }, request, { partSize: 5 * MiB })).rejects.toThrow(
      fix,
    );

    expect(await listKeys(consumer, destination, job.destination.prefix)).toEqual([]);
  });

  it('doctor prints whether the sync role may read the source itself, with the fix', async () => {
    const denied = serverSideJob('ssc-doctor-denied', { granted: false });
    const granted = serverSideJob('ssc-doctor');
    await putObject(producer, source, `${denied.source.prefix}a.txt`, 'a');
    await putObject(producer, source, `${granted.source.prefix}a.txt`, 'a');

    const refused = await diagnoseJobCommand(buildDoctorDependencies(process.env), denied);
    const allowed = await diagnoseJobCommand(buildDoctorDependencies(process.env), granted);

    expect(refused.exitCode).toBe(3);
    expect(refused.text).toMatch(
      /✘ the sync role may read the source itself .*: .*may not read s3:\/\/.*a\.txt itself/,
    );
    expect(refused.text).toMatch(
      /fix: .*bucket policy must grant that role s3:GetObject.*ServerSideCopyPrincipalArn/,
    );
    expect(allowed.text).toMatch(
      /✔ the sync role may read the source itself .*: .*may read s3:\/\/.*a\.txt itself/,
    );
  });

  it('copies nothing when the source changed since it was listed (412 on the pin)', async () => {
    const job = serverSideJob('ssc-changed');
    const key = `${job.source.prefix}moving.txt`;
    const { ETag: listed } = await putObject(producer, source, key, 'as listed');
    await putObject(producer, source, key, 'changed since');
    const request = {
      sourceBucket: source,
      key,
      etag: listed ?? '',
      size: 9,
      destinationBucket: destination,
      destinationKey: `${job.destination.prefix}moving.txt`,
      overwrite: false,
    };

    await expect(serverSideCopy({ destinationS3: syncer }, request)).rejects.toThrow(
      /changed after it was listed/,
    );
    await expect(
      serverSideCopy({ destinationS3: syncer }, { ...request, size: 20 * MiB }, { partSize: 5 * MiB }),
    ).rejects.toThrow(/changed after it was listed/);

    expect(await listKeys(consumer, destination, job.destination.prefix)).toEqual([]);
  });

  it('leaves a destination object it did not write untouched', async () => {
    const job = serverSideJob('ssc-foreign');
    await putObject(producer, source, `${job.source.prefix}taken.txt`, 'from A');
    await putObject(consumer, destination, `${job.destination.prefix}taken.txt`, 'B wrote this');

    const summary = await syncJob(deps, job, { objectRetry: { baseBackoffMs: 1 } });

    expect(summary).toMatchObject({ copied: 0, failed: 1 });
    const kept = await readObject(consumer, destination, `${job.destination.prefix}taken.txt`);
    expect(kept.toString()).toBe('B wrote this');
  });
});

describe('server-side copy in fan-out', () => {
  let fanOut: LocalFanOut;
  beforeAll(async () => {
    fanOut = await localFanOut(sandbox, deps, {
      workers: 1,
      worker: { log: consoleLogger('warn') },
    });
  });
  afterAll(async () => {
    await fanOut?.stop();
  });

  it('a copy task copies its objects server-side', async () => {
    const job = serverSideJob('ssc-fan-out', { fanOut: { mode: 'always' } });
    for (let n = 0; n < 5; n += 1)
      await putObject(producer, source, `${job.source.prefix}f${n}.txt`, `file ${n}`);

    const started = await handleEvent(fanOut.deps, job);
    expect(started).toMatchObject({ mode: 'fan-out', status: 'started' });
    const { fence } = started as { fence: number };
    const pass = new PassTally(fanOut.deps.state.client, fanOut.deps.state.tableName, job.jobId, fence);
    const deadline = Date.now() + 120_000;
    while ((await pass.read()).state !== 'ended') {
      if (Date.now() > deadline) throw new Error('the fan-out pass did not end');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const ledger = await ledgerOf(job);
    expect(ledger).toHaveLength(5);
    expect(ledger.every(({ verifiedBy }) => verifiedBy === 'copy-etag')).toBe(true);
    for (let n = 0; n < 5; n += 1) {
      const copied = await readObject(consumer, destination, `${job.destination.prefix}f${n}.txt`);
      expect(copied.toString()).toBe(`file ${n}`);
    }
  });
});

/** Gated: `SERVER_SIDE_COPY_MEASURE_MIB=256` copies one object of that size both ways (README figure). */
const MEASURE_MIB = Number(process.env.SERVER_SIDE_COPY_MEASURE_MIB ?? 0);

describe.runIf(MEASURE_MIB > 0)('client CPU-seconds, server-side against streamed', () => {
  it(`copies one ${MEASURE_MIB} MiB object each way and reports the CPU this process spent`, async () => {
    const serverSide = serverSideJob('ssc-measure');
    const streamed = parseJob({
      ...serverSide,
      jobId: `${serverSide.jobId}-stream`,
      destination: { ...serverSide.destination, prefix: `${serverSide.destination.prefix}streamed/` },
      options: { ...serverSide.options, copyMethod: 'stream' },
    });
    const body = randomBytes(MEASURE_MIB * MiB);
    await putObject(producer, source, `${serverSide.source.prefix}big.bin`, body);
    const cpuSeconds = async (job: Job) => {
      const before = process.cpuUsage();
      const started = Date.now();
      expect(await syncJob(deps, job)).toMatchObject({ copied: 1, failed: 0 });
      const { user, system } = process.cpuUsage(before);
      return { cpu: (user + system) / 1e6, wall: (Date.now() - started) / 1000 };
    };

    const streamedCost = await cpuSeconds(streamed);
    const serverSideCost = await cpuSeconds(serverSide);

    for (const prefix of [serverSide.destination.prefix, streamed.destination.prefix]) {
      expect(sha(await readObject(consumer, destination, `${prefix}big.bin`))).toBe(sha(body));
    }
    console.log(
      `${MEASURE_MIB} MiB, client CPU-seconds: server-side ${serverSideCost.cpu.toFixed(2)} ` +
        `(${serverSideCost.wall.toFixed(1)} s wall), streamed ${streamedCost.cpu.toFixed(2)} ` +
        `(${streamedCost.wall.toFixed(1)} s wall)`,
    );
  }, 600_000);
});

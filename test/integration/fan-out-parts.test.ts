/**
 * Giant objects as part tasks, over real HTTP (docs/fan-out.md): a planner opens one multipart upload per
 * object version and sends one part task per part to the part queue (moto's SQS, local mappings); part
 * workers copy, record and settle; one of them completes. Objects here are made "giant" with
 * `partTasksAbove` at its 5 MiB minimum and 8 MiB parts.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { versionId } from '../../functions/core/dispatch/part-tasks.js';
import { PartUploads } from '../../functions/core/state/part-uploads.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import {
  isolatedJob,
  listKeys,
  localFanOut,
  type ProcessFanOut,
  passEnded,
  processFanOut,
  putObject,
  readObject,
  useSandbox,
} from './helpers.js';
import { bytesOf, ledgerOf, openUploads, sha, startPass } from './part-task-helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const MiB = 1024 * 1024;
const log = consoleLogger(process.env.PARTS_LOG === 'warn' ? 'warn' : 'error');

/** A job whose objects above 5 MiB go as part tasks of 8 MiB. */
const giantJob = (name: string, mirror = false) =>
  isolatedJob(sandbox, name, {
    options: { mirror, fanOut: { mode: 'always', partTasksAbove: 5 * MiB } },
  });

describe('part tasks: every delivery made twice', () => {
  let fanOut: LocalFanOut;
  const deliveries = { 'plan-shard': 0, copy: 0, part: 0 };
  beforeAll(async () => {
    fanOut = await localFanOut(sandbox, deps, {
      workers: 2,
      partWorkers: 3,
      worker: { log, minPartSize: 8 * MiB },
      around: (kind, handler) => async (event: SQSEvent, context) => {
        deliveries[kind] += 2;
        const [first] = await Promise.all([handler(event, context), handler(event, context)]);
        return first;
      },
    });
  });
  afterAll(async () => {
    for (const mapping of Object.values(fanOut.mappings))
      expect(mapping.stats).toMatchObject({ returned: 0 });
    await fanOut?.stop();
  });

  it('copies a 24 MiB object as 3 parts byte for byte, completes it once, and leaves no upload open', async () => {
    const job = giantJob('parts-twice');
    const giant = bytesOf(24 * MiB, 1);
    await putObject(producer, job.source.bucket, `${job.source.prefix}giant.bin`, giant, {
      ContentType: 'application/x-giant',
      Metadata: { origin: 'parts' },
    });
    await putObject(producer, job.source.bucket, `${job.source.prefix}small.txt`, 'small');

    const pass = await startPass(fanOut, job);
    const run = await passEnded(fanOut.deps, job, pass.fence);

    expect(run).toMatchObject({ status: 'complete', copied: 2, failed: 0, bytes: giant.length + 5 });
    // Each of the 3 parts delivered twice at least (the planner, delivered twice too, sends them again).
    expect(deliveries.part).toBeGreaterThanOrEqual(6);
    const copy = await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`);
    expect(sha(copy)).toBe(sha(giant));
    const head = await consumer.send(
      new HeadObjectCommand({ Bucket: job.destination.bucket, Key: `${job.destination.prefix}giant.bin` }),
    );
    expect(head).toMatchObject({ ContentType: 'application/x-giant', Metadata: { origin: 'parts' } });
    expect(head.ETag).toMatch(/-3"$/);
    // One completion: the upload's record names one completer, and the ledger the one copy.
    const upload = await new PartUploads(deps.state.client, deps.state.tableName, job.jobId, pass.fence).find(
      versionId(`${job.source.prefix}giant.bin`, `"${createHash('md5').update(giant).digest('hex')}"`),
    );
    expect(upload).toMatchObject({ state: 'completed', recorded: 3, partCount: 3 });
    const ledger = await ledgerOf(deps, job);
    expect(ledger.find((entry) => entry.key.endsWith('giant.bin'))).toMatchObject({
      size: giant.length,
      destinationEtag: head.ETag?.replaceAll('"', ''),
      runId: pass.runId,
    });
    expect(await openUploads(consumer, job)).toEqual([]);
    expect(await deps.state.readMultipartUploads(job.jobId)).toEqual([]);
    const manifest = (
      await readObject(
        consumer,
        job.destination.bucket,
        `${job.options.manifestPrefix}${job.jobId}/${pass.runId}/manifest.jsonl`,
      )
    )
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).sourceKey)
      .sort();
    expect(manifest).toEqual([`${job.source.prefix}giant.bin`, `${job.source.prefix}small.txt`]);

    // The next pass finds nothing to copy.
    const next = await startPass(fanOut, job);
    expect(await passEnded(fanOut.deps, job, next.fence)).toMatchObject({ copied: 0, skipped: 2 });
  });

  it('does not overwrite a destination object this sync did not write', async () => {
    const job = giantJob('parts-foreign');
    await putObject(producer, job.source.bucket, `${job.source.prefix}giant.bin`, bytesOf(12 * MiB, 2));
    await putObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`, 'theirs');

    const pass = await startPass(fanOut, job);
    const run = await passEnded(fanOut.deps, job, pass.fence);

    expect(run).toMatchObject({ copied: 0, failed: 1 });
    expect(JSON.stringify(run.failures)).toMatch(/holds an object this sync did not write/);
    expect(
      (await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`)).toString(),
    ).toBe('theirs');
    expect(await openUploads(consumer, job)).toEqual([]);
  });
});

describe('part tasks: a completer that dies, and a source that changes mid-parts', () => {
  let fanOut: LocalFanOut;
  /** Destination keys whose next CompleteMultipartUpload kills its worker (before the request is sent). */
  const killCompletion = new Set<string>();
  /** Destination keys whose first part, once uploaded, is followed by a new source version. */
  const changeSource = new Map<string, () => Promise<unknown>>();
  let killed = 0;
  beforeAll(async () => {
    const workerDeps = dependenciesFromEnvironment(log);
    workerDeps.destinationS3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        const key = input.Key ?? '';
        if (context.commandName === 'CompleteMultipartUploadCommand' && killCompletion.delete(key)) {
          killed += 1;
          throw Object.assign(new Error('worker killed before it completed the upload'), { name: 'Killed' });
        }
        const result = await next(args);
        const change = context.commandName === 'UploadPartCommand' && changeSource.get(key);
        if (change) {
          changeSource.delete(key);
          await change();
        }
        return result;
      },
      { step: 'initialize', name: 'partFaults' },
    );
    fanOut = await localFanOut(sandbox, workerDeps, {
      workers: 1,
      partWorkers: 1,
      visibilityTimeoutSeconds: 4,
      worker: { log, minPartSize: 8 * MiB, claimQuietMs: 2_000 },
    });
  });
  afterAll(async () => {
    await fanOut?.stop();
  });

  it("lets the claimer's task, delivered again, take a quiet completion over and complete once", async () => {
    const job = giantJob('parts-completer-dies');
    const giant = bytesOf(20 * MiB, 3);
    await putObject(producer, job.source.bucket, `${job.source.prefix}giant.bin`, giant);
    killCompletion.add(`${job.destination.prefix}giant.bin`);

    const pass = await startPass(fanOut, job);
    const run = await passEnded(fanOut.deps, job, pass.fence);

    expect(killed).toBe(1);
    expect(run).toMatchObject({ copied: 1, failed: 0 });
    expect(
      sha(await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`)),
    ).toBe(sha(giant));
    expect(await openUploads(consumer, job)).toEqual([]);
    const [entry] = await ledgerOf(deps, job);
    expect(entry).toMatchObject({ size: giant.length, runId: pass.runId });
  });

  it('completes nothing with mixed bytes when the source changes mid-parts, and copies the new version next pass', async () => {
    const job = giantJob('parts-source-changes');
    const key = `${job.source.prefix}giant.bin`;
    const first = bytesOf(24 * MiB, 4);
    const second = bytesOf(24 * MiB, 5);
    await putObject(producer, job.source.bucket, key, first);
    changeSource.set(`${job.destination.prefix}giant.bin`, () =>
      putObject(producer, job.source.bucket, key, second),
    );

    const pass = await startPass(fanOut, job);
    const run = await passEnded(fanOut.deps, job, pass.fence);

    expect(run).toMatchObject({ copied: 0, failed: 1 });
    expect(JSON.stringify(run.failures)).toMatch(/changed after it was listed/);
    await expect(
      consumer.send(
        new GetObjectCommand({ Bucket: job.destination.bucket, Key: `${job.destination.prefix}giant.bin` }),
      ),
    ).rejects.toMatchObject({ name: 'NoSuchKey' });
    expect(await openUploads(consumer, job)).toEqual([]);

    const next = await startPass(fanOut, job);
    expect(await passEnded(fanOut.deps, job, next.fence)).toMatchObject({ copied: 1, failed: 0 });
    expect(
      sha(await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`)),
    ).toBe(sha(second));
    expect(await listKeys(consumer, job.destination.bucket, job.destination.prefix)).toEqual([
      `${job.destination.prefix}giant.bin`,
    ]);
    expect(await openUploads(consumer, job)).toEqual([]);
  });
});

/**
 * A completion S3 carried out but whose answer was lost (the fault proxy answers 500 after moto completed
 * the upload): the SDK's retry is told NoSuchUpload, as S3 tells it, and the completer adopts the object its
 * first attempt wrote instead of holding the claim until it goes quiet (15 minutes). Workers in child
 * processes, so their S3 requests pass the proxy.
 */
describe('part tasks: a completion whose answer is lost', () => {
  let processes: ProcessFanOut;
  beforeAll(async () => {
    processes = await processFanOut(sandbox, deps, { workers: 1, partWorkers: 2, worker: { log } });
  }, 300_000);
  afterAll(async () => {
    await processes?.stop();
  });

  it('adopts the object its own first attempt completed, once, with nothing left open', async () => {
    const job = giantJob('parts-lost-answer');
    const giant = bytesOf(12 * MiB, 7);
    await putObject(producer, job.source.bucket, `${job.source.prefix}giant.bin`, giant);
    processes.proxy.setRules([
      {
        service: 's3',
        operation: 'CompleteMultipartUpload',
        count: 1,
        fault: { type: 'internal-error', afterForwarding: true },
      },
    ]);

    const pass = await startPass(processes.fanOut, job);
    const run = await passEnded(processes.fanOut.deps, job, pass.fence);

    expect(processes.proxy.counts().total).toBe(1);
    // Settled by the delivery whose completion's answer was lost: no part task had to come back.
    expect(processes.fanOut.mappings.part.stats).toMatchObject({ returned: 0 });
    expect(run).toMatchObject({ copied: 1, failed: 0, bytes: giant.length });
    const copy = await readObject(consumer, job.destination.bucket, `${job.destination.prefix}giant.bin`);
    expect(sha(copy)).toBe(sha(giant));
    expect(await openUploads(consumer, job)).toEqual([]);
  });
});

/**
 * One object of 1 GiB, uploaded in 64 MiB parts, copied as 16 part tasks (its own parts, so the copy has the
 * source's ETag) by 4 part workers, each the bundled PartWorkerFunction in a child process of its own, as
 * Lambda would run them. Gated with PART_TASKS_GIB=1 (npm run test:sweep): on this shared 2-core machine
 * it takes longer than a test in `npm test` should.
 */
describe.runIf(process.env.PART_TASKS_GIB === '1')(
  'part tasks: one object of 1 GiB, 4 part worker processes',
  () => {
    let processes: ProcessFanOut;
    let fanOut: LocalFanOut;
    beforeAll(async () => {
      processes = await processFanOut(sandbox, deps, {
        workers: 1,
        partWorkers: 4,
        // Longer than a 64 MiB part takes on this loaded machine, short enough that a task moto failed (it
        // once answered an error page) comes back within the test's time.
        visibilityTimeoutSeconds: 300,
        worker: { log },
      });
      fanOut = processes.fanOut;
    }, 300_000);
    afterAll(async () => {
      await processes?.stop();
    });

    it("copies it byte for byte with the source's own ETag, and leaves no upload open", {
      timeout: 900_000,
    }, async () => {
      const job = giantJob('parts-gib');
      const key = `${job.source.prefix}one.gib`;
      const size = 1024 * MiB;
      const sourceHash = createHash('sha256');
      async function* gib() {
        for (let offset = 0; offset < size; offset += MiB) {
          const chunk = bytesOf(MiB, offset);
          sourceHash.update(chunk);
          yield chunk;
        }
      }
      const upload = new Upload({
        client: producer,
        partSize: 64 * MiB,
        queueSize: 1,
        params: { Bucket: job.source.bucket, Key: key, Body: Readable.from(gib()) },
      });
      const { ETag: sourceEtag } = await upload.done();
      expect(sourceEtag).toMatch(/-16"$/);

      const started = Date.now();
      const pass = await startPass(fanOut, job);
      const run = await passEnded(fanOut.deps, job, pass.fence, 840_000);
      console.log(
        `[fan-out-parts] 1 GiB as 16 part tasks by 4 part worker processes: ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );

      expect(run).toMatchObject({ copied: 1, failed: 0, bytes: size });
      // Several execution environments did the parts (each stays warm after its invocations).
      expect(processes.processes.alive('part')).toBeGreaterThanOrEqual(2);
      const copy = await consumer.send(
        new GetObjectCommand({ Bucket: job.destination.bucket, Key: `${job.destination.prefix}one.gib` }),
      );
      expect(copy.ETag).toBe(sourceEtag);
      const copyHash = createHash('sha256');
      for await (const chunk of copy.Body as AsyncIterable<Uint8Array>) copyHash.update(chunk);
      expect(copyHash.digest('hex')).toBe(sourceHash.digest('hex'));
      const [entry] = await ledgerOf(deps, job);
      expect(entry).toMatchObject({ size, verifiedBy: 'etag-md5' });
      expect(await openUploads(consumer, job)).toEqual([]);
    });
  },
);

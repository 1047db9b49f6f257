import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { PART_SIZE } from '../../functions/core/copy/copy-object.js';
import type { SyncDependencies } from '../../functions/core/run/sync-job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { sandboxS3 } from '../../sandbox/clients.js';
import { captureLogger } from '../support/capture-logger.js';
import { isolatedJob, putObject, randomText, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const destination = sandbox.accountB.destinationBucket;

/** Runs `hook` before each request of `commandName` a client sends (still over real HTTP). */
function beforeCommand(
  client: S3Client,
  commandName: string,
  hook: (input: Record<string, unknown>) => Promise<void> | void,
): S3Client {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === commandName) await hook(args.input as Record<string, unknown>);
      return next(args);
    },
    { step: 'initialize' },
  );
  return client;
}

async function ledgerEntry(jobId: string, key: string) {
  for await (const entry of deps.state.ledger(jobId)) if (entry.key === key) return entry;
  return undefined;
}

describe('a run cut by the deadline', () => {
  it('ends normally: partial, lease free, cut copy deferred not failed, and the next run finishes it', async () => {
    // Prepare: a three-part object; the clock runs out while its second part is on its way.
    const job = isolatedJob(sandbox, 'deadline-cut');
    const key = `${job.source.prefix}large.bin`;
    const data = randomBytes(PART_SIZE * 3);
    await putObject(producer, source, key, data);
    // Once the second part is about to go, the clock reads 1 s left; the part waits until the run has
    // looked at the clock again, so the cut lands while the upload is in flight.
    let late = false;
    let clockRead: () => void = () => {};
    const clockReadLate = new Promise<void>((resolve) => {
      clockRead = resolve;
    });
    const remainingTimeMs = () => {
      if (!late) return 600_000;
      queueMicrotask(clockRead);
      return 1_000;
    };
    const destinationS3 = beforeCommand(
      sandboxS3(sandbox, sandbox.accountB.syncer),
      'UploadPartCommand',
      async (input) => {
        if (input.PartNumber !== 2) return;
        late = true;
        await clockReadLate;
      },
    );

    // Act
    const cut = await syncJob({ ...deps, destinationS3 }, job, { remainingTimeMs });
    const lease = await deps.state.readLease(job.jobId);
    const entry = await ledgerEntry(job.jobId, key);
    const uploads = await consumer.send(
      new ListMultipartUploadsCommand({ Bucket: destination, Prefix: job.destination.prefix }),
    );
    const kept = await deps.state.readMultipartUploads(job.jobId);
    const next = await syncJob(deps, job);
    const left = await consumer.send(
      new ListMultipartUploadsCommand({ Bucket: destination, Prefix: job.destination.prefix }),
    );

    // Assess
    expect(cut).toMatchObject({ status: 'partial', copied: 0, failed: 0, deferred: 1 });
    expect(lease?.expiresAt ?? 0).toBeLessThanOrEqual(Date.now());
    expect(entry?.failure).toBeUndefined();
    // The cut upload is left only as the recorded one the next run continues (finding 6), then none.
    expect((uploads.Uploads ?? []).map((upload) => upload.UploadId)).toEqual(kept.map((k) => k.uploadId));
    expect(next).toMatchObject({ status: 'complete', copied: 1, failed: 0, deferred: 0 });
    expect(left.Uploads ?? []).toEqual([]);
    expect((await readObject(consumer, destination, `${job.destination.prefix}large.bin`)).equals(data)).toBe(
      true,
    );
  });

  it('still copies when the function timeout is 60 s', async () => {
    const job = isolatedJob(sandbox, 'deadline-60s');
    for (const name of ['a', 'b', 'c'])
      await putObject(producer, source, `${job.source.prefix}${name}`, randomText(99));
    const deadline = Date.now() + 60_000;

    const summary = await syncJob(deps, job, {
      timeoutMs: 60_000,
      remainingTimeMs: () => deadline - Date.now(),
    });

    expect(summary).toMatchObject({ status: 'complete', copied: 3, deferred: 0 });
  });
});

describe('an object deleted between listing and copy', () => {
  it('is named with its reason in the summary and the manifest', async () => {
    // Prepare: two objects; one is deleted just before its GET.
    const job = isolatedJob(sandbox, 'vanished');
    const gone = `${job.source.prefix}gone.txt`;
    await putObject(producer, source, gone, 'here at listing time');
    await putObject(producer, source, `${job.source.prefix}kept.txt`, 'kept');
    const withDeletion: SyncDependencies = {
      ...deps,
      sourceS3: (credentials, region) =>
        beforeCommand(deps.sourceS3(credentials, region), 'GetObjectCommand', async (input) => {
          // A whole-object GET is the copy; preflight's one-byte read carries a Range.
          if (input.Key === gone && input.Range === undefined) {
            await producer.send(new DeleteObjectCommand({ Bucket: source, Key: gone }));
          }
        }),
    };

    // Act
    const logger = captureLogger();
    const summary = await syncJob({ ...withDeletion, logger }, job);

    // Assess
    expect(summary).toMatchObject({ copied: 1, failed: 0, vanished: 1 });
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'object deleted before it could be copied',
      fields: { key: gone },
    });
    expect(summary.vanishedKeys).toEqual([
      { key: gone, reason: expect.stringMatching(/deleted after it was listed/) },
    ]);
    const manifestKey = summary.manifest?.manifestKey ?? expect.fail('no manifest');
    const lines = (await readObject(consumer, destination, manifestKey))
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.find((line) => line.sourceKey === gone)).toMatchObject({
      outcome: 'vanished',
      reason: expect.stringMatching(/deleted after it was listed/),
    });
  });
});

import { createHash } from 'node:crypto';
import { existsSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { type ManifestLine, RunManifest } from '../../functions/core/report/run-manifest.js';

/** The spool files the manifest opened, to see where it wrote and how full its buffer is. */
const spools = vi.hoisted(() => [] as { path: string; stream: WriteStream }[]);
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    createWriteStream: (path: string) => {
      const stream = fs.createWriteStream(path);
      spools.push({ path, stream });
      return stream;
    },
  };
});

const s3 = new S3Client({ region: 'us-east-1' });
const s3Mock = mockClient(S3Client);

const run = { jobId: 'job-1', runId: '20240501T100000Z-abc', startedAt: '2024-05-01T10:00:00.000Z' };
const FINISHED = '2024-05-01T10:05:00.000Z';
const destination = { bucket: 'dst', prefix: '.cross-account-sync/runs/' };
const BASE = '.cross-account-sync/runs/job-1/20240501T100000Z-abc/';

const copied = (n: number, size = 10): ManifestLine => ({
  destinationKey: `copy/k${n}`,
  sourceKey: `k${n}`,
  size,
  etag: `"e${n}"`,
  sha256: `h${n}`,
  sourceLastModified: '2024-04-30T00:00:00.000Z',
});

/** The PutObject inputs sent, in order. */
function puts() {
  return s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
}

describe('RunManifest', () => {
  beforeEach(() => {
    s3Mock.reset();
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"x"' });
    spools.length = 0;
  });

  it('places the manifest and its marker under <prefix><jobId>/<runId>/', () => {
    // Act
    const location = new RunManifest(run, destination).location();

    // Assert
    expect(location).toEqual({ manifestKey: `${BASE}manifest.jsonl`, markerKey: `${BASE}_SUCCESS` });
  });

  it('uploads one JSON line per object with the run added, then the _SUCCESS marker summing them up', async () => {
    // Arrange
    const manifest = new RunManifest(run, destination);
    await manifest.add(copied(1, 10));
    await manifest.add(copied(2, 32));
    await manifest.addVanished({
      sourceKey: 'gone',
      etag: '"g"',
      sourceLastModified: '2024-04-29T00:00:00.000Z',
      reason: 'NoSuchKey',
    });

    // Act
    const location = await manifest.publish(s3, FINISHED, { status: 'succeeded', failed: 0 });

    // Assert
    const runFields = {
      jobId: 'job-1',
      runId: run.runId,
      runStartedAt: run.startedAt,
      runFinishedAt: FINISHED,
    };
    const expectedBody = [
      { ...copied(1, 10), ...runFields },
      { ...copied(2, 32), ...runFields },
      {
        sourceKey: 'gone',
        etag: '"g"',
        sourceLastModified: '2024-04-29T00:00:00.000Z',
        reason: 'NoSuchKey',
        outcome: 'vanished',
        ...runFields,
      },
    ]
      .map((line) => `${JSON.stringify(line)}\n`)
      .join('');
    const [manifestPut, markerPut] = puts();
    expect(puts()).toHaveLength(2);
    expect(manifestPut).toMatchObject({
      Bucket: 'dst',
      Key: `${BASE}manifest.jsonl`,
      ContentType: 'application/x-ndjson',
    });
    expect(Buffer.from(manifestPut?.Body as Uint8Array).toString()).toBe(expectedBody);
    expect(markerPut).toMatchObject({
      Bucket: 'dst',
      Key: `${BASE}_SUCCESS`,
      ContentType: 'application/json',
    });
    expect(JSON.parse(markerPut?.Body as string)).toEqual({
      status: 'succeeded',
      failed: 0,
      jobId: 'job-1',
      runId: run.runId,
      startedAt: run.startedAt,
      finishedAt: FINISHED,
      objects: 2,
      bytes: 42,
      vanished: 1,
      manifest: {
        bucket: 'dst',
        key: `${BASE}manifest.jsonl`,
        sha256: createHash('sha256').update(expectedBody).digest('base64'),
      },
    });
    expect(location).toEqual({
      bucket: 'dst',
      manifestKey: `${BASE}manifest.jsonl`,
      markerKey: `${BASE}_SUCCESS`,
      objects: 2,
    });
    expect(manifest.objects).toBe(2);
  });

  it('lets the run summary not overwrite the run identity or the counts in the marker', async () => {
    // Arrange
    const manifest = new RunManifest(run, destination);
    await manifest.add(copied(1, 3));

    // Act
    await manifest.publish(s3, FINISHED, { jobId: 'other', objects: 99, bytes: 99, vanished: 99 });

    // Assert
    expect(JSON.parse(puts()[1]?.Body as string)).toMatchObject({
      jobId: 'job-1',
      objects: 1,
      bytes: 3,
      vanished: 0,
    });
  });

  it('writes the marker only after the manifest is stored, and not at all if the manifest upload fails', async () => {
    // Arrange
    s3Mock.on(PutObjectCommand, { Key: `${BASE}manifest.jsonl` }).rejects(new Error('SlowDown'));
    const manifest = new RunManifest(run, destination);
    await manifest.add(copied(1));

    // Act
    const publishing = manifest.publish(s3, FINISHED, {});

    // Assert
    await expect(publishing).rejects.toThrow('SlowDown');
    expect(puts().map((put) => put.Key)).toEqual([`${BASE}manifest.jsonl`]);
  });

  it('publishes nothing and returns undefined when nothing was copied or vanished', async () => {
    // Arrange
    const manifest = new RunManifest(run, destination);

    // Act
    const location = await manifest.publish(s3, FINISHED, {});

    // Assert
    expect(location).toBeUndefined();
    expect(puts()).toEqual([]);
    expect(manifest.objects).toBe(0);
  });

  it('publishes a run whose only objects vanished, counting no copies', async () => {
    // Arrange
    const manifest = new RunManifest(run, destination);
    await manifest.addVanished({
      sourceKey: 'gone',
      etag: '"g"',
      sourceLastModified: FINISHED,
      reason: 'NoSuchKey',
    });

    // Act
    const location = await manifest.publish(s3, FINISHED, {});

    // Assert
    expect(location?.objects).toBe(0);
    expect(JSON.parse(puts()[1]?.Body as string)).toMatchObject({ objects: 0, bytes: 0, vanished: 1 });
  });

  it('removes its spool file once published, even when the upload fails', async () => {
    // Arrange
    const published = new RunManifest(run, destination);
    await published.add(copied(1));
    await published.publish(s3, FINISHED, {});
    s3Mock.on(PutObjectCommand).rejects(new Error('InternalError'));
    const failed = new RunManifest(run, destination);
    await failed.add(copied(1));

    // Act
    await failed.publish(s3, FINISHED, {}).catch(() => {});

    // Assert
    expect(spools).toHaveLength(2);
    for (const { path } of spools) expect(existsSync(dirname(path))).toBe(false);
  });

  it('discards the spool file of a run that does not publish, and does nothing when none was opened', async () => {
    // Arrange
    const manifest = new RunManifest(run, destination);
    await manifest.add(copied(1));
    const dir = dirname(spools[0]?.path as string);
    expect(existsSync(dir)).toBe(true);

    // Act
    await manifest.discard();
    await new RunManifest(run, destination).discard();

    // Assert
    expect(existsSync(dir)).toBe(false);
    expect(spools).toHaveLength(1);
  });

  it('opens one spool file for copies finishing at once', async () => {
    // Arrange
    const manifest = new RunManifest(run, destination);

    // Act
    await Promise.all([manifest.add(copied(1)), manifest.add(copied(2)), manifest.add(copied(3))]);
    await manifest.publish(s3, FINISHED, {});

    // Assert
    expect(spools).toHaveLength(1);
    const body = Buffer.from(puts()[0]?.Body as Uint8Array).toString();
    expect(
      body
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line).sourceKey),
    ).toEqual(['k1', 'k2', 'k3']);
  });

  it('waits for the spool file to drain before taking the next line, each time its buffer fills', async () => {
    // Arrange: a line longer than the stream's buffer fills it at once.
    const manifest = new RunManifest(run, destination);
    const big = { ...copied(1), sourceKey: 'x'.repeat(64 * 1024) };

    // Act & Assert
    await manifest.add(big);
    const stream = spools[0]?.stream as WriteStream;
    expect(stream.writableLength).toBe(0);
    await manifest.add(big);
    expect(stream.writableLength).toBe(0);
    await manifest.discard();
  });
});

/**
 * Archived source objects (issue 10), over real HTTP: a Glacier object is reported until it is restored,
 * then copied (RestoreStatus in the listing); an object in an Intelligent-Tiering archive tier, which the
 * listing cannot show, is reported as archived rather than failed; and the run's objectsArchived metric
 * counts both.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  RestoreObjectCommand,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { captureLogger } from '../support/capture-logger.js';
import { isolatedJob, listKeys, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const destination = sandbox.accountB.destinationBucket;

/** Moves an INTELLIGENT_TIERING object to an archive tier (the sandbox's /_sandbox/archive-object). */
async function archive(key: string, tier: 'ARCHIVE_ACCESS' | 'DEEP_ARCHIVE_ACCESS'): Promise<void> {
  const response = await fetch(new URL('/_sandbox/archive-object', sandbox.motoEndpoint), {
    method: 'POST',
    body: JSON.stringify({ account: sandbox.accountA.id, bucket: source, key, tier }),
  });
  expect(response.status).toBe(200);
}

function recordingMetrics() {
  const recorded: Record<string, number> = {};
  return {
    recorded,
    metrics: {
      addMetric: (name: string, _unit: string, value: number) => {
        recorded[name] = value;
      },
      addDimensions: () => {},
    },
  };
}

describe('archived source objects', () => {
  it('the sandbox lists a restored Glacier object with its RestoreStatus, as S3 does', async () => {
    const prefix = `${isolatedJob(sandbox, 'restore-status').source.prefix}`;
    await putObject(producer, source, `${prefix}cold`, 'cold', { StorageClass: 'GLACIER' });
    await putObject(producer, source, `${prefix}thawed`, 'thawed', { StorageClass: 'GLACIER' });
    await producer.send(
      new RestoreObjectCommand({ Bucket: source, Key: `${prefix}thawed`, RestoreRequest: { Days: 1 } }),
    );

    const listed = await producer.send(
      new ListObjectsV2Command({
        Bucket: source,
        Prefix: prefix,
        OptionalObjectAttributes: ['RestoreStatus'],
      }),
    );

    const [cold, thawed] = listed.Contents ?? [];
    expect(cold?.RestoreStatus).toBeUndefined();
    expect(thawed?.RestoreStatus).toMatchObject({ IsRestoreInProgress: false });
    expect(thawed?.RestoreStatus?.RestoreExpiryDate?.getTime()).toBeGreaterThan(Date.now());
  });

  it('the sandbox refuses the GET of an object in an Intelligent-Tiering archive tier and names the tier on HEAD', async () => {
    const key = `${isolatedJob(sandbox, 'it-archive').source.prefix}deep`;
    await putObject(producer, source, key, 'deep', { StorageClass: 'INTELLIGENT_TIERING' });
    await archive(key, 'DEEP_ARCHIVE_ACCESS');

    const read = await producer.send(new GetObjectCommand({ Bucket: source, Key: key })).catch((e) => e);
    const head = await producer.send(new HeadObjectCommand({ Bucket: source, Key: key }));

    expect(read).toMatchObject({ name: 'InvalidObjectState', $metadata: { httpStatusCode: 403 } });
    expect(head).toMatchObject({ ArchiveStatus: 'DEEP_ARCHIVE_ACCESS', StorageClass: 'INTELLIGENT_TIERING' });
  });

  it('copies a Glacier object once it is restored, and reports it as archived until then', async () => {
    const job = isolatedJob(sandbox, 'glacier');
    const key = `${job.source.prefix}frozen.txt`;
    await putObject(producer, source, key, 'frozen bytes', { StorageClass: 'GLACIER' });
    await putObject(producer, source, `${job.source.prefix}plain.txt`, 'plain');
    const first = recordingMetrics();

    const logger = captureLogger();
    const before = await syncJob({ ...deps, metrics: first.metrics, logger }, job);
    await producer.send(new RestoreObjectCommand({ Bucket: source, Key: key, RestoreRequest: { Days: 1 } }));
    const after = await syncJob(deps, job);

    expect(before).toMatchObject({ copied: 1, archived: 1, failed: 0, archivedKeys: [key] });
    expect(first.recorded.objectsArchived).toBe(1);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'object archived in Glacier; restore it to copy it',
      fields: { key, storageClass: 'GLACIER' },
    });
    expect(after).toMatchObject({ copied: 1, archived: 0, failed: 0 });
    const copied = await readObject(consumer, destination, `${job.destination.prefix}frozen.txt`);
    expect(copied.toString()).toBe('frozen bytes');
  });

  it('reports an object in an Intelligent-Tiering archive tier as archived, not failed, and copies the rest', async () => {
    const job = isolatedJob(sandbox, 'it-tier');
    const key = `${job.source.prefix}archived.txt`;
    // First in the listing, so the run's one-byte read check meets it too.
    await putObject(producer, source, key, 'archived', { StorageClass: 'INTELLIGENT_TIERING' });
    await archive(key, 'ARCHIVE_ACCESS');
    await putObject(producer, source, `${job.source.prefix}readable.txt`, 'readable', {
      StorageClass: 'INTELLIGENT_TIERING',
    });
    const { recorded, metrics } = recordingMetrics();

    const logger = captureLogger();
    const summary = await syncJob({ ...deps, metrics, logger }, job);

    expect(summary).toMatchObject({ copied: 1, archived: 1, failed: 0, archivedKeys: [key] });
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'object archived; restore it to copy it',
      fields: { key, reason: expect.stringContaining('restore it in AccountA') },
    });
    expect(summary.failures).toEqual([]);
    expect(recorded.objectsArchived).toBe(1);
    expect(await listKeys(consumer, destination, job.destination.prefix)).toEqual([
      `${job.destination.prefix}readable.txt`,
    ]);
  });
});

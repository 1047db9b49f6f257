import { Metrics } from '@aws-lambda-powertools/metrics';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SyncError } from '../../functions/core/errors.js';
import { parseJob } from '../../functions/core/job.js';
import { announceRun } from '../../functions/core/report/announce-run.js';
import { publishRunEvent } from '../../functions/core/report/publish-run-event.js';
import type { RunSummary } from '../../functions/core/run/sync-types.js';

const job = parseJob({
  jobId: 'nightly',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'source-bucket' },
  destination: { bucket: 'destination-bucket' },
});

const summary = {
  jobId: 'nightly',
  copied: 3,
  bytes: 300,
  failed: 1,
  deferred: 2,
  archived: 4,
  durationMs: 1200,
  replicationLagSeconds: 42,
  backlogObjects: 3,
  backlogBytes: 3072,
} as RunSummary;

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const events = mockClient(EventBridgeClient);
const client = new EventBridgeClient({ region: 'us-east-1' });

describe('announceRun', () => {
  beforeEach(() => events.reset());

  it('emits each metric for all jobs (service) and for this job (service, jobId), backlog included', async () => {
    // Prepare: Powertools' own Metrics, as the Lambda uses it, read back as the EMF document it writes.
    const metrics = new Metrics({ namespace: 'CrossAccountSync', serviceName: 'cross-account-sync' });

    // Act
    await announceRun({ metrics }, job, summary, silent);
    const emf = metrics.serializeMetrics();

    // Assess
    const [directive] = emf._aws.CloudWatchMetrics;
    expect(directive?.Dimensions).toEqual([['service'], ['service', 'jobId']]);
    expect(directive?.Metrics.map((metric) => metric.Name)).toEqual(
      expect.arrayContaining([
        'objectsCopied',
        'objectsFailed',
        'objectsArchived',
        'replicationLag',
        'backlogObjects',
        'backlogBytes',
      ]),
    );
    expect(emf).toMatchObject({
      service: 'cross-account-sync',
      jobId: 'nightly',
      objectsArchived: 4,
      replicationLag: 42,
      backlogObjects: 3,
      backlogBytes: 3072,
    });
  });

  it('emits missedByEvents for a job that follows events, and nothing of it for one that does not', async () => {
    const withEvents = new Metrics({ namespace: 'CrossAccountSync', serviceName: 'cross-account-sync' });
    const without = new Metrics({ namespace: 'CrossAccountSync', serviceName: 'cross-account-sync' });

    await announceRun({ metrics: withEvents }, job, { ...summary, missedByEvents: 0 }, silent);
    await announceRun({ metrics: without }, job, summary, silent);

    expect(withEvents.serializeMetrics()).toMatchObject({ missedByEvents: 0 });
    expect(without.serializeMetrics()).not.toHaveProperty('missedByEvents');
  });

  it('publishes one "Sync Run Completed" event with the counts and the source and destination, not the key lists', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    const run = {
      ...summary,
      runId: 'run-1',
      failures: [{ key: 'k', reason: 'r' }],
      archivedKeys: ['cold'],
      vanishedKeys: [{ key: 'gone', reason: 'deleted' }],
      inFlight: 0,
    } as RunSummary;

    await announceRun({ events: { client, busName: 'sync-runs' } }, job, run, silent);

    expect(events).toHaveReceivedCommandTimes(PutEventsCommand, 1);
    const [entry] = events.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries ?? [];
    expect(entry).toMatchObject({
      EventBusName: 'sync-runs',
      Source: 'cross-account-sync',
      DetailType: 'Sync Run Completed',
    });
    const detail = JSON.parse(entry?.Detail ?? '{}');
    expect(detail).toMatchObject({
      jobId: 'nightly',
      runId: 'run-1',
      copied: 3,
      failed: 1,
      source: { bucket: 'source-bucket', prefix: '' },
      destination: { bucket: 'destination-bucket', prefix: '' },
    });
    for (const left of ['failures', 'archivedKeys', 'vanishedKeys', 'inFlight'])
      expect(detail).not.toHaveProperty(left);
  });

  it('logs and counts an event EventBridge refuses, without failing the run', async () => {
    events.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
    });
    const metrics = new Metrics({ namespace: 'CrossAccountSync', serviceName: 'cross-account-sync' });
    const errors: unknown[][] = [];
    const log = { ...silent, error: (...args: unknown[]) => errors.push(args) };

    await announceRun({ events: { client, busName: 'sync-runs' }, metrics }, job, summary, log);

    expect(metrics.serializeMetrics()).toMatchObject({ eventPublishFailures: 1 });
    expect(errors).toEqual([
      [
        'run event not published; the manifest and _SUCCESS marker are in place',
        {
          busName: 'sync-runs',
          error: expect.stringContaining(
            'EventBridge refused the "Sync Run Completed" event on bus sync-runs',
          ),
        },
      ],
    ]);
  });

  it('publishes nothing when no bus is configured', async () => {
    await announceRun({}, job, summary, silent);

    expect(events).toHaveReceivedCommandTimes(PutEventsCommand, 0);
  });
});

describe('publishRunEvent', () => {
  beforeEach(() => events.reset());

  it('names the bus and the error code and message of a refused entry', async () => {
    events.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'AccessDeniedException', ErrorMessage: 'not on this bus' }],
    });

    const refused = await publishRunEvent(client, 'sync-runs', {}).catch((error: unknown) => error);

    expect(refused).toBeInstanceOf(SyncError);
    expect((refused as Error).message).toBe(
      'EventBridge refused the "Sync Run Completed" event on bus sync-runs: AccessDeniedException not on this bus',
    );
  });

  it('treats an entry with an error code as refused even when FailedEntryCount is missing', async () => {
    events.on(PutEventsCommand).resolves({ Entries: [{ ErrorCode: 'ThrottlingException' }] });

    await expect(publishRunEvent(client, 'sync-runs', {})).rejects.toThrow(
      /^EventBridge refused the "Sync Run Completed" event on bus sync-runs: ThrottlingException$/,
    );
  });

  it('treats a FailedEntryCount without an entry error as refused', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{}] });

    await expect(publishRunEvent(client, 'sync-runs', {})).rejects.toThrow(
      new SyncError('EventBridge refused the "Sync Run Completed" event on bus sync-runs: no reason given'),
    );
  });

  it('resolves when every entry was accepted', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

    await expect(publishRunEvent(client, 'sync-runs', { copied: 1 })).resolves.toBeUndefined();
    expect(events).toHaveReceivedCommandWith(PutEventsCommand, {
      Entries: [expect.objectContaining({ Detail: '{"copied":1}' })],
    });
  });
});

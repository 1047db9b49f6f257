import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { announceEnd } from '../../functions/core/fanout/end-pass.js';
import type { OpenPass } from '../../functions/core/fanout/open-pass.js';
import { parseJob } from '../../functions/core/job.js';
import type { RunSummary } from '../../functions/core/run/sync-types.js';
import { type PassState, PassTally } from '../../functions/core/state/pass-tally.js';

const job = parseJob({
  jobId: 'nightly',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'source-bucket' },
  destination: { bucket: 'destination-bucket' },
});
const summary = { jobId: 'nightly', runId: 'run-7', copied: 2, failures: [] } as unknown as RunSummary;
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const events = mockClient(EventBridgeClient);
const table = mockClient(DynamoDBDocumentClient);
const ending: PassState = {
  outstanding: 0,
  state: 'ending',
  totals: {},
  startedAt: '2026-12-03T08:00:00.000Z',
  updatedAt: '2026-12-03T08:01:00.000Z',
  endedBy: 'worker-2',
};

function openPass(): OpenPass {
  return {
    deps: { events: { client: new EventBridgeClient({ region: 'us-east-1' }), busName: 'sync-runs' } },
    job,
    runId: 'run-7',
    fence: 7,
    tally: new PassTally(new DynamoDBClient({ region: 'us-east-1' }), 'sync-state', 'nightly', 7),
  } as unknown as OpenPass;
}

describe('announceEnd', () => {
  beforeEach(() => {
    events.reset();
    table.reset();
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    table.on(UpdateCommand).resolves({});
  });

  it('publishes the run event, then records it published by this ender, so a taker-over does not publish it again', async () => {
    await announceEnd(openPass(), ending, summary, { log: silent, worker: 'worker-2' });

    expect(events.commandCalls(PutEventsCommand)).toHaveLength(1);
    const [update] = table.commandCalls(UpdateCommand);
    expect(update?.args[0].input).toMatchObject({
      Key: { pk: 'job#nightly', sk: 'pass#7' },
      UpdateExpression: expect.stringContaining('eventPublishedAt = :at'),
      ConditionExpression: '#state = :from AND endedBy = :worker',
      ExpressionAttributeValues: expect.objectContaining({ ':from': 'ending', ':worker': 'worker-2' }),
    });
    expect(
      JSON.parse(events.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0]?.Detail ?? '{}'),
    ).toMatchObject({ jobId: 'nightly', runId: 'run-7' });
  });

  it('does not publish the event again when an earlier ender of the pass recorded it published', async () => {
    const taken = { ...ending, endedBy: 'worker-3', eventPublishedAt: '2026-12-03T08:02:00.000Z' };

    await announceEnd(openPass(), taken, summary, { log: silent, worker: 'worker-3' });

    expect(events.commandCalls(PutEventsCommand)).toHaveLength(0);
    expect(table.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('records nothing when EventBridge refused the event, so the next ender publishes it', async () => {
    events
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] });

    await announceEnd(openPass(), ending, summary, { log: silent, worker: 'worker-2' });

    expect(table.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('says so, without failing the end, when the pass was taken over before the record', async () => {
    table.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }));
    const warned: string[] = [];

    await announceEnd(openPass(), ending, summary, {
      log: { ...silent, warn: (message: string) => warned.push(message) },
      worker: 'worker-2',
    });

    expect(warned).toEqual(['run event published, but this worker no longer ends the pass']);
  });
});

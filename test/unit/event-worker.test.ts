/**
 * The event worker around applyChange: routing, the source session kept per container, the deletion cap
 * asked of the batch's budget, and the logs and metrics of each outcome. applyChange and the source's opening are stubbed
 * (their own tests cover them); the job store is a mocked DynamoDB.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openSourceAccess } from '../../functions/core/access/preflight.js';
import { applyChange } from '../../functions/core/events/apply-change.js';
import { DeletionBudget } from '../../functions/core/events/deletion-budget.js';
import { EVENT_JOBS_TTL_MS } from '../../functions/core/events/event-jobs.js';
import { EventWorker } from '../../functions/core/events/event-worker.js';
import { parseJob } from '../../functions/core/job.js';
import type { SyncDependencies, SyncMetrics } from '../../functions/core/run/sync-types.js';
import { StateStore } from '../../functions/core/state/state-store.js';

vi.mock('../../functions/core/access/preflight.js', () => ({ openSourceAccess: vi.fn() }));
vi.mock('../../functions/core/events/apply-change.js', () => ({ applyChange: vi.fn() }));

const dynamo = mockClient(DynamoDBDocumentClient);
const sourceS3 = new S3Client({ region: 'eu-west-1' });
const jobInput = {
  jobId: 'ev-job',
  source: { roleArn: 'arn:aws:iam::111111111111:role/S3GetListRole', bucket: 'producer', prefix: 'in/' },
  destination: { bucket: 'consumer' },
  options: { events: true, mirror: true, maxDeletesPerRun: 1 },
};
const job = parseJob(jobInput);
const event = (key = 'in/a.csv') => ({
  id: 'e-1',
  source: 'aws.s3',
  'detail-type': 'Object Created',
  time: '2026-12-03T06:00:00Z',
  detail: { bucket: { name: 'producer' }, object: { key, sequencer: '0064D3901D00059242' } },
});

/** Metrics as Powertools emits them: each single metric with the dimension sets given to it. */
function recordingMetrics() {
  const emitted: { name: string; unit: string; value: number; dimensions: Record<string, string>[] }[] = [];
  const metrics: SyncMetrics = {
    addMetric: (name, unit, value) => emitted.push({ name, unit, value, dimensions: [] }),
    addDimensions: () => {},
    singleMetric: () => {
      const dimensions: Record<string, string>[] = [];
      return {
        addDimensions: (set) => dimensions.push(set),
        addMetric: (name, unit, value) => emitted.push({ name, unit, value, dimensions }),
      };
    },
  };
  return { metrics, emitted };
}

const log = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
function worker() {
  const { metrics, emitted } = recordingMetrics();
  const deps = {
    state: new StateStore(new DynamoDBClient({ region: 'eu-west-1' }), 'state'),
    destinationS3: new S3Client({ region: 'eu-west-1' }),
    metrics,
  } as unknown as SyncDependencies;
  return { events: new EventWorker(deps), emitted };
}
/** An allowance that grants `grants` deletions, then refuses; `failure` makes it unreachable. */
function fakeAllowance(grants: number, failure?: Error) {
  const requests: { key: string; sequencer: string; max: number }[] = [];
  const reserve = async (request: { key: string; sequencer: string; max: number }) => {
    if (failure) throw failure;
    requests.push(request);
    const window = { start: new Date(0), end: new Date(3_600_000) };
    return { granted: requests.length <= grants, window };
  };
  return { allowance: { reserve }, requests };
}
const control = (allowance = fakeAllowance(100).allowance) => ({
  log,
  deletions: new DeletionBudget(allowance, { log }),
});

beforeEach(() => {
  dynamo.reset();
  log.info.mockReset();
  vi.mocked(openSourceAccess)
    .mockReset()
    .mockResolvedValue({ sourceS3, credentials: {} as never });
  vi.mocked(applyChange)
    .mockReset()
    .mockResolvedValue({ outcome: 'copied', key: 'in/a.csv', bytes: 5, lagMs: 1500 });
});

describe('EventWorker', () => {
  it('applies an event to the job its rule carries, and reports the lag and the outcome per job', async () => {
    const { events, emitted } = worker();

    const outcomes = await events.handle(JSON.stringify({ job: jobInput, event: event() }), control());

    expect(outcomes).toEqual([{ outcome: 'copied', key: 'in/a.csv', bytes: 5, lagMs: 1500 }]);
    expect(vi.mocked(applyChange).mock.calls[0]?.[0]).toMatchObject({ sourceS3 });
    expect(vi.mocked(applyChange).mock.calls[0]?.[1]).toEqual(job);
    expect(emitted).toEqual([
      { name: 'eventsCopied', unit: 'Count', value: 1, dimensions: [{}, { jobId: 'ev-job' }] },
      { name: 'eventLagMs', unit: 'Milliseconds', value: 1500, dimensions: [{}, { jobId: 'ev-job' }] },
    ]);
    expect(log.info).toHaveBeenCalledWith(
      'event copied',
      expect.objectContaining({
        jobId: 'ev-job',
        key: 'in/a.csv',
        lagMs: 1500,
        sequencer: '0064D3901D00059242',
      }),
    );
  });

  it('assumes the job’s role once per container, and again only after a refused open', async () => {
    const { events } = worker();
    vi.mocked(openSourceAccess).mockRejectedValueOnce(new Error('AccessDenied'));
    const body = JSON.stringify({ job: jobInput, event: event() });

    await expect(events.handle(body, control())).rejects.toThrow('AccessDenied');
    await events.handle(body, control());
    await events.handle(body, control());

    expect(openSourceAccess).toHaveBeenCalledTimes(2);
    expect(applyChange).toHaveBeenCalledTimes(2);
  });

  it('counts each outcome under its own name and reports no lag when nothing was recorded', async () => {
    const { events, emitted } = worker();
    vi.mocked(applyChange).mockResolvedValueOnce({ outcome: 'stale', key: 'in/a.csv', reason: 'later' });

    await events.handle(JSON.stringify({ job: jobInput, event: event() }), control());

    expect(emitted.map(({ name }) => name)).toEqual(['eventsStale']);
  });

  it('drops an event for no job with a log line saying why, counting it', async () => {
    const { events, emitted } = worker();
    dynamo.on(GetCommand).resolves({});

    expect(await events.handle(JSON.stringify({ jobId: 'gone', event: event() }), control())).toEqual([]);

    expect(applyChange).not.toHaveBeenCalled();
    expect(log.info).toHaveBeenCalledWith(
      'event for no job; dropped',
      expect.objectContaining({ key: 'in/a.csv', reason: expect.stringMatching(/no job "gone"/) }),
    );
    expect(emitted).toEqual([{ name: 'eventsDropped', unit: 'Count', value: 1, dimensions: [] }]);
  });

  it('asks the deletion cap, shared beyond the batch, for the deletion of the change it applies', async () => {
    const { events } = worker();
    const verdicts: unknown[] = [];
    vi.mocked(applyChange).mockImplementation(async (_deps, _job, change, options) => {
      verdicts.push(await options?.mayDelete?.());
      return { outcome: 'deleted', key: change.key };
    });
    const { allowance, requests } = fakeAllowance(1);

    await events.handle(JSON.stringify({ job: jobInput, event: event('in/a.csv') }), control(allowance));
    await events.handle(JSON.stringify({ job: jobInput, event: event('in/b.csv') }), control(allowance));

    expect(verdicts).toEqual([
      { granted: true },
      { granted: false, reason: expect.stringMatching(/maxDeletesPerRun 1 /) },
    ]);
    expect(requests).toEqual([
      expect.objectContaining({ jobId: 'ev-job', key: 'in/a.csv', sequencer: '0064D3901D00059242', max: 1 }),
      expect.objectContaining({ jobId: 'ev-job', key: 'in/b.csv', sequencer: '0064D3901D00059242', max: 1 }),
    ]);
  });

  it('fails the record when the deletion cap cannot be read, so it comes back', async () => {
    const { events } = worker();
    vi.mocked(applyChange).mockImplementation(async (_deps, _job, change, options) => {
      await options?.mayDelete?.();
      return { outcome: 'deleted', key: change.key };
    });
    const { allowance } = fakeAllowance(1, new Error('state table "state": unreachable'));

    await expect(
      events.handle(JSON.stringify({ job: jobInput, event: event() }), control(allowance)),
    ).rejects.toThrow('unreachable');
    expect(log.info).not.toHaveBeenCalledWith('event deleted', expect.anything());
  });

  it('throws what applying the change threw, so the record comes back', async () => {
    const { events } = worker();
    vi.mocked(applyChange).mockRejectedValue(new Error('lease lost'));

    await expect(events.handle(JSON.stringify({ job: jobInput, event: event() }), control())).rejects.toThrow(
      'lease lost',
    );
  });
});

describe('EventWorker: bare events matched against the stored jobs kept per container', () => {
  const stored = (jobId: string, prefix: string) => ({
    pk: 'jobs',
    sk: jobId,
    job: { ...jobInput, jobId, source: { ...jobInput.source, prefix } },
    status: 'active',
    createdAt: 'x',
    updatedAt: 'x',
  });
  const bare = (key: string) => JSON.stringify(event(key));
  const queries = () => dynamo.commandCalls(QueryCommand).length;

  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-12-03T12:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('reads the job store once for a burst of bare events', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [stored('ev-job', 'in/')] });
    const { events } = worker();

    for (let i = 0; i < 5; i++) await events.handle(bare(`in/${i}.csv`), control());

    expect(queries()).toBe(1);
    expect(applyChange).toHaveBeenCalledTimes(5);
  });

  it('reads the job store again once the kept jobs are older than EVENT_JOBS_TTL_MS', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [stored('ev-job', 'in/')] });
    const { events } = worker();

    await events.handle(bare('in/a.csv'), control());
    vi.setSystemTime(Date.now() + EVENT_JOBS_TTL_MS - 1);
    await events.handle(bare('in/b.csv'), control());
    expect(queries()).toBe(1);
    vi.setSystemTime(Date.now() + 2);
    await events.handle(bare('in/c.csv'), control());

    expect(queries()).toBe(2);
    expect(applyChange).toHaveBeenCalledTimes(3);
  });

  it('reads once more before dropping an event no kept job follows, so a job just added is found', async () => {
    dynamo
      .on(QueryCommand)
      .resolvesOnce({ Items: [stored('ev-job', 'in/')] })
      .resolvesOnce({ Items: [stored('ev-job', 'in/'), stored('new-job', 'new/')] })
      .resolves({ Items: [stored('ev-job', 'in/'), stored('new-job', 'new/')] });
    const { events } = worker();

    await events.handle(bare('in/a.csv'), control());
    await events.handle(bare('new/b.csv'), control());
    expect(queries()).toBe(2);
    expect(vi.mocked(applyChange).mock.calls.map(([, applied]) => applied.jobId)).toEqual([
      'ev-job',
      'new-job',
    ]);

    await events.handle(bare('elsewhere/c.csv'), control());
    expect(queries()).toBe(3);
    expect(log.info).toHaveBeenCalledWith(
      'event for no job; dropped',
      expect.objectContaining({ key: 'elsewhere/c.csv' }),
    );
  });

  it('does not keep a read that failed: the next event reads again', async () => {
    dynamo
      .on(QueryCommand)
      .rejectsOnce(new Error('unreachable'))
      .resolves({ Items: [stored('ev-job', 'in/')] });
    const { events } = worker();

    await expect(events.handle(bare('in/a.csv'), control())).rejects.toThrow();
    await events.handle(bare('in/b.csv'), control());
    await events.handle(bare('in/c.csv'), control());

    expect(queries()).toBe(2);
    expect(applyChange).toHaveBeenCalledTimes(2);
  });
});

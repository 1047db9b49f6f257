/**
 * The workers' batch handling (fanout/task-batches.ts) with its tasks stubbed: which records come back to
 * the queue, which go, and how the last receive of a failing copy task still settles it.
 */
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { runCopyTask, TaskThrottledError } from '../../functions/core/fanout/copy-task.js';
import { settleTask } from '../../functions/core/fanout/end-pass.js';
import { PassOverError } from '../../functions/core/fanout/open-pass.js';
import { planShard } from '../../functions/core/fanout/plan-shard.js';
import { taskBatchHandler } from '../../functions/core/fanout/task-batches.js';

const pass = { fence: 3 };
vi.mock('../../functions/core/fanout/copy-task.js', async (original) => ({
  ...(await original<object>()),
  runCopyTask: vi.fn(async () => 'settled'),
}));
vi.mock('../../functions/core/fanout/plan-shard.js', () => ({ planShard: vi.fn(async () => true) }));
vi.mock('../../functions/core/fanout/end-pass.js', () => ({ settleTask: vi.fn(async () => true) }));
const handleEvent = vi.fn(async (_body: string, _control: unknown) => [] as unknown[]);
vi.mock('../../functions/core/events/event-worker.js', async (original) => ({
  ...(await original<object>()),
  EventWorker: class {
    handle = handleEvent;
    deletionBudget = () => ({});
  },
}));
vi.mock('../../functions/core/fanout/open-pass.js', async (original) => ({
  ...(await original<object>()),
  PassOpener: class {
    open = vi.fn(async () => pass);
  },
}));

const copyTask = (taskId: string, keys = ['a.csv', 'b.csv']) => ({
  kind: 'copy',
  jobId: 'job-1',
  fence: 3,
  taskId,
  objects: keys.map((key) => ({
    key,
    etag: '"0123"',
    size: 1,
    lastModified: '2026-12-02T00:00:00.000Z',
    storageClass: 'STANDARD',
    reason: 'new',
  })),
});
const shardTask = { kind: 'plan-shard', jobId: 'job-1', fence: 3, taskId: 'shard-0', range: {} };

function record(messageId: string, body: unknown, receives = 1): SQSRecord {
  return {
    messageId,
    receiptHandle: `handle-${messageId}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: String(receives),
      SentTimestamp: '0',
      SenderId: 'sender',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:222222222222:copy',
    awsRegion: 'eu-west-1',
  };
}

const context = {
  awsRequestId: 'request-1',
  getRemainingTimeInMillis: () => 600_000,
} as unknown as Context;
const log = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
const delayCopy = vi.fn(async (_receiptHandle: string, _seconds: number) => {});
const deps = { queues: { planShard: vi.fn(), copy: vi.fn(), delayCopy } } as never;
const handler = (kind: 'copy' | 'plan-shard', throttleDelaySeconds?: number) =>
  taskBatchHandler(deps, kind, { log, maxReceiveCount: 3, throttleDelaySeconds });
const failedIds = async (kind: 'copy' | 'plan-shard', records: SQSRecord[], throttleDelaySeconds?: number) =>
  (
    await handler(kind, throttleDelaySeconds)({ Records: records } as SQSEvent, context)
  ).batchItemFailures.map((f) => f.itemIdentifier);

beforeEach(() => {
  vi.mocked(runCopyTask).mockReset().mockResolvedValue('settled');
  vi.mocked(planShard).mockReset().mockResolvedValue(true);
  vi.mocked(settleTask).mockReset().mockResolvedValue(true);
  delayCopy.mockReset().mockResolvedValue(undefined);
  handleEvent.mockReset().mockResolvedValue([]);
});

describe('taskBatchHandler', () => {
  it('deletes the tasks done and returns only the ones that failed', async () => {
    vi.mocked(runCopyTask).mockImplementation(async (_passes, task) => {
      if (task.taskId === 'shard-0-1') throw new Error('DynamoDB unreachable');
      return 'settled';
    });

    const failed = await failedIds('copy', [
      record('m0', copyTask('shard-0-0')),
      record('m1', copyTask('shard-0-1')),
      record('m2', copyTask('shard-0-2')),
    ]);

    expect(failed).toEqual(['m1']);
    expect(runCopyTask).toHaveBeenCalledTimes(3);
    expect(settleTask).not.toHaveBeenCalled();
    expect(log.warn).toHaveBeenCalledWith(
      'task failed; its message comes back',
      expect.objectContaining({
        messageId: 'm1',
        receives: 1,
        error: expect.stringContaining('DynamoDB unreachable'),
      }),
    );
  });

  it('lets a task of a pass that is over go, instead of retrying it', async () => {
    vi.mocked(runCopyTask).mockRejectedValue(new PassOverError('pass 3 of job job-1 is ended'));

    expect(await failedIds('copy', [record('m0', copyTask('shard-0-0'), 3)])).toEqual([]);
    expect(settleTask).not.toHaveBeenCalled();
  });

  it('fails a message that is not a task, naming what is wrong, and never settles it', async () => {
    const failed = await failedIds('copy', [
      record('m0', 'not json', 3),
      record('m1', { ...copyTask('x'), fence: 0 }, 3),
    ]);

    expect(failed).toEqual(['m0', 'm1']);
    expect(runCopyTask).not.toHaveBeenCalled();
    expect(settleTask).not.toHaveBeenCalled();
    expect(JSON.stringify(log.warn.mock.calls)).toMatch(/task\.fence/);
  });

  it('settles a copy task that fails on its last receive as failed, so the pass still ends, and lets it go to the DLQ', async () => {
    vi.mocked(runCopyTask).mockRejectedValue(new Error('throttled'));

    const failed = await failedIds('copy', [
      record('m0', copyTask('shard-0-4', ['a.csv', 'b.csv', 'c.csv']), 3),
    ]);

    expect(failed).toEqual(['m0']);
    expect(settleTask).toHaveBeenCalledWith(
      pass,
      'shard-0-4',
      { failed: 3, backlogObjects: 3 },
      {
        failures: ['a.csv', 'b.csv', 'c.csv'].map((key) => ({
          key,
          reason: expect.stringMatching(/failed 3 times and is in the dead-letter queue: .*throttled/),
        })),
      },
      expect.objectContaining({ log }),
    );
  });

  it('does not settle a copy task before its last receive, nor a planner on any', async () => {
    vi.mocked(runCopyTask).mockRejectedValue(new Error('throttled'));
    vi.mocked(planShard).mockRejectedValue(new Error('throttled'));

    expect(await failedIds('copy', [record('m0', copyTask('shard-0-4'), 2)])).toEqual(['m0']);
    expect(await failedIds('plan-shard', [record('m1', shardTask, 3)])).toEqual(['m1']);
    expect(settleTask).not.toHaveBeenCalled();
  });

  it('hands plan-shard records to the planner and copy records to the copier', async () => {
    expect(await failedIds('plan-shard', [record('m0', shardTask)])).toEqual([]);
    expect(planShard).toHaveBeenCalledWith(
      expect.anything(),
      shardTask,
      expect.objectContaining({ log, signal: expect.any(AbortSignal) }),
    );
    expect(runCopyTask).not.toHaveBeenCalled();
    // A copy task on the planner's queue is not a plan-shard task.
    expect(await failedIds('plan-shard', [record('m1', copyTask('shard-0-0'))])).toEqual(['m1']);
  });

  it('delays a copy task S3 throttled, the pause doubling with each receive up to 15 minutes', async () => {
    vi.mocked(runCopyTask).mockRejectedValue(new TaskThrottledError('S3 answered 503 SlowDown'));

    expect(await failedIds('copy', [record('m0', copyTask('shard-0-1'), 1)])).toEqual(['m0']);
    expect(await failedIds('copy', [record('m1', copyTask('shard-0-2'), 2)])).toEqual(['m1']);
    expect(await failedIds('copy', [record('m2', copyTask('shard-0-3'), 2)], 600)).toEqual(['m2']);

    expect(delayCopy.mock.calls).toEqual([
      ['handle-m0', 30],
      ['handle-m1', 60],
      ['handle-m2', 900],
    ]);
    expect(settleTask).not.toHaveBeenCalled();
  });

  it('does not delay a task that failed for another reason, nor a throttled one on its last receive', async () => {
    vi.mocked(runCopyTask).mockRejectedValueOnce(new Error('DynamoDB unreachable'));
    expect(await failedIds('copy', [record('m0', copyTask('shard-0-1'), 1)])).toEqual(['m0']);

    vi.mocked(runCopyTask).mockRejectedValueOnce(new TaskThrottledError('S3 answered 503 SlowDown'));
    expect(await failedIds('copy', [record('m1', copyTask('shard-0-2'), 3)])).toEqual(['m1']);

    expect(delayCopy).not.toHaveBeenCalled();
    expect(settleTask).toHaveBeenCalledTimes(1);
  });

  it('still returns a throttled task when its delay cannot be set, saying so', async () => {
    vi.mocked(runCopyTask).mockRejectedValue(new TaskThrottledError('S3 answered 503 SlowDown'));
    delayCopy.mockRejectedValueOnce(new Error('AccessDenied'));

    expect(await failedIds('copy', [record('m0', copyTask('shard-0-1'), 1)])).toEqual(['m0']);
    expect(log.warn).toHaveBeenCalledWith(
      'could not delay a throttled task; it comes back with the queue timeout',
      expect.objectContaining({ messageId: 'm0', error: expect.stringContaining('AccessDenied') }),
    );
  });

  describe('S3 events on the copy queue', () => {
    const s3Event = {
      id: 'e-1',
      source: 'aws.s3',
      'detail-type': 'Object Created',
      time: '2026-12-03T06:00:00Z',
      detail: { bucket: { name: 'producer' }, object: { key: 'in/a.csv', sequencer: '01' } },
    };

    it('hands event records to the event worker and copy tasks to the copier, one batch sharing a deletion budget', async () => {
      const failed = await failedIds('copy', [
        record('m0', { jobId: 'stored', event: s3Event }),
        record('m1', copyTask('shard-0-0')),
        record('m2', s3Event),
      ]);

      expect(failed).toEqual([]);
      expect(runCopyTask).toHaveBeenCalledTimes(1);
      expect(handleEvent.mock.calls.map(([body]) => JSON.parse(body))).toEqual([
        { jobId: 'stored', event: s3Event },
        s3Event,
      ]);
      const [first, second] = handleEvent.mock.calls.map(([, control]) => control as { deletions: unknown });
      expect(first?.deletions).toBe(second?.deletions);
    });

    it('returns an event that failed (a lease lost, a malformed event), saying so, and never settles a task for it', async () => {
      handleEvent.mockRejectedValueOnce(new Error('not an S3 change event: event.source must be "aws.s3"'));

      const failed = await failedIds('copy', [
        record('m0', { jobId: 'stored', event: { ...s3Event, source: 'aws.ec2' } }, 3),
      ]);

      expect(failed).toEqual(['m0']);
      expect(settleTask).not.toHaveBeenCalled();
      expect(log.warn).toHaveBeenCalledWith(
        'event failed; its message comes back',
        expect.objectContaining({
          messageId: 'm0',
          receives: 3,
          error: expect.stringMatching(/event\.source/),
        }),
      );
    });

    it('leaves events on the planner’s queue to the planner, which refuses them', async () => {
      expect(await failedIds('plan-shard', [record('m0', s3Event)])).toEqual(['m0']);
      expect(handleEvent).not.toHaveBeenCalled();
    });
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SyncLogger } from '../../functions/core/run/sync-job.js';

/** Which SDK packages have been evaluated in this file's module graph so far. */
const loaded = vi.hoisted(() => ({ eventBridge: 0, sqs: 0 }));

vi.mock('@aws-sdk/client-eventbridge', async (importOriginal) => {
  loaded.eventBridge += 1;
  return importOriginal();
});
vi.mock('@aws-sdk/client-sqs', async (importOriginal) => {
  loaded.sqs += 1;
  return importOriginal();
});

const logger = { info: () => {}, warn: () => {}, error: () => {} } as unknown as SyncLogger;
const env = {
  STATE_TABLE_NAME: 'sync-state',
  AWS_REGION: 'eu-west-1',
  EVENT_BUS_NAME: 'runs',
  PLAN_SHARD_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/111111111111/plan',
  COPY_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/111111111111/copy',
};

describe('the EventBridge and SQS clients (start-up memory, issue 13)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('are not loaded when the functions start, even with the bus and queues configured: an inline run never sends to a queue', async () => {
    // Act
    const { dependenciesFromEnvironment } = await import('../../functions/core/clients.js');
    await import('../../functions/core/handle-event.js');
    const deps = dependenciesFromEnvironment(logger, env);

    // Assert
    expect(deps.events?.busName).toBe('runs');
    expect(deps.queues).toBeDefined();
    expect(loaded).toEqual({ eventBridge: 0, sqs: 0 });
  });

  it('are loaded, instrumented once, on the first send, which then goes out', async () => {
    // Arrange
    const { dependenciesFromEnvironment } = await import('../../functions/core/clients.js');
    const instrumented: unknown[] = [];
    const deps = dependenciesFromEnvironment(logger, env, {
      instrument: (client) => {
        instrumented.push(client);
        return client;
      },
    });
    const { SQSClient } = await import('@aws-sdk/client-sqs');
    const sent = vi.spyOn(SQSClient.prototype, 'send').mockResolvedValue({} as never);
    const before = instrumented.length;

    // Act
    await deps.queues?.copy({ kind: 'copy', taskId: 'copy-1' } as never);
    await deps.queues?.copy({ kind: 'copy', taskId: 'copy-2' } as never);

    // Assert
    expect(loaded.sqs).toBe(1);
    expect(sent).toHaveBeenCalledTimes(2);
    expect(instrumented.length - before).toBe(1);
    expect(instrumented.at(-1)).toBeInstanceOf(SQSClient);
  });
});

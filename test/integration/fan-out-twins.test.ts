/**
 * Two deliveries of one copy task at once (SQS delivers at least once), one of them cut by its deadline
 * after its twin has copied and recorded the object. The cut one must not write its "not copied yet"
 * entry over the twin's record (same pass, same fence): the next pass would then copy the object again,
 * or adopt it, and the ledger would say the pass left it uncopied.
 */
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import { PassTally } from '../../functions/core/state/pass-tally.js';
import type { LocalFanOut } from '../../sandbox/fan-out.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { isolatedJob, localFanOut, passEnded, putObject, until, useSandbox } from './helpers.js';

const { sandbox, deps, producer } = useSandbox();
/** The held write's key ends with this; only the first write of it is held. */
const HELD = 'twin-held.txt';
let release: ((reason: unknown) => void) | undefined;
let held = false;
const cuts: AbortController[] = [];
let twins: LocalFanOut;

beforeAll(async () => {
  // The workers' destination client holds the first write of HELD until the test releases it, cut.
  const heldDeps = dependenciesFromEnvironment(consoleLogger('error'));
  heldDeps.destinationS3.middlewareStack.add(
    (next, context) => async (args) => {
      const key = (args.input as { Key?: string }).Key ?? '';
      if (!held && context.commandName === 'PutObjectCommand' && key.endsWith(HELD)) {
        held = true;
        await new Promise((_, reject) => {
          release = reject;
        });
      }
      return next(args);
    },
    { step: 'initialize', name: 'holdOneWrite' },
  );
  twins = await localFanOut(sandbox, heldDeps, {
    workers: 2,
    visibilityTimeoutSeconds: 2,
    worker: { log: consoleLogger('error') },
    // The first delivery of each copy task is made twice at once, each with a deadline the test can cut.
    around: (kind, handler) => {
      const seen = new Set<string>();
      return async (event: SQSEvent, context) => {
        const id = event.Records[0]?.messageId ?? '';
        if (kind !== 'copy' || seen.has(id)) return handler(event, context);
        seen.add(id);
        const [one, two] = [new AbortController(), new AbortController()];
        cuts.push(one, two);
        const [first] = await Promise.allSettled([
          handler(event, context, one.signal),
          handler(event, context, two.signal),
        ]);
        if (first.status === 'rejected') throw first.reason;
        return first.value;
      };
    },
  });
});
afterAll(() => twins?.stop());

describe('fan-out: a delivery cut by its deadline after its twin recorded the object', () => {
  it("keeps the twin's ledger record, so the next pass neither copies nor adopts the object again", async () => {
    const job = isolatedJob(sandbox, 'fan-out-twins', { options: { fanOut: { mode: 'always' } } });
    const key = `${job.source.prefix}${HELD}`;
    await putObject(producer, job.source.bucket, key, 'one object, two deliveries');

    const started = (await handleEvent(twins.deps, job)) as Extract<PassStart, { status: 'started' }>;
    const pass = new PassTally(deps.state.client, deps.state.tableName, job.jobId, started.fence);
    // One delivery is held mid-write; its twin copies the object, records it and settles the task.
    await until(
      'twin settled',
      async () => (await pass.read()).totals.copied ?? 0,
      (copied) => held && copied === 1,
    );
    const recorded = await deps.state.ledgerEntry(job.jobId, key);
    expect(recorded?.destinationEtag).toBeDefined();
    // Now the deadline cuts the held delivery.
    for (const cut of cuts) cut.abort(new Error('cut by the test, as the deadline would'));
    release?.(Object.assign(new Error('request aborted'), { name: 'AbortError' }));

    expect(await passEnded(twins.deps, job, started.fence)).toMatchObject({ copied: 1, deferred: 0 });
    const after = await deps.state.ledgerEntry(job.jobId, key);
    expect(after).toEqual(recorded);
    const next = (await handleEvent(twins.deps, job)) as Extract<PassStart, { status: 'started' }>;
    expect(await passEnded(twins.deps, job, next.fence)).toMatchObject({ copied: 0, skipped: 1 });
  });
});

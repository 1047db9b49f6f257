/**
 * One fan-out pass, alone in its own process so the OS measures its CPU: the scheduled function's code
 * starts the pass, and the shard planner and `workers` copy workers work it from moto's SQS through the
 * sandbox's local event source mappings (sandbox/fan-out.ts), in this process, as `npm start -- --workers`
 * runs them. Prints the pass's run record and the copy mapping's counts as JSON once the pass has ended.
 *
 *   node run-fan-out.mjs <task.json>   task: { job, workers, sandbox: { region, motoEndpoint,
 *                                      dynamodbEndpoint, admin } }; environment: the sandbox's
 */
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import type { PassStart } from '../../functions/core/fanout/start-pass.js';
import { handleEvent } from '../../functions/core/handle-event.js';
import { parseJob } from '../../functions/core/job.js';
import { sandboxSqs } from '../../sandbox/clients.js';
import { startLocalFanOut } from '../../sandbox/fan-out.js';
import type { AwsKeys, SandboxEndpoints } from '../../sandbox/sandbox.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { untilEnded } from '../../scripts/lib/fan-out-demo.js';
import { cpuWaitSeconds, printResult, readTask } from './task.js';

/** Often enough that waiting for the end adds little to the measured wall time. */
const POLL_MS = 100;

interface FanOutTask {
  job: unknown;
  workers: number;
  /** Where moto's SQS is, and AccountB's admin, who creates the queues (the syncer may only use them). */
  sandbox: SandboxEndpoints & { admin: AwsKeys; syncer: AwsKeys };
}

const { job: input, workers, sandbox } = readTask<FanOutTask>();
const job = parseJob(input);
const deps = dependenciesFromEnvironment(consoleLogger('error'));
const fanOut = await startLocalFanOut(
  sandboxSqs(sandbox, sandbox.admin),
  sandbox.region,
  deps,
  sandboxSqs(sandbox, sandbox.syncer),
  { workers, visibilityTimeoutSeconds: 600 },
);
try {
  const start = (await handleEvent(fanOut.deps, job)) as PassStart;
  if (start.status !== 'started') throw new Error(`the pass did not start: ${JSON.stringify(start)}`);
  const record = await untilEnded(deps, job, start.fence, () => {}, { pollMs: POLL_MS, limitMinutes: 60 });
  printResult({ ...record, copyMapping: fanOut.mappings.copy.stats, cpuWaitSeconds: cpuWaitSeconds() });
} finally {
  await fanOut.stop();
}

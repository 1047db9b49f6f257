/**
 * The sync under test, alone in its own process so its peak RSS is its own: runs one job with the
 * production wiring (dependenciesFromEnvironment) and prints the run summary as JSON.
 *
 *   node run-sync.mjs <task.json>    task: { "job": <job input> }; environment: the sandbox's
 */
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/sync-job.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { printResult, readTask } from './task.js';

const { job } = readTask<{ job: unknown }>();
const summary = await syncJob(dependenciesFromEnvironment(consoleLogger('error')), parseJob(job));
printResult(summary);

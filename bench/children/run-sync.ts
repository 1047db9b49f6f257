/**
 * The sync under test, alone in its own process so its peak RSS is its own: runs one job with the
 * production wiring (dependenciesFromEnvironment) and prints the run summary as JSON, with where the
 * process's memory went (sampled every 20 ms), so a peak RSS can be explained.
 *
 *   node run-sync.mjs <task.json>    task: { "job": <job input> }; environment: the sandbox's
 */
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { cpuWaitSeconds, printResult, readTask } from './task.js';

const SAMPLE_MS = 20;
const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
const atStart = process.memoryUsage();
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const sample = () => {
  const now = process.memoryUsage();
  for (const name of Object.keys(peak) as (keyof typeof peak)[]) peak[name] = Math.max(peak[name], now[name]);
};
const sampler = setInterval(sample, SAMPLE_MS);

const { job } = readTask<{ job: unknown }>();
const summary = await syncJob(dependenciesFromEnvironment(consoleLogger('error')), parseJob(job));
clearInterval(sampler);
sample();
printResult({
  ...summary,
  cpuWaitSeconds: cpuWaitSeconds(),
  memoryMb: {
    rssAtStart: mb(atStart.rss),
    ...Object.fromEntries(Object.entries(peak).map(([name, bytes]) => [`peak ${name}`, mb(bytes)])),
  },
});

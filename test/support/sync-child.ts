/**
 * A sync run in its own process, so a test can SIGKILL it mid-upload. Reads the job (JSON) and the lease
 * TTL from argv; the environment points it at the sandbox. Prints one line per event on stdout:
 * `started`, `inflight` (the first time an upload is under way), `copied <key>`, `summary <json>`.
 */
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';

const [jobJson = '{}', leaseTtl = '1500'] = process.argv.slice(2);
const silent = { debug() {}, info() {}, warn() {}, error() {} };
let announced = false;
process.stdout.write('started\n');
const summary = await syncJob(dependenciesFromEnvironment(silent), parseJob(JSON.parse(jobJson)), {
  leaseTtlMs: Number(leaseTtl),
  onProgress: (progress) => {
    if (!announced && progress.inFlight > 0) {
      announced = true;
      process.stdout.write('inflight\n');
    }
  },
  onObjectCopied: (object) => process.stdout.write(`copied ${JSON.stringify(object.key)}\n`),
});
process.stdout.write(`summary ${JSON.stringify(summary)}\n`);

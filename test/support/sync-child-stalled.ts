/**
 * A sync run in its own process whose multipart uploads stall after their first part, so a test can
 * SIGKILL it with an upload certainly open (created, recorded, a part under way). Reads the job (JSON) and
 * the lease TTL from argv; the environment points it at the sandbox. Prints `stalled` on stdout when the
 * second part of an upload is held back. With `after-create` as the third argument it instead kills itself
 * the moment S3 has created an upload, before the run can record the upload's id.
 */
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { parseJob } from '../../functions/core/job.js';
import { syncJob } from '../../functions/core/run/sync-job.js';

const [jobJson = '{}', leaseTtl = '1500', mode = 'stall'] = process.argv.slice(2);
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const deps = dependenciesFromEnvironment(silent);
deps.destinationS3.middlewareStack.add(
  (next, context) => async (args) => {
    if (mode === 'after-create' && context.commandName === 'CreateMultipartUploadCommand') {
      const created = await next(args);
      process.kill(process.pid, 'SIGKILL');
      return created;
    }
    const part = (args.input as { PartNumber?: number }).PartNumber ?? 0;
    if (context.commandName === 'UploadPartCommand' && part > 1) {
      process.stdout.write('stalled\n');
      // A timer keeps the process alive until it is killed; the part is never sent.
      await new Promise(() => setInterval(() => {}, 60_000));
    }
    return next(args);
  },
  { step: 'initialize' },
);
await syncJob(deps, parseJob(JSON.parse(jobJson)), { leaseTtlMs: Number(leaseTtl) });

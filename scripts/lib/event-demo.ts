/**
 * `npm start`'s event step (docs/event-driven.md): with the job following events, the sandbox's real event
 * path (A's bucket → A's default bus → B's S3-event bus → the copy queue) and a copy worker on a local
 * event source mapping, an object written in AccountA arrives in AccountB with no scheduled run, and its
 * lag (the copy's record time minus the event's time) is printed.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { Job } from '../../functions/core/job.js';
import type { SyncDependencies, SyncLogger } from '../../functions/core/run/sync-types.js';
import { sandboxS3, sandboxSqs } from '../../sandbox/clients.js';
import { provisionEventPath } from '../../sandbox/event-path.js';
import { startLocalFanOut } from '../../sandbox/fan-out.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { readText } from './compare-buckets.js';

const KEY = 'reports/x.csv';
/** How long the demo waits for the event's copy: far above the second or so it takes here. */
const WAIT_MS = 30_000;

/** Runs the step; returns what went wrong (nothing, when the object arrived byte for byte). */
export async function runEventDemo(
  sandbox: Sandbox,
  deps: SyncDependencies,
  baseJob: Job,
  { ok, log }: { ok: (line: string) => void; log: SyncLogger },
): Promise<string[]> {
  const job: Job = { ...baseJob, options: { ...baseJob.options, events: true } };
  let arrived: (lagMs: number) => void = () => {};
  const copied = new Promise<number>((resolve) => {
    arrived = resolve;
  });
  const worker: SyncLogger = {
    ...log,
    info(message, ...extra) {
      const fields = Object.assign({}, ...extra) as Record<string, unknown>;
      if (message === 'event copied' && fields.key === KEY) arrived(Number(fields.lagMs));
    },
  };
  const fanOut = await startLocalFanOut(
    sandboxSqs(sandbox, sandbox.accountB.admin),
    sandbox.region,
    deps,
    sandboxSqs(sandbox, sandbox.accountB.syncer),
    { workers: 1, worker: { log: worker } },
  );
  try {
    const { Attributes } = await sandboxSqs(sandbox, sandbox.accountB.admin).send(
      new GetQueueAttributesCommand({ QueueUrl: fanOut.urls.copy, AttributeNames: ['QueueArn'] }),
    );
    const path = await provisionEventPath(
      sandbox,
      { jobId: job.jobId, source: job.source, destination: job.destination, options: job.options },
      { name: 'demo', copyQueueUrl: fanOut.urls.copy, copyQueueArn: Attributes?.QueueArn ?? '' },
    );
    try {
      ok(`AccountA's bucket sends its S3 events to B's bus ${path.busArn}, whose rule feeds the copy queue`);
      const body = `id,amount\n1,${Date.now()}\n`;
      await sandboxS3(sandbox, sandbox.accountA.admin).send(
        new PutObjectCommand({ Bucket: job.source.bucket, Key: KEY, Body: body, ContentType: 'text/csv' }),
      );
      const timeout = new Promise<undefined>((resolve) =>
        setTimeout(() => resolve(undefined), WAIT_MS).unref(),
      );
      const lagMs = await Promise.race([copied, timeout]);
      if (lagMs === undefined) return [`event path: ${KEY} did not arrive within ${WAIT_MS / 1000} s`];
      const landed = await readText(sandboxS3(sandbox, sandbox.accountB.admin), job.destination.bucket, KEY);
      if (landed !== body) return [`event path: ${KEY} arrived with other bytes than were written`];
      ok(`event path: ${KEY} copied ${(lagMs / 1000).toFixed(1)} s after the PUT, with no scheduled run`);
      return [];
    } finally {
      await path.remove();
    }
  } finally {
    await fanOut.stop();
  }
}

/**
 * A copy worker's task (docs/fan-out.md): copy a batch of objects a planner sent, exactly as an inline run
 * copies them (the GET pinned to the listed ETag, the write conditional, an identical copy adopted, the
 * ledger write fenced with the pass's fence), then settle the task once.
 *
 * A message can arrive twice, late, or after a newer pass: a settled task is not run again; a task of a
 * pass that is over is dropped; a ledger write a newer pass has overtaken is refused (LeaseLostError), and
 * the task's message goes.
 */

import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { CopyTask, TaskObject } from '../dispatch/copy-tasks.js';
import { describeError, LeaseLostError } from '../errors.js';
import { ManifestPart } from '../report/manifest-parts.js';
import { runFolder } from '../report/run-manifest.js';
import { RunTally } from '../report/run-tally.js';
import { COPIED, CopyRecorder, DEFERRED } from '../run/copy-and-record.js';
import { Semaphore } from '../run/semaphore.js';
import { InterruptedWrites } from '../state/interrupted-writes.js';
import { endIfAllSettled, settleTask, tallyCounts, tallyNote } from './end-pass.js';
import { type PassOpener, type TaskControl, taskContext } from './open-pass.js';

/** What became of one delivery of a copy task. */
export type CopyTaskOutcome = 'settled' | 'duplicate' | 'stale';

/** A copy the deadline cut: the task is not settled, and its message comes back for another worker. */
export class TaskDeferredError extends Error {
  override readonly name = 'TaskDeferredError';
}

/** S3 asked the task to slow down: its message is made visible again later, not at once. */
export class TaskThrottledError extends Error {
  override readonly name = 'TaskThrottledError';
}

/**
 * Runs one delivery of `task`.
 *
 * @throws TaskDeferredError when the deadline cut a copy; TaskThrottledError when S3 answered SlowDown for
 *   an object (after its retries); PassOverError for a pass that is over; what
 *   failed after an object was stored (the message comes back and the next delivery adopts the copy)
 */
export async function runCopyTask(
  passes: PassOpener,
  task: CopyTask,
  control: TaskControl,
): Promise<CopyTaskOutcome> {
  const pass = await passes.open(task.jobId, task.fence);
  if (await pass.tally.isSettled(task.taskId)) {
    // The delivery that settled it may have died before the pass's end was written.
    await endIfAllSettled(pass, control);
    return 'duplicate';
  }
  const { deps, job, runId } = pass;
  const { log } = control;
  // Announced before any byte is written, as an inline batch is: if this worker dies between an upload
  // and its ledger entry, the next pass knows the destination object may be this sync's own.
  const since = new Date().toISOString();
  const intent = await deps.state.putUploadIntent(job.jobId, runId, task.taskId, {
    since,
    objects: task.objects.map(({ key, size }) => ({ key, size })),
  });
  const tally = new RunTally(pass.startedAt);
  const manifest = new ManifestPart();
  const recorder = new CopyRecorder(
    taskContext(pass, control, { tally, manifest, interrupted: new InterruptedWrites() }),
  );
  const slots = new Semaphore(job.options.concurrency);
  let outcomes: (typeof DEFERRED | typeof COPIED | undefined)[];
  try {
    outcomes = await Promise.all(
      task.objects.map(async (object) => {
        await slots.acquire();
        try {
          const outcome = await recorder.copy(copyStep(object), () => {}, since);
          // Counted only once copied, in this delivery's tally: the pass adds the settling delivery's alone.
          if (outcome === COPIED && object.missedByEvents) tally.countMissedByEvents(object.key);
          return outcome;
        } finally {
          slots.release();
        }
      }),
    );
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    // A newer pass wrote one of these keys: this pass is superseded, and what it would add is stale.
    log.warn('copy task overtaken by a newer pass; dropped', { taskId: task.taskId, fence: task.fence });
    return 'stale';
  }
  if (outcomes.includes(DEFERRED)) {
    throw new TaskDeferredError(
      `copy task ${task.taskId}: the function's deadline cut ${outcomes.filter((o) => o === DEFERRED).length} copies; the message comes back for another try`,
    );
  }
  if (tally.throttled > 0) {
    // The objects S3 refused stay failed in the ledger until the task comes back; the ones copied are
    // adopted then. Settling now would leave them to the next pass.
    throw new TaskThrottledError(
      `copy task ${task.taskId}: S3 answered 503 SlowDown for ${tally.throttled} objects; the task waits before its next try`,
    );
  }
  const { bucket } = job.destination;
  // Each delivery writes a part of its own: a duplicate delivering at the same moment, even after the pass
  // has ended and its parts were joined and removed, never writes over or leaves behind the settled one's.
  const part = await manifest.save(
    deps.destinationS3,
    bucket,
    runFolder(job.options.manifestPrefix, job.jobId, runId),
    `${task.taskId}.${control.worker}`,
  );
  const note = { ...tallyNote(tally), ...(part && { part }) };
  const settled = await settleTask(pass, task.taskId, tallyCounts(tally), note, control);
  if (!settled && part) {
    await deps.destinationS3.send(new DeleteObjectCommand({ Bucket: bucket, Key: part })).catch((error) =>
      log.warn('a duplicate delivery could not remove its manifest part', {
        part,
        error: describeError(error),
      }),
    );
  }
  await deps.state.deleteUploadIntents(job.jobId, [intent]);
  return settled ? 'settled' : 'duplicate';
}

function copyStep(object: TaskObject) {
  const { reason, previous, lastModified, restored, missedByEvents: _, ...listed } = object;
  return {
    action: 'copy' as const,
    reason,
    previous,
    object: { ...listed, lastModified: new Date(lastModified), ...(restored && { restored }) },
  };
}

/**
 * A shard planner's task (docs/fan-out.md): compare one key range's listing with its ledger range (the
 * merge-join of plan.ts, unchanged), send its copies as copy tasks, carry its deletions (mirror jobs, under
 * the pass's one cap), and settle itself last.
 *
 * Each copy task is announced (`expect`) under its own id before it is sent, so `outstanding` cannot reach
 * 0 while tasks are still on their way. A planner delivered again plans the range again: what was copied
 * meanwhile is unchanged now, so its tasks may hold fewer objects under the same ids. Every id is counted
 * once and settled once; objects of a second task under a settled id wait for the next pass.
 */

import { copyTasks } from '../dispatch/copy-tasks.js';
import type { PlanShardTask } from '../dispatch/shard-tasks.js';
import { missedByEvents } from '../events/missed-by-events.js';
import { listSource } from '../plan/list-source.js';
import { type PlanStep, planSteps } from '../plan/plan.js';
import { RunTally } from '../report/run-tally.js';
import { DeletePropagator } from '../run/propagate-deletes.js';
import { InterruptedWrites, mergeUnrecorded } from '../state/interrupted-writes.js';
import { endIfAllSettled, settleTask, tallyCounts, tallyNote } from './end-pass.js';
import { openPartUpload } from './open-part-upload.js';
import { type PassOpener, type TaskControl, taskContext } from './open-pass.js';

type CopyStep = Extract<PlanStep, { action: 'copy' }> & { missedByEvents?: boolean };

/**
 * Plans one shard of a pass and sends its copy tasks.
 *
 * @returns whether this delivery settled the shard (false: a duplicate delivery, nothing done)
 * @throws PassOverError for a pass that is over; LeaseLostError when a newer pass overtook a ledger write
 */
export async function planShard(
  passes: PassOpener,
  task: PlanShardTask,
  control: TaskControl,
): Promise<boolean> {
  const pass = await passes.open(task.jobId, task.fence);
  if (await pass.tally.isSettled(task.taskId)) {
    // The delivery that settled it may have died before the pass's end was written.
    await endIfAllSettled(pass, control);
    return false;
  }
  const { deps, job, runId } = pass;
  const { log, signal } = control;
  const tally = new RunTally(pass.startedAt);
  // What runs that died may have written in this range; this pass's own tasks are at work, not dead.
  const interrupted = new InterruptedWrites();
  await interrupted.read(deps.state, job.jobId, { exceptRunId: runId, range: task.range });
  // Deletions write no manifest lines.
  const manifest = { add: async () => {}, addVanished: async () => {} };
  // The pass counts its deletions where it records them (recordDeletion), not in this delivery's tally: a
  // twin delivery may have deleted a key this one no longer sees, and only one of them settles the shard.
  const deletes = new DeletePropagator(taskContext(pass, control, { tally, manifest, interrupted }), {
    reserve: (key) => pass.tally.reserveDeletion(key, job.options.maxDeletesPerRun),
    record: async (entry, token) => {
      const recorded = await pass.tally.recordDeletion(entry.key, entry.sequencer, token);
      return typeof recorded === 'object' ? recorded : undefined;
    },
  });

  const listing = listSource(
    pass.source.s3,
    job.source.bucket,
    job.source.prefix,
    task.range,
    tally.list,
    signal,
  );
  const steps = planSteps(listing, deps.state.ledger(job.jobId, task.range));
  let partTasks = 0;
  async function* copies(): AsyncGenerator<CopyStep> {
    for await (const step of steps) {
      const key = step.action === 'deleted' ? step.entry.key : step.object.key;
      interrupted.markSeen(key);
      if (step.action !== 'deleted') tally.countListed();
      switch (step.action) {
        case 'unchanged':
          tally.countSkipped();
          break;
        case 'archived':
          tally.countArchived(key);
          break;
        case 'deleted':
          await deletes.propagate(step.entry);
          break;
        case 'copy': {
          // The worker cannot read the dead runs' intents for its keys: the planner hands them over.
          const write = interrupted.get(key);
          const previous = write
            ? { ...step.previous, key, pending: mergeUnrecorded(step.previous?.pending, write) }
            : step.previous;
          const copy = { ...step, ...(previous && { previous }) };
          // A giant object goes as part tasks (open-part-upload.ts); one the source refuses goes as a copy
          // task, whose worker reports it as it reports any other. `missedByEvents` is judged here for
          // both: kept on the upload's record, it is counted by the task that settles the completed copy.
          const missed = missedByEvents(step, pass.eventWindow);
          if (deps.queues.part && step.object.size > job.options.fanOut.partTasksAbove) {
            const opened = await openPartUpload(pass, { ...copy, missedByEvents: missed }, control);
            if (opened.status !== 'refused') {
              partTasks += opened.status === 'sent' ? opened.tasks : 0;
              break;
            }
          }
          // Judged here, where the ledger's failure is known; counted by the worker that copies it, once.
          yield { ...copy, ...(missed && { missedByEvents: true }) };
        }
      }
    }
  }
  let sent = 0;
  for await (const copy of copyTasks(copies(), { jobId: job.jobId, fence: task.fence, shard: task.taskId })) {
    await pass.tally.expect(copy.taskId, 1);
    await deps.queues.copy(copy);
    sent += 1;
  }
  await deletes.resolveUnseen();
  log.info('shard planned', {
    jobId: job.jobId,
    fence: task.fence,
    shard: task.taskId,
    copyTasks: sent,
    partTasks,
  });
  return settleTask(pass, task.taskId, { ...tallyCounts(tally), copyTasks: sent }, tallyNote(tally), control);
}

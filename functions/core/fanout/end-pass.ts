/**
 * How a fan-out pass's tasks settle, and how the pass ends once: every task adds its counts to the pass in
 * one transaction (PassTally); the worker whose settlement leaves nothing outstanding claims the end, and
 * only that worker joins the manifest parts into the run's manifest, writes `_SUCCESS`, the run record and
 * the run event, as an inline run does at its end.
 */
import { describeError } from '../errors.js';
import { announceRun } from '../report/announce-run.js';
import { gatherParts, removeParts } from '../report/manifest-parts.js';
import { RunManifest, runFolder } from '../report/run-manifest.js';
import { type KeyReason, MAX_LISTED_KEYS, type RunTally } from '../report/run-tally.js';
import { LAMBDA_MAX_TIMEOUT_MS } from '../run/run-deadline.js';
import type { RunSummary, SyncLogger } from '../run/sync-types.js';
import type { ConditionItem, PassCounts, PassState } from '../state/pass-tally.js';
import { intentPrefix } from '../state/state-store.js';
import type { OpenPass } from './open-pass.js';

/** What a task leaves for the end of the pass besides its counts. */
export interface TaskNote {
  failures?: KeyReason[];
  vanishedKeys?: KeyReason[];
  archivedKeys?: string[];
  /** The replication lag the task left (seconds), the pass's being the largest. */
  lagSeconds?: number;
  /** The first keys the task counted in `missedByEvents`, for the pass's log line. */
  missedKeys?: string[];
  /** The key of the manifest part the settled delivery wrote (copy tasks with lines). */
  part?: string;
}

/** A task's counts, from the tally it kept: every figure the run summary adds up. */
export function tallyCounts(tally: RunTally): PassCounts {
  const { listed, copied, skipped, failed, bytes } = tally.progress;
  return {
    listed,
    copied,
    skipped,
    failed,
    bytes,
    ...tally.counts,
    listRequests: tally.list.listRequests,
    backlogObjects: tally.backlog.objects,
    backlogBytes: tally.backlog.bytes,
    ...(tally.missedByEvents > 0 && { missedByEvents: tally.missedByEvents }),
  };
}

/** A task's note, from its tally: the first few keys of each kind, and its lag. */
export function tallyNote(tally: RunTally): TaskNote {
  return {
    ...(tally.failures.length > 0 && { failures: tally.failures.slice(0, MAX_LISTED_KEYS) }),
    ...(tally.vanishedKeys.length > 0 && { vanishedKeys: tally.vanishedKeys.slice(0, MAX_LISTED_KEYS) }),
    ...(tally.archivedKeys.length > 0 && { archivedKeys: tally.archivedKeys.slice(0, MAX_LISTED_KEYS) }),
    ...(tally.missedKeys.length > 0 && { missedKeys: tally.missedKeys.slice(0, MAX_LISTED_KEYS) }),
    ...(tally.backlog.objects > 0 && { lagSeconds: tally.replicationLagSeconds() }),
  };
}

/**
 * Settles task `taskId` of `pass` once, and ends the pass if this was its last outstanding task and this
 * worker wins the claim. Returns false for a task settled before (a duplicate delivery).
 *
 * @throws SettlementRefusedError when `requires` (PassTally.settle) does not hold
 */
export async function settleTask(
  pass: OpenPass,
  taskId: string,
  counts: PassCounts,
  note: TaskNote,
  control: EndControl,
  requires?: ConditionItem,
): Promise<boolean> {
  const settled = await pass.tally.settle(taskId, counts, note as Record<string, unknown>, requires);
  if (settled.outstanding === 0) await endIfAllSettled(pass, control);
  return !settled.duplicate;
}

/** What ending a pass needs of the worker: its logger, its name, its deadline (epoch ms) and signal. */
export type EndControl = { log: SyncLogger; worker: string; deadlineAt?: number; signal?: AbortSignal };

/** How often a delivery that found the pass being ended by another worker looks again. */
const END_WATCH_MS = 1_000;

/**
 * Ends `pass` if every task has settled and no live worker is ending it: claims the end when nobody has
 * (the worker that settled last may have died before claiming it); while another worker is ending it,
 * waits for the pass to end (unless `options.wait` is false: the pass starter, which answers `busy`), and
 * takes the end over once that worker's deadline has passed (it died while ending: Lambda has killed it by
 * then). Every delivery of a settled task calls this, so the message of a worker that died there, coming
 * back, ends the pass; and the next pass's start calls it, so a pass whose ending message went to the
 * dead-letter queue still ends. Returns whether this worker ended it.
 *
 * @throws PassEndingError when this worker's own deadline comes first: its message comes back
 */
export async function endIfAllSettled(
  pass: OpenPass,
  control: EndControl,
  options: { wait?: boolean } = {},
): Promise<boolean> {
  const { log, worker } = control;
  const until = new Date(control.deadlineAt ?? Date.now() + LAMBDA_MAX_TIMEOUT_MS);
  let claimed = false;
  for (;;) {
    const stored = await pass.tally.read();
    if (stored.state === 'running' && stored.outstanding === 0) {
      claimed = await pass.tally.claimEnd(worker, until);
    } else if (stored.state === 'ending' && stored.endedBy !== undefined) {
      if (Date.parse(stored.endingUntil ?? '') < Date.now()) {
        claimed = await pass.tally.takeOverEnd(worker, stored.endedBy, until);
        if (claimed)
          log.warn('took over the end of a pass whose ender died', {
            fence: pass.fence,
            from: stored.endedBy,
          });
        else continue;
      } else {
        if (options.wait === false) return false;
        if (control.signal?.aborted) {
          throw new PassEndingError(
            `pass ${pass.fence} is being ended by ${stored.endedBy} until ${stored.endingUntil}; this message comes back`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, END_WATCH_MS));
        continue;
      }
    }
    break;
  }
  if (!claimed) return false;
  const parts = await endPass(pass, control);
  if (!(await pass.tally.ended(worker))) return false;
  // Removed only once the pass has ended: a worker that takes over an end its claimer died in joins them
  // again. A role that may not delete them (a job's own manifestPrefix) leaves them.
  await removeParts(pass.deps.destinationS3, pass.job.destination.bucket, parts).catch((error: unknown) =>
    log.warn('manifest parts kept: they could not be removed', {
      fence: pass.fence,
      error: describeError(error),
    }),
  );
  return true;
}

/** Another worker is ending the pass: the task's message comes back later. */
export class PassEndingError extends Error {
  override readonly name = 'PassEndingError';
}

/**
 * Ends `pass` (its end claimed by this worker): the manifest, `_SUCCESS`, the run record, the run event,
 * and the upload intents of this pass and of the runs that died before it, all settled now. Returns the
 * manifest parts it joined, for removal once the pass is marked ended.
 */
export async function endPass(
  pass: OpenPass,
  control: Pick<EndControl, 'log' | 'worker'>,
): Promise<string[]> {
  const { log } = control;
  const { deps, job, runId, startedAt } = pass;
  const stored = await pass.tally.read();
  const notes: TaskNote[] = [];
  for await (const task of pass.tally.settledTasks()) if (task.note) notes.push(task.note as TaskNote);
  const manifest = new RunManifest(
    { jobId: job.jobId, runId, startedAt },
    { bucket: job.destination.bucket, prefix: job.options.manifestPrefix },
  );
  const folder = runFolder(job.options.manifestPrefix, job.jobId, runId);
  const settledParts = new Set(notes.flatMap((note) => (note.part ? [note.part] : [])));
  const parts = await gatherParts(deps.destinationS3, job.destination.bucket, folder, manifest, settledParts);
  const total = (name: string) => stored.totals[name] ?? 0;
  const finishedAt = new Date().toISOString();
  const summary: RunSummary = {
    jobId: job.jobId,
    runId,
    status: 'complete',
    startedAt,
    finishedAt,
    durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
    listed: total('listed'),
    copied: total('copied'),
    skipped: total('skipped'),
    failed: total('failed'),
    bytes: total('bytes'),
    inFlight: 0,
    deferred: total('deferred'),
    vanished: total('vanished'),
    archived: total('archived'),
    deleted: total('deleted'),
    listRequests: total('listRequests'),
    // The workers' own DynamoDB use is in their metrics; a pass has no single client to count it.
    readCapacityUnits: 0,
    writeCapacityUnits: 0,
    replicationLagSeconds: Math.max(0, ...notes.map((note) => note.lagSeconds ?? 0)),
    backlogObjects: total('backlogObjects'),
    backlogBytes: total('backlogBytes'),
    ...(job.options.events && { missedByEvents: total('missedByEvents') }),
    failures: notes.flatMap((note) => note.failures ?? []).slice(0, MAX_LISTED_KEYS),
    archivedKeys: notes.flatMap((note) => note.archivedKeys ?? []).slice(0, MAX_LISTED_KEYS),
    vanishedKeys: notes.flatMap((note) => note.vanishedKeys ?? []).slice(0, MAX_LISTED_KEYS),
  };
  summary.manifest = await manifest.publish(deps.destinationS3, finishedAt, {
    status: summary.status,
    copied: summary.copied,
    failed: summary.failed,
    deferred: summary.deferred,
  });
  const record = { ...summary, mode: 'fan-out', fence: pass.fence };
  await deps.state.putRunRecord(job.jobId, record);
  // Every upload this pass or an earlier one announced is settled in the ledger now. A newer pass cannot
  // have started (this one was running), so every intent up to this pass's run id is done with.
  const intents = await deps.state.readUploadIntents(job.jobId);
  await deps.state.deleteUploadIntents(
    job.jobId,
    intents.map((intent) => intent.id).filter((id) => id <= `${intentPrefix(runId)}\uffff`),
  );
  if ((summary.missedByEvents ?? 0) > 0) {
    log.warn('the pass copied changes no event delivered; check the event path (doctor)', {
      jobId: job.jobId,
      missedByEvents: summary.missedByEvents,
      keys: notes.flatMap((note) => note.missedKeys ?? []).slice(0, MAX_LISTED_KEYS),
    });
  }
  await announceEnd(pass, stored, summary, control);
  log.info('pass finished', { ...summary, failures: summary.failures.length, fence: pass.fence });
  return parts;
}

/**
 * The run's metrics and its event, the event once per pass as far as the pass item can tell: an ender that
 * took the end over finds the event recorded published by the ender before it and does not publish it
 * again. The record is written after EventBridge accepted the event, so an ender that dies between the two
 * leaves the event to be published again, with the same `runId` (docs/fan-out.md, "A pass ends once"):
 * at least once, never lost. The metrics go out with every end: a killed ender never flushed its own.
 */
export async function announceEnd(
  pass: OpenPass,
  stored: PassState,
  summary: RunSummary,
  control: Pick<EndControl, 'log' | 'worker'>,
): Promise<void> {
  const { log, worker } = control;
  const again = stored.eventPublishedAt !== undefined;
  if (again) {
    log.info('run event published by an earlier ender of this pass; not again', {
      fence: pass.fence,
      runId: pass.runId,
      publishedAt: stored.eventPublishedAt,
    });
  }
  const published = await announceRun(pass.deps, pass.job, summary, log, { event: !again });
  if (published && !(await pass.tally.markEventPublished(worker))) {
    log.warn('run event published, but this worker no longer ends the pass', { fence: pass.fence, worker });
  }
}

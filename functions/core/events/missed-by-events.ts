/**
 * The health figure of a job that follows S3 events: how many changes its reconciling pass found that no
 * event had delivered (docs/event-driven.md). On a healthy event path it reads 0; anything else means the
 * producer's rule, the bus, its policy or the worker lost changes, and the pass repaired them.
 */
import type { PlanStep } from '../plan/plan.js';

/**
 * How long an object written before the pass may still have its event on the way, by its LastModified:
 * EventBridge delivers S3 events within seconds, and a copy worker's retry comes back after the copy
 * queue's visibility timeout (15 minutes, the worker's own timeout). A first failed attempt records a
 * failure in the ledger and is not counted anyway; this covers the attempts still running or queued.
 */
export const EVENT_GRACE_MS = 15 * 60_000;

/** The LastModified times within which every change should have come by event: `(from, to]`. */
export interface EventWindow {
  from: Date;
  to: Date;
}

/**
 * The window a reconciling pass judges by: from the end of the job's last complete pass (what changed
 * before it was that pass's to find; the first pass of a job is its backfill and judges nothing) to the
 * pass's start less the grace for events still on the way. Objects changed while the last pass ran and
 * not seen by it are not counted: the figure errs low rather than blame events for a pass's timing.
 *
 * @returns undefined when there is nothing to judge (no complete pass yet, or a window of no time)
 */
export function eventWindow(
  lastCompletePassFinishedAt: string | undefined,
  passStartedAt: Date,
  graceMs: number = EVENT_GRACE_MS,
): EventWindow | undefined {
  if (lastCompletePassFinishedAt === undefined) return undefined;
  const from = new Date(lastCompletePassFinishedAt);
  const to = new Date(passStartedAt.getTime() - graceMs);
  return from < to ? { from, to } : undefined;
}

/**
 * Whether the pass's copy `step` is one the job's events missed: a new or changed object last modified
 * within `window`, whose ledger entry records no failed attempt (an event that was delivered and failed is
 * the worker's error, which its DLQ and failure counts show, not a missed event).
 *
 * Real S3 stamps a multipart object with the time its upload started, so a long upload completed inside
 * the grace may read as missed: a rare false alarm that errs on the side of looking. Deletions are not
 * counted: the ledger holds no deletion time to judge the window by.
 */
export function missedByEvents(step: PlanStep, window: EventWindow | undefined): boolean {
  if (window === undefined || step.action !== 'copy' || step.previous?.failure !== undefined) return false;
  const modified = step.object.lastModified.getTime();
  return modified > window.from.getTime() && modified <= window.to.getTime();
}

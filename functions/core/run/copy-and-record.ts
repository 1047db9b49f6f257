/**
 * One planned copy, from the copy room's verified write to what the run records of it: the ledger entry,
 * the manifest line, the progress, or why it was not copied (failed, vanished, cut by the deadline). The
 * multipart uploads earlier runs' deadlines cut are kept in cut-uploads.ts until their key's copy continues
 * them; what the ledger records of a copy is built in copy-records.ts.
 */
import { type Copier, copierFor } from '../copy/copy-method.js';
import type { UploadRecords } from '../copy/copy-object.js';
import { retryObjectCopy } from '../copy/retry.js';
import {
  describeError,
  isSlowDown,
  LeaseLostError,
  ObjectCopyError,
  SourceArchivedError,
  SourceVanishedError,
} from '../errors.js';
import { destinationKeyFor, MAX_KEY_BYTES } from '../plan/keys.js';
import type { SourceObject } from '../plan/list-source.js';
import type { PlanStep } from '../plan/plan.js';
import { isMarkedForDeletion } from '../state/deletion-marks.js';
import { mergeUnrecorded } from '../state/interrupted-writes.js';
import type { LedgerEntry } from '../state/state-store.js';
import { changedByEvent, copiedLedgerEntry, keptSequencer } from './copy-records.js';
import { CutUploads } from './cut-uploads.js';
import type { RunContext } from './run-context.js';

/**
 * The SHA-256 reported for a copy continued across runs: no one run read all its bytes, which were checked
 * against the source's multipart ETag instead.
 */
const NOT_HASHED = '';

/** What a copy cut by the deadline returns: its key is left unsettled for the next run. */
export const DEFERRED = Symbol('deferred');
/**
 * What a copy returns when the object is at the destination and recorded, by this attempt or by a twin
 * delivery of its task: a fan-out worker counts its `missedByEvents` objects only then.
 */
export const COPIED = Symbol('copied');
/** A key an event has (its change recorded, or its deletion under way): counted skipped. */
const LEFT = Symbol('left');

/** Copies planned objects one at a time (the run calls it concurrently) and records each outcome. */
export class CopyRecorder {
  readonly #cutUploads: CutUploads;
  readonly #uploadRecords: UploadRecords;
  /** The job's copy method: streamed, or server-side (copy/copy-method.ts). */
  readonly #copy: Copier;

  constructor(readonly run: RunContext) {
    const { state } = run.deps;
    const { jobId } = run.job;
    const { runId, delivery } = run.control;
    this.#uploadRecords = {
      save: (record) => state.putMultipartUpload(jobId, { ...record, runId, ...(delivery && { delivery }) }),
      forget: (key) => state.deleteMultipartUpload(jobId, key, delivery),
    };
    this.#copy = copierFor(run.job);
    this.#cutUploads = new CutUploads(run);
  }

  /** Aborts the multipart uploads of runs that died; keeps those a deadline cut for their key's copy. */
  adoptCutUploads(): Promise<void> {
    return this.#cutUploads.adopt();
  }

  /** Aborts the cut uploads no copy of a full pass took (their key was deleted or no longer needs copying). */
  abortUntakenCutUploads(): Promise<void> {
    return this.#cutUploads.abortUntaken();
  }

  /**
   * Copies one object and records it; `intentSince` is when its batch's upload intent was written.
   * `release` hands the concurrency slot back once the bytes are stored.
   *
   * @returns DEFERRED when the deadline cut the copy, COPIED when the object is copied and recorded
   * @throws LeaseLostError, or what failed after the object was stored (the run stops)
   */
  async copy(
    step: Extract<PlanStep, { action: 'copy' }>,
    release: () => void,
    intentSince: string,
  ): Promise<typeof DEFERRED | typeof COPIED | undefined> {
    const { deps, job, control, source, log, lease, tally, manifest, interrupted } = this.run;
    const { object, previous } = step;
    const destinationKey = destinationKeyFor(object.key, job.source.prefix, job.destination.prefix);
    const interruptedWrite = mergeUnrecorded(previous?.pending, interrupted.get(object.key));
    // What may be at the destination unrecorded if this attempt fails: an earlier run's write, this
    // attempt's (announced in its batch's intent), or either. Kept with the failure for the next run.
    const pending = job.options.mirror
      ? interruptedWrite
      : mergeUnrecorded(interruptedWrite, { sizes: [object.size], since: intentSince });
    // Set once the destination holds the object: a failure after that is not "not copied".
    let stored = false;
    try {
      if (Buffer.byteLength(destinationKey) > MAX_KEY_BYTES) {
        throw new ObjectCopyError(
          `destination key for "${object.key}" would exceed S3's ${MAX_KEY_BYTES}-byte limit: ` +
            'shorten job.destination.prefix',
          // Stryker disable next-line ObjectLiteral,BooleanLiteral: thrown before the retry loop, so never retried either way; the flag says a later run would fail the same
          { retryable: false },
        );
      }
      const cutUpload = this.#cutUploads.take(object.key);
      const result = await retryObjectCopy(
        () =>
          this.#copy(
            { sourceS3: source.s3, destinationS3: deps.destinationS3 },
            {
              sourceBucket: job.source.bucket,
              key: object.key,
              etag: object.etag,
              size: object.size,
              destinationBucket: job.destination.bucket,
              destinationKey,
              previousDestinationEtag: previous?.destinationEtag,
              overwrite: job.options.mirror,
              interruptedWrite,
              cutUpload,
              copyTags: job.options.copyTags,
            },
            { signal: control.signal, uploads: this.#uploadRecords, partSize: control.minPartSize },
          ),
        { ...control.objectRetry, signal: control.signal, credentials: source.credentials },
      );
      stored = true;
      release();
      // With the ETag it wrote: a deletion deleting another copy (If-Match) cannot remove this one, so the
      // record may go over its mark, and the deletion, delivered again, deletes what is recorded.
      const recordedByEvent = await deps.state.putPlannedEntry(
        job.jobId,
        { ...copiedLedgerEntry(object, destinationKey, result, control.runId), ...keptSequencer(previous) },
        lease.fence,
        result.destinationEtag,
      );
      if (recordedByEvent) {
        this.#leaveToEvent(object, recordedByEvent);
        return;
      }
      tally.countCopied(result.bytes);
      control.onObjectCopied?.({
        key: object.key,
        destinationKey,
        reason: step.reason,
        bytes: result.bytes,
        etag: object.etag,
        sha256: result.sha256 ?? NOT_HASHED,
        lastModified: object.lastModified.toISOString(),
      });
      await manifest.add({
        destinationKey,
        sourceKey: object.key,
        size: result.bytes,
        etag: object.etag,
        sha256: result.sha256 ?? NOT_HASHED,
        sourceLastModified: object.lastModified.toISOString(),
      });
      log.debug('object copied', { key: object.key, bytes: result.bytes, reason: step.reason });
      return COPIED;
    } catch (error) {
      if (error instanceof LeaseLostError) throw error;
      if (stored) {
        // Its batch's upload intent stays in the table (the run stops before deleting it), so the next
        // run adopts this object rather than copying it again.
        log.error('object stored at the destination but not recorded; the next run adopts it', {
          key: object.key,
          error: describeError(error),
        });
        throw error;
      }
      if (error instanceof SourceArchivedError) {
        // Not a failure and nothing to record: the next run tries again, and copies it once restored.
        tally.countArchived(object.key);
        log.warn('object archived; restore it to copy it', { key: object.key, reason: error.message });
        return;
      }
      if (error instanceof SourceVanishedError) {
        const reason = error.message;
        tally.countVanished(object.key, reason);
        await manifest.addVanished({
          sourceKey: object.key,
          etag: object.etag,
          sourceLastModified: object.lastModified.toISOString(),
          reason,
        });
        log.info('object deleted before it could be copied', { key: object.key });
        return;
      }
      if (control.signal.aborted) {
        // Cut by the deadline (or a stop request): not a failure, the next run copies it. What the
        // attempt may have stored before the cut stays on record, as for a failure.
        const firstSeenAt = tally.firstSeen(previous);
        const kept = await deps.state.putUncopiedEntry(
          job.jobId,
          { ...previous, key: object.key, pending, firstSeenAt },
          lease.fence,
          previous?.copiedAt,
        );
        const instead = await this.#keptInstead(object, previous, kept);
        if (instead) return instead === COPIED ? COPIED : undefined;
        tally.countDeferred(object.size, firstSeenAt);
        log.info('copy cut at the deadline; the next run copies it', { key: object.key });
        return DEFERRED;
      }
      // The attempt may have stored the object before failing, so its intent stays in the ledger.
      return await this.#recordFailure(object, { ...previous, key: object.key, pending }, error);
    }
  }

  /**
   * Records when the run first saw each planned copy it never started (the deadline came first), for
   * keys whose ledger entry does not say so yet: the next runs' replication lag counts from then. Keeps
   * the rest of each entry as it was, so the next plan still sees the key as new or changed.
   */
  async rememberUnstarted(steps: Extract<PlanStep, { action: 'copy' }>[]): Promise<void> {
    const { deps, job, lease, tally } = this.run;
    // Stryker disable next-line ConditionalExpression,MethodExpression: writing an entry that already has firstSeenAt stores the same item again; the filter only saves the writes
    const unrecorded = steps.filter(({ previous }) => previous?.firstSeenAt === undefined);
    await Promise.all(
      unrecorded.map(({ object, previous }) =>
        // An event that recorded the key meanwhile keeps its entry: it copied the key, so nothing waits.
        deps.state.putPlannedEntry(
          job.jobId,
          { ...previous, key: object.key, firstSeenAt: tally.firstSeen(previous) },
          lease.fence,
        ),
      ),
    );
  }

  async #recordFailure(
    object: SourceObject,
    previous: LedgerEntry | undefined,
    error: unknown,
  ): Promise<typeof COPIED | undefined> {
    const { key, etag } = object;
    const reason = describeError(error);
    const attempts = previous?.failure?.etag === etag ? previous.failure.attempts + 1 : 1;
    const firstSeenAt = this.run.tally.firstSeen(previous);
    // Keep what the earlier copy recorded, so the next run still sees the key as changed and the
    // overwrite stays conditional on this sync's own last copy.
    const kept = await this.run.deps.state.putUncopiedEntry(
      this.run.job.jobId,
      { ...previous, key, failure: { reason, attempts, at: new Date().toISOString(), etag }, firstSeenAt },
      this.run.lease.fence,
      previous?.copiedAt,
    );
    const instead = await this.#keptInstead(object, previous, kept);
    if (instead) return instead === COPIED ? COPIED : undefined;
    this.run.tally.countFailed(key, reason, object.size, firstSeenAt);
    if (isSlowDown(error)) this.run.tally.throttled += 1;
    this.run.log.warn('object not copied', { key, reason, attempts });
  }

  /**
   * What a failed or cut copy's record found on record instead of writing its own (`kept`), in order: a
   * deleter holds the key (state/deletion-marks.ts), so whatever is on record is being deleted; another
   * delivery of the same task copied it; or the source moved on while this attempt copied (its pinned
   * read refused) or an event's newer copy holds the destination (its conditional write refused), so the
   * event has the key.
   *
   * @returns COPIED or LEFT (counted, logged), or undefined when the outcome is still this attempt's
   */
  async #keptInstead(
    object: SourceObject,
    previous: LedgerEntry | undefined,
    kept: LedgerEntry | undefined,
  ): Promise<typeof COPIED | typeof LEFT | undefined> {
    if (kept && isMarkedForDeletion(kept)) {
      this.#leaveToEvent(object, kept);
      return LEFT;
    }
    if (await this.#copiedByTwin(object, kept)) return COPIED;
    if (kept && changedByEvent(previous, kept)) {
      this.#leaveToEvent(object, kept);
      return LEFT;
    }
    return undefined;
  }

  /**
   * An event recorded a change of the key while this pass copied it, so its entry stands (putPlannedEntry
   * refused this pass's): it read the source after the plan did, so what it copied is at least as new. Or
   * an event's deletion holds the key (a live mark, state/deletion-marks.ts). Counted as already current,
   * like a key the ledger shows copied, not as copied here nor as a failure.
   */
  #leaveToEvent(object: SourceObject, recorded: LedgerEntry): void {
    this.run.tally.countSkipped();
    const message = isMarkedForDeletion(recorded)
      ? 'an event is deleting the key; left to the event'
      : 'object copied and recorded by an event meanwhile; its record kept';
    this.run.log.info(message, { key: object.key, sequencer: recorded.sequencer });
  }

  /**
   * Whether `kept`, the entry a failed or cut attempt found on record instead of writing its own, is a copy
   * of this very version: another delivery of the same task copied it meanwhile. It is then counted, and
   * listed in the manifest, as copied here too, so the task's totals are the same whichever delivery
   * settles it (the pass counts one settlement per task).
   */
  async #copiedByTwin(object: SourceObject, kept: LedgerEntry | undefined): Promise<boolean> {
    if (kept?.destinationKey === undefined || kept.etag !== object.etag) return false;
    const bytes = kept.size ?? object.size;
    this.run.tally.countCopied(bytes);
    await this.run.manifest.add({
      destinationKey: kept.destinationKey,
      sourceKey: object.key,
      size: bytes,
      etag: object.etag,
      sha256: kept.sha256 ?? NOT_HASHED,
      sourceLastModified: object.lastModified.toISOString(),
    });
    this.run.log.info('object copied and recorded by another delivery of its task; its record kept', {
      key: object.key,
    });
    return true;
  }
}

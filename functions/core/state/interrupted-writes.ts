/**
 * Interrupted writes: the keys that runs which died may have uploaded without recording them, read from
 * their upload intents, and which of those keys this pass has not yet met in the listing or the ledger.
 */
import type { KeyRange } from '../plan/list-source.js';
import { inRange } from '../plan/shards.js';
import { intentPrefix, type StateStore, type UnrecordedWrite } from './state-store.js';

/** The dead runs' upload intents, by key; empty until `read`. */
export class InterruptedWrites {
  readonly #writes = new Map<string, UnrecordedWrite>();
  readonly #intentIds: string[] = [];
  /** Interrupted keys this pass has not met in the listing or the ledger. */
  #unresolved = new Set<string>();

  /**
   * Reads every upload intent on record. Called with the lease held, so each belongs to a run that died
   * mid-batch. A fan-out planner reads those of its shard's `range` only, and leaves out its own pass's
   * (`exceptRunId`: tasks still at work, not dead).
   */
  async read(
    state: StateStore,
    jobId: string,
    only: { exceptRunId?: string; range?: KeyRange } = {},
  ): Promise<void> {
    for (const intent of await state.readUploadIntents(jobId)) {
      if (only.exceptRunId !== undefined && intent.id.startsWith(intentPrefix(only.exceptRunId))) continue;
      this.#intentIds.push(intent.id);
      // Two dead runs may have announced one key; either's write may be the one at the destination.
      for (const object of intent.objects) {
        if (only.range && !inRange(object.key, only.range)) continue;
        const write = { sizes: [object.size], since: intent.since };
        this.#writes.set(object.key, mergeUnrecorded(this.#writes.get(object.key), write));
      }
    }
    this.#unresolved = new Set(this.#writes.keys());
  }

  /** What a dead run may have written at `key`, if it announced it. */
  get(key: string): UnrecordedWrite | undefined {
    return this.#writes.get(key);
  }

  /** Notes that the pass met `key`, so it is no longer unresolved. */
  markSeen(key: string): void {
    this.#unresolved.delete(key);
  }

  /** Interrupted keys the pass met in neither the listing nor the ledger. */
  unresolvedKeys(): Iterable<string> {
    return this.#unresolved;
  }

  /** The dead runs' intents, to delete once a full pass has settled their keys. */
  get intentIds(): readonly string[] {
    return this.#intentIds;
  }
}

/** Either unrecorded write may be at the destination: any of their sizes, after the earlier time. */
export function mergeUnrecorded(a: UnrecordedWrite | undefined, b: UnrecordedWrite): UnrecordedWrite;
export function mergeUnrecorded(a?: UnrecordedWrite, b?: UnrecordedWrite): UnrecordedWrite | undefined;
export function mergeUnrecorded(a?: UnrecordedWrite, b?: UnrecordedWrite): UnrecordedWrite | undefined {
  if (!a || !b) return a ?? b;
  const [earlier] = [a.since, b.since].sort();
  return { sizes: [...new Set([...a.sizes, ...b.sizes])], since: earlier ?? a.since };
}

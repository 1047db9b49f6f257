/**
 * The task pool: the run's concurrency slots (and the fewer large-object slots), the tasks in flight, and
 * the first fatal error any of them hit, which stops the run.
 */
import { Semaphore } from './semaphore.js';

const MiB = 1024 * 1024;

/** Objects up to this size hold at most this much memory each while copied, up to `concurrency` at once. */
export const SMALL_OBJECT_BYTES = 1 * MiB;
/**
 * Larger objects (one PutObject up to PART_SIZE, multipart beyond) also take one of these slots, so part
 * buffers stay below concurrency × SMALL_OBJECT_BYTES + LARGE_OBJECT_CONCURRENCY × QUEUE_SIZE × PART_SIZE
 * (see copy-object.ts): 16 + 128 MiB at the default concurrency; 4 large objects keep 16 parts in flight.
 */
export const LARGE_OBJECT_CONCURRENCY = 4;

/** Told when a task takes its slot and when it hands it back (the progress counts tasks in flight). */
export interface TaskPoolHooks {
  started(): void;
  released(): void;
}

/** Runs tasks in bounded slots and keeps the first fatal error. */
export class TaskPool {
  readonly #slots: Semaphore;
  readonly #largeSlots = new Semaphore(LARGE_OBJECT_CONCURRENCY);
  readonly #inFlight = new Set<Promise<void>>();
  #fatal: Error | undefined;

  constructor(
    concurrency: number,
    readonly hooks: TaskPoolHooks,
  ) {
    this.#slots = new Semaphore(concurrency);
  }

  /** The first error that stops the run (a lost lease, a failed ledger write), if any. */
  get fatal(): Error | undefined {
    return this.#fatal;
  }

  /** Records `error` as the run's fatal error unless one is already kept. */
  fail(error: unknown): void {
    this.#fatal ??= error instanceof Error ? error : new Error(String(error));
  }

  /**
   * Waits for a slot (and a large one for `large`), then starts `task` without waiting for it. The task
   * may hand its slot back early through `release` (a copy does, once its bytes are written, so the
   * ledger write that follows does not hold up the next copy). `finish` runs after the task with what it
   * returned (undefined when it threw, which is kept as fatal).
   */
  async start(
    large: boolean,
    task: (release: () => void) => Promise<unknown>,
    finish: (outcome: unknown) => Promise<void> | undefined,
  ): Promise<void> {
    await this.#slots.acquire();
    if (large) await this.#largeSlots.acquire();
    this.hooks.started();
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.hooks.released();
      if (large) this.#largeSlots.release();
      this.#slots.release();
    };
    let outcome: unknown;
    const running = task(release)
      .then((result) => {
        outcome = result;
      })
      .catch((error: unknown) => {
        this.fail(error);
      })
      .finally(async () => {
        release();
        this.#inFlight.delete(running);
        await finish(outcome)?.catch((error: unknown) => {
          this.#fatal ??= error as Error;
        });
      });
    this.#inFlight.add(running);
  }

  /** Waits for every task started so far. */
  async drain(): Promise<void> {
    await Promise.all(this.#inFlight);
  }
}

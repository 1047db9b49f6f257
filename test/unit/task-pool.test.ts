import { describe, expect, it, vi } from 'vitest';
import {
  LARGE_OBJECT_CONCURRENCY,
  SMALL_OBJECT_BYTES,
  TaskPool,
} from '../../functions/core/run/task-pool.js';

/** A task that runs until `finish()` is called. */
const gate = () => {
  let finish!: (value?: unknown) => void;
  let fail!: (error: Error) => void;
  const done = new Promise((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return { done, finish, fail };
};

const hooks = () => ({ started: vi.fn(), released: vi.fn() });
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('TaskPool', () => {
  it('runs at most `concurrency` tasks at once, and the next as soon as one hands its slot back', async () => {
    const pool = new TaskPool(2, hooks());
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];
    const starts = gates.map((g, i) =>
      pool.start(
        false,
        () => {
          started.push(i);
          return g.done;
        },
        () => undefined,
      ),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    gates[0]?.finish();
    await starts[2];
    expect(started).toEqual([0, 1, 2]);
    gates[1]?.finish();
    gates[2]?.finish();
    await pool.drain();
  });

  it("calls an object small up to 1 MiB, the figure README's memory bound (`concurrency × 1 MiB + 128 MiB`) is computed from", () => {
    // 16 copies of small objects (the default concurrency) hold at most 16 MiB of buffers.
    expect(SMALL_OBJECT_BYTES).toBe(1_048_576);
  });

  it('gives large objects their own, smaller set of slots', async () => {
    const pool = new TaskPool(16, hooks());
    const gates = Array.from({ length: LARGE_OBJECT_CONCURRENCY + 1 }, gate);
    let running = 0;
    for (const g of gates)
      void pool.start(
        true,
        () => {
          running += 1;
          return g.done;
        },
        () => undefined,
      );
    await tick();
    expect(running).toBe(LARGE_OBJECT_CONCURRENCY);
    const small = gate();
    await pool.start(
      false,
      () => small.done,
      () => undefined,
    );
    small.finish();
    gates[0]?.finish();
    await tick();
    expect(running).toBe(LARGE_OBJECT_CONCURRENCY + 1);
    for (const g of gates) g.finish();
    await pool.drain();
  });

  it('gives a large-object slot back only for a task that took one', async () => {
    // Prepare: a small task runs and ends first; then one more large task than there are large slots.
    const pool = new TaskPool(16, hooks());
    await pool.start(
      false,
      async () => 'small',
      () => undefined,
    );
    await pool.drain();
    const gates = Array.from({ length: LARGE_OBJECT_CONCURRENCY + 1 }, gate);
    let running = 0;

    // Act
    for (const g of gates)
      void pool.start(
        true,
        () => {
          running += 1;
          return g.done;
        },
        () => undefined,
      );
    await tick();

    // Assess: the small task's end freed no large slot.
    expect(running).toBe(LARGE_OBJECT_CONCURRENCY);
    for (const g of gates) g.finish();
    await pool.drain();
  });

  it('lets a task hand back its slot early, once, and tells the hooks each time', async () => {
    const poolHooks = hooks();
    const pool = new TaskPool(1, poolHooks);
    const first = gate();
    await pool.start(
      false,
      async (release) => {
        release();
        release();
        await first.done;
      },
      () => undefined,
    );
    let secondRan = false;
    await pool.start(
      false,
      async () => {
        secondRan = true;
      },
      () => undefined,
    );
    expect(secondRan).toBe(true);
    first.finish();
    await pool.drain();
    expect(poolHooks.started).toHaveBeenCalledTimes(2);
    expect(poolHooks.released).toHaveBeenCalledTimes(2);
  });

  it("hands `finish` the task's result, or undefined when it threw, and keeps the first error as fatal", async () => {
    const pool = new TaskPool(4, hooks());
    const outcomes: unknown[] = [];
    await pool.start(
      false,
      async () => 'copied',
      async (outcome) => void outcomes.push(outcome),
    );
    await pool.start(
      false,
      async () => {
        throw new Error('lease lost');
      },
      async (outcome) => void outcomes.push(outcome),
    );
    await pool.start(
      false,
      async () => {
        throw 'second';
      },
      async () => undefined,
    );
    await pool.drain();
    await tick();
    expect(outcomes).toEqual(['copied', undefined]);
    expect(pool.fatal?.message).toBe('lease lost');
    pool.fail('later');
    expect(pool.fatal?.message).toBe('lease lost');
  });

  it('keeps an error `finish` throws as fatal, and turns a thrown non-Error into an Error', async () => {
    const pool = new TaskPool(1, hooks());
    pool.fail('plain string');
    expect(pool.fatal).toEqual(new Error('plain string'));
    const other = new TaskPool(1, hooks());
    await other.start(
      false,
      async () => 'ok',
      async () => {
        throw new Error('ledger write failed');
      },
    );
    await other.drain();
    await tick();
    expect(other.fatal?.message).toBe('ledger write failed');
  });

  it('drains: waits for every task started so far', async () => {
    const pool = new TaskPool(4, hooks());
    const g = gate();
    let done = false;
    await pool.start(
      false,
      async () => {
        await g.done;
        done = true;
      },
      () => undefined,
    );
    const drained = pool.drain();
    g.finish();
    await drained;
    expect(done).toBe(true);
  });
});

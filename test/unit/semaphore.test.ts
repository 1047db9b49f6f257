import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../functions/core/run/semaphore.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('Semaphore', () => {
  it('admits at most its count at once, and the next waiter on each release', async () => {
    const slots = new Semaphore(2);
    let inside = 0;
    let most = 0;

    await Promise.all(
      Array.from({ length: 6 }, async () => {
        await slots.acquire();
        inside += 1;
        most = Math.max(most, inside);
        await tick();
        inside -= 1;
        slots.release();
      }),
    );

    expect(most).toBe(2);
  });

  it('has all its slots free again once every holder has released', async () => {
    const slots = new Semaphore(2);
    await slots.acquire();
    await slots.acquire();
    slots.release();
    slots.release();
    let admitted = 0;

    for (let i = 0; i < 3; i += 1) void slots.acquire().then(() => (admitted += 1));
    await tick();

    expect(admitted).toBe(2);
  });
});

import { getEventListeners } from 'node:events';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readWhole, untilAborted } from '../../functions/core/copy/whole-body.js';

describe('readWhole', () => {
  it('gathers every chunk of a body, in order, once it has ended', async () => {
    const body = Readable.from([Buffer.from('ab'), Buffer.from('cd'), Buffer.from('e')]);

    expect((await readWhole(body)).toString()).toBe('abcde');
  });

  it('rejects with what the body failed with, so a read that fails its check is never written', async () => {
    const body = new Readable({ read() {} });
    body.push(Buffer.from('ab'));
    setImmediate(() => body.destroy(new Error('the bytes read do not match its ETag')));

    await expect(readWhole(body)).rejects.toThrow(/do not match its ETag/);
  });
});

describe('untilAborted', () => {
  it("resolves with the work's result and leaves no listener on the signal", async () => {
    const { signal } = new AbortController();

    expect(await untilAborted(Promise.resolve(7), signal)).toBe(7);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('rejects with an AbortError as soon as the signal fires, though the work never settles', async () => {
    const deadline = new AbortController();
    const waiting = untilAborted(new Promise(() => {}), deadline.signal);
    deadline.abort();

    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    expect(getEventListeners(deadline.signal, 'abort')).toHaveLength(0);
  });

  it('rejects at once under a signal that already fired', async () => {
    const deadline = new AbortController();
    deadline.abort();

    await expect(untilAborted(Promise.resolve(1), deadline.signal)).rejects.toThrow();
  });

  it('leaves no unhandled rejection when work it refused under a fired signal fails later', async () => {
    // The clean-clone run at 4298f1c: a deadline cut before a small object's read began left that read's
    // later "Premature close" unhandled, which Vitest reports as an error of the whole run.
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      const deadline = new AbortController();
      deadline.abort();
      let fail: (error: Error) => void = () => {};
      const work = new Promise<never>((_, reject) => {
        fail = reject;
      });

      await expect(untilAborted(work, deadline.signal)).rejects.toThrow();
      fail(new Error('Premature close'));
      await new Promise((resolve) => setTimeout(resolve, 20));

      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it('passes the work through when there is no signal', async () => {
    await expect(untilAborted(Promise.reject(new Error('refused')), undefined)).rejects.toThrow('refused');
  });
});

describe('untilAborted with a thenable', () => {
  it('accepts work that is a thenable rather than a native promise (a client stub may return one)', async () => {
    const { signal } = new AbortController();
    // biome-ignore lint/suspicious/noThenProperty: a thenable that is not a native promise is what this test is about
    const thenable = { then: (resolve: (value: number) => void) => resolve(3) } as unknown as Promise<number>;

    expect(await untilAborted(thenable, signal)).toBe(3);
  });
});

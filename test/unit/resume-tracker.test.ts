import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ResumeTracker } from '../../functions/core/state/resume-tracker.js';
import type { Checkpoint, StateStore } from '../../functions/core/state/state-store.js';

/** A state table holding `checkpoint`, recording the checkpoints written. */
function table(checkpoint: Checkpoint = {}) {
  return {
    readCheckpoint: vi.fn(async () => checkpoint),
    writeCheckpoint: vi.fn(async (_jobId: string, _checkpoint: Checkpoint, _fence: number) => {}),
  };
}

const lastPass = { runId: 'earlier', finishedAt: '2026-01-01T00:00:00.000Z' };
const tracker = (state: ReturnType<typeof table>, fence = () => 4) =>
  new ResumeTracker(state as unknown as StateStore, 'job', fence);

describe('ResumeTracker', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2026-01-01T00:00:00.000Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('passes over the keys after the checkpoint, then wraps round to the start', async () => {
    const resuming = tracker(table({ resumeAfter: 'm' }));
    const fresh = tracker(table());

    await resuming.readCheckpoint();
    await fresh.readCheckpoint();

    expect(resuming.ranges()).toEqual([{ after: 'm' }, { through: 'm' }]);
    expect(resuming.resumeAfter).toBe('m');
    expect(fresh.ranges()).toEqual([{}]);
  });

  it('moves the resume position only over the settled prefix of the dispatched keys', async () => {
    const resume = tracker(table({ resumeAfter: 'a' }));
    await resume.readCheckpoint();
    const b = resume.track('b');
    const c = resume.track('c');
    const d = resume.track('d');

    resume.settle(c);
    expect(resume.resumeAfter).toBe('a');
    resume.settle(b);
    expect(resume.resumeAfter).toBe('c');
    resume.settle(d);
    expect(resume.resumeAfter).toBe('d');
  });

  it('saves the settled position with the current fence once 10 s have passed, and not before', async () => {
    const state = table({ lastCompletePass: lastPass });
    let fence = 4;
    const resume = tracker(state, () => fence);
    await resume.readCheckpoint();
    resume.settle(resume.track('k'));

    vi.setSystemTime(Date.now() + 10_000);
    await resume.saveIfDue();
    expect(state.writeCheckpoint).not.toHaveBeenCalled();

    fence = 5;
    vi.setSystemTime(Date.now() + 1);
    await resume.saveIfDue();
    await resume.saveIfDue();
    expect(state.writeCheckpoint).toHaveBeenCalledExactlyOnceWith(
      'job',
      { resumeAfter: 'k', lastCompletePass: lastPass },
      5,
    );

    vi.setSystemTime(Date.now() + 10_001);
    await resume.saveIfDue();
    expect(state.writeCheckpoint).toHaveBeenCalledTimes(2);
  });

  it('saves nothing periodically before any key has settled', async () => {
    const state = table();
    const resume = tracker(state);
    await resume.readCheckpoint();
    resume.track('k');

    vi.setSystemTime(Date.now() + 60_000);
    await resume.saveIfDue();

    expect(state.writeCheckpoint).not.toHaveBeenCalled();
  });

  it('starts the next run from the beginning after a complete pass, and after the settled prefix otherwise', async () => {
    const state = table({ resumeAfter: 'a', lastCompletePass: lastPass });
    const resume = tracker(state);
    await resume.readCheckpoint();
    resume.settle(resume.track('b'));

    const partial = await resume.saveFinal(false, 'run', '2026-01-02T00:00:00.000Z');
    const complete = await resume.saveFinal(true, 'run', '2026-01-02T00:00:00.000Z');

    expect(partial).toEqual({ resumeAfter: 'b', lastCompletePass: lastPass });
    expect(complete).toStrictEqual({
      lastCompletePass: { runId: 'run', finishedAt: '2026-01-02T00:00:00.000Z' },
    });
    expect(state.writeCheckpoint).toHaveBeenNthCalledWith(1, 'job', partial, 4);
    expect(state.writeCheckpoint).toHaveBeenNthCalledWith(2, 'job', complete, 4);
  });
});

import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { delimiter } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/exit-codes.js';
import { stopOnCtrlC } from '../../cli/stop-on-ctrl-c.js';

/** A stand-in for `process`: SIGINT is emitted by the test, writes and exits are recorded. */
function fakeProcess() {
  const signals = new EventEmitter();
  const written: string[] = [];
  const exits: number[] = [];
  return {
    signals,
    written,
    exits,
    host: {
      once: (name: 'SIGINT', listener: () => void) => signals.once(name, listener),
      write: (text: string) => written.push(text),
      exit: (code: number) => exits.push(code),
    },
  };
}

describe('stopOnCtrlC', () => {
  it('on the first Ctrl-C says what happens to copies in flight and aborts; on the second exits 130', () => {
    const { signals, written, exits, host } = fakeProcess();
    const signal = stopOnCtrlC(host);

    signals.emit('SIGINT');

    expect(signal.aborted).toBe(true);
    expect(written.join('')).toMatch(
      /copies in flight are cut and counted as deferred \(a large one keeps its stored parts\); the checkpoint is saved, and the next run resumes/,
    );
    expect(exits).toEqual([]);
    signals.emit('SIGINT');
    expect(exits).toEqual([EXIT.interrupted]);
  });

  it('lets every copy in flight listen for it without a MaxListenersExceededWarning', async () => {
    // In a plain Node process, as the CLI runs (the test runner lifts Node's limit of 10 in its own), and
    // on the machine's own Node rather than npm's Node 22 from node_modules/.bin: Node 20 warns at 11
    // listeners on one AbortSignal, and package.json allows Node 20 (`node bin/cross-account-sync.mjs`).
    const script = `
      import { stopOnCtrlC } from './cli/stop-on-ctrl-c.ts';
      const signal = stopOnCtrlC({ once: () => {}, write: () => {}, exit: () => {} });
      // A job may run 64 copies at once; the SDK adds a listener per request and per retry wait.
      for (let i = 0; i < 200; i += 1) signal.addEventListener('abort', () => {});
    `;

    const PATH = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((dir) => !dir.includes('node_modules'))
      .join(delimiter);

    const { stderr } = await promisify(execFile)(
      'node',
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { env: { ...process.env, PATH } },
    );

    expect(stderr).not.toContain('MaxListenersExceededWarning');
  });
});

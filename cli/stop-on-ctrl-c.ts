import { setMaxListeners } from 'node:events';
import { EXIT } from './exit-codes.js';

/** The parts of `process` that Ctrl-C handling uses, so a test can stand in for them. */
export interface SignalHost {
  once: (name: 'SIGINT', listener: () => void) => void;
  write: (text: string) => void;
  exit: (code: number) => void;
}

/**
 * An AbortSignal aborted by the first Ctrl-C, which also says what a run does then (what sync-job does
 * when its signal aborts). A second Ctrl-C exits at once with 130.
 */
export function stopOnCtrlC(host: SignalHost): AbortSignal {
  const controller = new AbortController();
  // Every copy in flight listens for the abort (a job runs up to 64), and the SDK adds one per request
  // and per retry wait, removing each as it settles: a count past Node's default 10 is not a leak, and
  // its MaxListenersExceededWarning would only land in the middle of the progress output.
  setMaxListeners(0, controller.signal);
  host.once('SIGINT', () => {
    host.write(
      '\nstopping (Ctrl-C): no new copy starts; copies in flight are cut and counted as deferred (a large ' +
        'one keeps its stored parts); the checkpoint is saved, and the next run resumes from it and copies them.\n' +
        'Ctrl-C again quits at once: the lease then stays held for up to 2 minutes.\n',
    );
    controller.abort();
    host.once('SIGINT', () => host.exit(EXIT.interrupted));
  });
  return controller.signal;
}

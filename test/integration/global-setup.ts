import type { TestProject } from 'vitest/node';
import { type SandboxInfo, startSandbox } from '../../sandbox/sandbox.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared local two-account sandbox; read it in a test with `inject('sandbox')`. */
    sandbox: SandboxInfo;
  }
}

/** One sandbox for the whole integration run: started before the first file, stopped after the last. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const {
    env: _env,
    stop,
    ...info
  } = await startSandbox({ log: (message) => console.log(`[sandbox] ${message}`) });
  project.provide('sandbox', info);
  return stop;
}

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from './errors.js';

const READY_TIMEOUT_MS = 20_000; // DynamoDB Local is ready in ~2 s and moto in ~1 s; 10× covers a busy CI box
const READY_POLL_MS = 100;
const STOP_GRACE_MS = 3_000; // both shut down in well under a second on SIGTERM; after this, SIGKILL
const OUTPUT_TAIL_CHARS = 4_000; // enough for a Java or Python stack trace in an error message

/** A child process group (a Python wrapper and, for DynamoDB Local, its JVM) serving one endpoint. */
export interface Service {
  readonly name: string;
  readonly endpoint: string;
  readonly process: ChildProcess;
  /** The last lines the service wrote to stdout and stderr, for error messages. */
  outputTail(): string;
}

/** A TCP port that was free a moment ago: the OS picks it, we close it and hand the number on. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new SandboxError('could not pick a free port');
  return address.port;
}

/**
 * Spawn a service in its own process group, with a stdin pipe the service watches: when this Node process
 * dies, even by SIGKILL, the pipe closes and the service exits. Stop it with {@link stopService}.
 */
export function startService(name: string, endpoint: string, command: string, args: string[]): Service {
  const child = spawn(command, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer) => {
    // SANDBOX_SERVICE_OUTPUT=1 shows the services' own output (moto's tracebacks) as it comes.
    if (process.env.SANDBOX_SERVICE_OUTPUT === '1') process.stderr.write(`[${name}] ${chunk}`);
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  // Always drain: a full pipe would block the service mid-request.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (error) => keep(Buffer.from(`\n${error.message}\n`)));
  // The parent's event loop must not wait on these pipes; they only matter while the service runs.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
  return { name, endpoint, process: child, outputTail: () => tail.trim() };
}

/** Resolve once the service answers HTTP at all (any status); fail with its output if it exits or stalls. */
export async function waitUntilServing(service: Service): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (service.process.exitCode !== null || service.process.signalCode !== null) {
      throw new SandboxError(
        `${service.name} exited (${service.process.exitCode ?? service.process.signalCode}) before serving ${service.endpoint}:\n${service.outputTail()}`,
      );
    }
    try {
      const response = await fetch(service.endpoint, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      return;
    } catch {
      await sleep(READY_POLL_MS);
    }
  }
  throw new SandboxError(
    `${service.name} did not answer at ${service.endpoint} within ${READY_TIMEOUT_MS / 1000} s:\n${service.outputTail()}`,
  );
}

function signalGroup(service: Service, signal: NodeJS.Signals): void {
  const { pid } = service.process;
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal); // the whole group: the wrapper and any JVM it started
  } catch {
    // ESRCH: the group is already gone
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM the service's process group, SIGKILL what is left after a grace period. */
export async function stopService(service: Service): Promise<void> {
  const child = service.process;
  if (!hasExited(child)) {
    child.ref(); // keep the event loop alive until the exit is seen
    const graceOver = new AbortController();
    const exited = once(child, 'exit');
    signalGroup(service, 'SIGTERM');
    await Promise.race([
      exited,
      sleep(STOP_GRACE_MS, undefined, { signal: graceOver.signal }).catch(() => {}),
    ]);
    graceOver.abort();
    child.unref();
  }
  // Also after a clean exit of the wrapper: nothing of the group may outlive it.
  signalGroup(service, 'SIGKILL');
  child.stdin?.destroy();
  child.stdout?.destroy();
  child.stderr?.destroy();
}

/** Synchronous last resort for process 'exit' handlers, where nothing asynchronous runs any more. */
export function killService(service: Service): void {
  signalGroup(service, 'SIGKILL');
}

/**
 * The fan-out worker functions in warm child processes, as Lambda runs them: each child is an execution
 * environment (scripts/lib/lambda-runtime.mjs `--warm`) that loads the bundle `sam build` would make once
 * and then handles one invocation after another. A test can SIGKILL one mid-task: its invocation fails as
 * a crashed Lambda's does (the mapping leaves the batch's messages for their visibility timeout), and the
 * next invocation starts in a fresh child. An invocation that outlives its deadline is killed, as Lambda's
 * timeout kills it.
 *
 * WORKER_FUNCTIONS maps each task kind to its function in template.yaml: one line per worker function.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Context, SQSEvent } from 'aws-lambda';
import { buildFunction, handlerEntry } from '../scripts/lib/build-function.js';
import { functionConfig, loadTemplate } from '../scripts/lib/sam-template.js';
import type { WorkerHandler } from './fan-out.js';

/** The worker function of each task kind, by its logical id in template.yaml. */
export const WORKER_FUNCTIONS: Record<string, { logicalId: string }> = {
  'plan-shard': { logicalId: 'PlanShardFunction' },
  copy: { logicalId: 'CopyWorkerFunction' },
  part: { logicalId: 'PartWorkerFunction' },
};

const RUNTIME = new URL('../scripts/lib/lambda-runtime.mjs', import.meta.url).pathname;
const TEMPLATE = resolve(new URL('..', import.meta.url).pathname, 'template.yaml');
/** Lines of a child's output kept for the error of an invocation it did not answer. */
const OUTPUT_LINES = 20;

/** A function ready to run: the file and export its runtime loads, and the environment it starts with. */
export interface WorkerFunction {
  modulePath: string;
  exportName: string;
  env: Record<string, string>;
}

/** An invocation a child is handling now. */
export interface Invocation {
  kind: string;
  pid: number;
  event: SQSEvent;
  startedAt: number;
  /** SIGKILLs its child (true if it was still at work): a crashed execution environment. */
  kill(): boolean;
}

interface Child {
  process: ChildProcess;
  kind: string;
  output: string[];
  current?: { id: string; settle: (reply: Reply | Error) => void };
}

type Reply =
  | { ok: true; result: unknown }
  | { ok: false; error: { errorType: string; errorMessage: string; stack?: string } };

/** A function error as the runtime reported it (Lambda: the invocation failed, the batch comes back). */
export class WorkerFunctionError extends Error {
  override readonly name = 'WorkerFunctionError';
}

/**
 * Bundles the worker functions of `kinds` as `sam build` does (scripts/lib/build-function.ts) into a temp
 * folder; `remove` deletes it.
 */
export async function buildWorkerFunctions(
  kinds: string[],
): Promise<{ functions: Record<string, WorkerFunction>; remove(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'sync-workers-'));
  const template = loadTemplate(TEMPLATE);
  const functions: Record<string, WorkerFunction> = {};
  await Promise.all(
    kinds.map(async (kind) => {
      const known = WORKER_FUNCTIONS[kind];
      if (!known) throw new Error(`no worker function for task kind "${kind}"`);
      const fn = functionConfig(template, TEMPLATE, known.logicalId);
      const codeDir = join(root, fn.logicalId);
      await buildFunction(fn, codeDir);
      functions[kind] = {
        ...handlerEntry(fn, codeDir),
        env: {
          AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_SERVICE_NAME: 'cross-account-sync',
          POWERTOOLS_METRICS_NAMESPACE: 'CrossAccountSync',
          // Powertools' metrics would print EMF lines without a namespace otherwise; X-Ray is not here.
          POWERTOOLS_TRACE_ENABLED: 'false',
          TZ: 'UTC',
        },
      };
    }),
  );
  return { functions, remove: () => rm(root, { recursive: true, force: true }) };
}

/** Warm execution environments for the worker functions; one child per concurrent invocation. */
export class WorkerProcesses {
  /** Invocations killed while at work, by kind. */
  readonly kills: Record<string, number> = {};
  /** Children started, by kind: one per cold start. */
  readonly starts: Record<string, number> = {};
  /** Called as each invocation starts, so a test can decide to kill it. */
  onInvoke?: (invocation: Invocation) => void;
  readonly #functions: Record<string, WorkerFunction>;
  readonly #idle = new Map<string, Child[]>();
  readonly #busy = new Map<Child, Invocation>();
  readonly #all = new Set<Child>();

  constructor(functions: Record<string, WorkerFunction>) {
    this.#functions = functions;
  }

  /**
   * The handler the local event source mapping of `kind` calls: each call runs in an idle child of this
   * kind or a new one started with the function's environment and `env` (the queues' URLs, the
   * sandbox's endpoints). `signal` cuts it as Lambda's timeout does: the child is killed.
   */
  handler(kind: string, env: Record<string, string>): WorkerHandler {
    const fn = this.#functions[kind];
    if (!fn) throw new Error(`no worker function built for task kind "${kind}"`);
    return (event, context, signal) => this.#invoke(kind, fn, env, event, context, signal);
  }

  /** The invocations at work now. */
  busy(kind?: string): Invocation[] {
    return [...this.#busy.values()].filter((invocation) => kind === undefined || invocation.kind === kind);
  }

  /** Children alive, by kind (busy or idle). */
  alive(kind: string): number {
    return [...this.#all].filter((child) => child.kind === kind).length;
  }

  /** Kills every child. */
  stop(): void {
    for (const child of this.#all) child.process.kill('SIGKILL');
  }

  async #invoke(
    kind: string,
    fn: WorkerFunction,
    env: Record<string, string>,
    event: SQSEvent,
    context: Context,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const child = this.#idle.get(kind)?.pop() ?? this.#spawn(kind, fn, env);
    const id = randomUUID();
    const deadlineMs = Date.now() + context.getRemainingTimeInMillis();
    const invocation: Invocation = {
      kind,
      pid: child.process.pid ?? 0,
      event,
      startedAt: Date.now(),
      kill: () => this.#kill(child),
    };
    const reply = new Promise<Reply | Error>((settle) => {
      child.current = { id, settle };
    });
    this.#busy.set(child, invocation);
    // Lambda kills an invocation at its timeout; a signal stands for that timeout coming early.
    const timer = setTimeout(() => this.#kill(child), deadlineMs - Date.now());
    const cut = () => this.#kill(child);
    signal?.addEventListener('abort', cut, { once: true });
    try {
      child.process.send({
        id,
        modulePath: fn.modulePath,
        exportName: fn.exportName,
        event,
        context: {
          functionName: context.functionName,
          functionVersion: context.functionVersion,
          invokedFunctionArn: context.invokedFunctionArn,
          memoryLimitInMB: context.memoryLimitInMB,
          awsRequestId: context.awsRequestId,
          logGroupName: context.logGroupName,
          logStreamName: context.logStreamName,
          deadlineMs,
        },
      });
      this.onInvoke?.(invocation);
      const settled = await reply;
      if (settled instanceof Error) throw settled;
      if (!settled.ok) {
        throw new WorkerFunctionError(`${settled.error.errorType}: ${settled.error.errorMessage}`);
      }
      return settled.result;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', cut);
      this.#busy.delete(child);
      child.current = undefined;
      if (this.#all.has(child)) this.#idle.get(kind)?.push(child);
    }
  }

  #spawn(kind: string, fn: WorkerFunction, env: Record<string, string>): Child {
    const process_ = fork(RUNTIME, ['--warm'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...fn.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const child: Child = { process: process_, kind, output: [] };
    this.#all.add(child);
    if (!this.#idle.has(kind)) this.#idle.set(kind, []);
    this.starts[kind] = (this.starts[kind] ?? 0) + 1;
    const keep = (chunk: Buffer) => {
      // SANDBOX_WORKER_OUTPUT=1 shows every child's output as it comes (kept otherwise for the error of an
      // invocation the child did not answer).
      if (process.env.SANDBOX_WORKER_OUTPUT === '1')
        process.stderr.write(`[${kind} ${process_.pid}] ${chunk}`);
      child.output.push(...chunk.toString().split('\n').filter(Boolean));
      child.output.splice(0, Math.max(0, child.output.length - OUTPUT_LINES));
    };
    process_.stdout?.on('data', keep);
    process_.stderr?.on('data', keep);
    process_.on('message', (message: Reply & { id?: string }) => {
      if (child.current && message.id === child.current.id) child.current.settle(message);
    });
    process_.on('exit', (code, signal) => {
      this.#all.delete(child);
      const idle = this.#idle.get(kind) ?? [];
      if (idle.includes(child)) idle.splice(idle.indexOf(child), 1);
      child.current?.settle(
        new WorkerFunctionError(
          `the ${kind} worker process ${process_.pid} exited (${signal ?? `code ${code}`}) mid-invocation; ` +
            `its last output:\n${child.output.join('\n')}`,
        ),
      );
    });
    return child;
  }

  #kill(child: Child): boolean {
    const atWork = child.current !== undefined && child.process.exitCode === null;
    if (atWork) this.kills[child.kind] = (this.kills[child.kind] ?? 0) + 1;
    child.process.kill('SIGKILL');
    return atWork;
  }
}

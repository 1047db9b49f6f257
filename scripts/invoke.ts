/**
 * Local stand-in for `sam local invoke` (no Docker and no `sam` here): reads template.yaml, bundles the function
 * with the template's esbuild BuildProperties into .aws-sam/build/<LogicalId>/ exactly as `sam build` does, and
 * runs its handler in a child Node process with the event file, a Lambda-like context and the function's
 * environment.
 *
 *   npm run invoke -- SyncFunction -e events/scheduled-sync.json [--env-vars events/env.json] [--no-sandbox]
 *
 * By default the function talks to the embedded two-account sandbox (moto + DynamoDB Local); `--no-sandbox`
 * keeps the current environment, i.e. real AWS with your credentials.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildFunction, handlerEntry } from './lib/build-function.js';
import {
  type FunctionConfig,
  functionConfig,
  functionIds,
  loadTemplate,
  resolveValue,
  type Template,
} from './lib/sam-template.js';

const RUNTIME_PATH = new URL('./lib/lambda-runtime.mjs', import.meta.url).pathname;
/** Where `sam build` puts artifacts; gitignored. */
const BUILD_ROOT = '.aws-sam/build';
/** The account moto and the context ARN use when nothing says otherwise. */
const LOCAL_ACCOUNT_ID = '123456789012';
/** After the handler settles, the child gets this long to exit before it is killed (Lambda freezes it). */
const CHILD_EXIT_GRACE_MS = 1_000;

interface Sandbox {
  env: Record<string, string>;
  stop(): Promise<void>;
}

type RuntimeReply =
  | { ok: true; result: unknown; maxRssKb: number }
  | { ok: false; error: { errorType: string; errorMessage: string; stack?: string }; maxRssKb: number };

class UsageError extends Error {
  override name = 'UsageError';
}

const USAGE =
  'usage: npm run invoke -- <FunctionLogicalId> -e events/<file>.json [--env-vars events/env.json] ' +
  '[--no-sandbox] [-t template.yaml]';

let sandbox: Sandbox | undefined;
let child: ChildProcess | undefined;

async function main(): Promise<number> {
  const args = parseCommandLine();
  const templatePath = resolve(args.template);
  if (!existsSync(templatePath)) throw new UsageError(`template not found: ${args.template}`);
  const template = loadTemplate(templatePath);
  if (args.logicalId === undefined) {
    throw new UsageError(`missing the function's logical id; valid ids: ${functionIds(template).join(', ')}`);
  }
  const logicalId = args.logicalId;
  const fn = asUsageError(() => functionConfig(template, args.template, logicalId));
  if (!existsSync(args.event)) {
    throw new UsageError(
      `event file not found: ${args.event} (for ${fn.logicalId}; functions in ${args.template}: ` +
        `${functionIds(template).join(', ')}; events: ${eventFiles().join(', ') || '(none)'})`,
    );
  }
  const event = readJson(args.event, 'event file');
  const envFile = args.envVars === undefined ? {} : readEnvVars(args.envVars, fn.logicalId);

  const started = performance.now();
  const codeDir = await bundle(fn);
  const built = performance.now();
  log(`built ${fn.logicalId} into ${codeDir} in ${ms(built - started)}`);

  if (args.sandbox) {
    log('starting the local sandbox (moto + DynamoDB Local); --no-sandbox uses real AWS instead');
    const { startSandbox } = await import('../sandbox/sandbox.js');
    sandbox = await startSandbox({ log: (message) => log(`sandbox: ${message}`) });
  }
  const env = functionEnvironment(fn, template, envFile, sandbox?.env);
  const invokeStarted = performance.now();
  const reply = await runHandler(fn, codeDir, env, event);
  const duration = performance.now() - invokeStarted;
  log(
    `REPORT Duration: ${ms(duration)} Memory Size: ${fn.memoryMb} MB ` +
      `Max Memory Used: ${Number.isFinite(reply?.maxRssKb) ? Math.ceil((reply?.maxRssKb ?? 0) / 1024) : '?'} MB ` +
      `(total with build${sandbox ? ' and sandbox start' : ''}: ${ms(performance.now() - started)})`,
  );
  if (reply === undefined) return 1;
  if (!reply.ok) {
    process.stdout.write(
      `${JSON.stringify({ errorType: reply.error.errorType, errorMessage: reply.error.errorMessage })}\n`,
    );
    log(`${fn.logicalId} failed: ${reply.error.errorMessage}`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify(reply.result)}\n`);
  return 0;
}

function asUsageError<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function parseCommandLine() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      event: { type: 'string', short: 'e' },
      'env-vars': { type: 'string', short: 'n' },
      template: { type: 'string', short: 't', default: 'template.yaml' },
      'no-sandbox': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (positionals.length > 1) throw new UsageError(`expected one function id, got ${positionals.join(' ')}`);
  if (values.event === undefined) throw new UsageError('missing -e <event file>');
  return {
    logicalId: positionals[0],
    event: values.event,
    envVars: values['env-vars'],
    template: values.template,
    sandbox: !values['no-sandbox'],
  };
}

function eventFiles(): string[] {
  return existsSync('events')
    ? readdirSync('events')
        .filter((name) => name.endsWith('.json') && name !== 'env.json')
        .map((name) => `events/${name}`)
    : [];
}

function readJson(path: string, what: string): unknown {
  if (!existsSync(path)) throw new UsageError(`${what} not found: ${path}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new UsageError(`${what} ${path} is not valid JSON: ${(cause as Error).message}`);
  }
}

/** `sam local invoke --env-vars` format: `{ "<LogicalId>": { NAME: value } }` (plus optional "Parameters" for all). */
function readEnvVars(path: string, logicalId: string): Record<string, string> {
  const file = readJson(path, 'env-vars file') as Record<string, Record<string, unknown> | undefined>;
  const entries = { ...file.Parameters, ...file[logicalId] };
  return Object.fromEntries(Object.entries(entries).map(([name, value]) => [name, String(value)]));
}

/** Bundles like `sam build` into where `sam build` puts it (see lib/build-function.ts). */
async function bundle(fn: FunctionConfig): Promise<string> {
  if (fn.buildMethod !== 'esbuild') {
    throw new UsageError(
      `${fn.logicalId} has BuildMethod ${fn.buildMethod ?? '(none)'}; only esbuild is supported`,
    );
  }
  const outdir = resolve(BUILD_ROOT, fn.logicalId);
  await buildFunction(fn, outdir);
  return outdir;
}

/** Environment of the child: Lambda's reserved variables < template < env.json < sandbox. */
function functionEnvironment(
  fn: FunctionConfig,
  template: Template,
  envFile: Record<string, string>,
  sandboxEnv: Record<string, string> | undefined,
): Record<string, string> {
  const inherited = { ...process.env } as Record<string, string>;
  if (sandboxEnv) {
    // Nothing from the caller's AWS configuration may steer a sandbox run towards a real account.
    for (const name of Object.keys(inherited)) if (name.startsWith('AWS_')) delete inherited[name];
  }
  const region =
    sandboxEnv?.AWS_REGION ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const pseudo = {
    'AWS::Region': region,
    'AWS::AccountId': LOCAL_ACCOUNT_ID,
    'AWS::Partition': 'aws',
    'AWS::StackName': 'local',
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const fromTemplate: Record<string, string> = {};
  const unresolved: string[] = [];
  for (const [name, value] of Object.entries(fn.environment)) {
    const resolved = resolveValue(value, template, pseudo);
    if (resolved === undefined) unresolved.push(name);
    else fromTemplate[name] = resolved;
  }
  const env: Record<string, string> = {
    ...inherited,
    AWS_REGION: region,
    AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.logicalId}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `local/${randomUUID()}`,
    LAMBDA_TASK_ROOT: resolve(BUILD_ROOT, fn.logicalId),
    _HANDLER: fn.handler,
    TZ: 'UTC',
    ...fromTemplate,
    ...envFile,
    ...sandboxEnv,
  };
  const missing = unresolved.filter((name) => env[name] === undefined);
  if (missing.length > 0) {
    log(
      `warning: ${missing.join(', ')} not set (the template value needs a deployment; add it to --env-vars)`,
    );
  }
  return env;
}

async function runHandler(
  fn: FunctionConfig,
  codeDir: string,
  env: Record<string, string>,
  event: unknown,
): Promise<RuntimeReply | undefined> {
  const { modulePath, exportName } = asUsageError(() => handlerEntry(fn, codeDir));
  const localMajor = Number(process.versions.node.split('.')[0]);
  const runtimeMajor = Number(/nodejs(\d+)/.exec(fn.runtime)?.[1]);
  if (runtimeMajor && runtimeMajor !== localMajor) {
    log(`note: the function targets ${fn.runtime}; running on local Node ${process.versions.node}`);
  }
  const requestId = randomUUID();
  const deadlineMs = Date.now() + fn.timeoutSeconds * 1000;
  log(`START RequestId: ${requestId} Version: $LATEST`);
  const process_ = fork(RUNTIME_PATH, [], {
    cwd: codeDir,
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child = process_;
  return new Promise((settle) => {
    let reply: RuntimeReply | undefined;
    const timer = setTimeout(() => {
      // What Lambda reports for a function that outlives its Timeout.
      const errorMessage = `Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`;
      reply = { ok: false, error: { errorType: 'Sandbox.Timedout', errorMessage }, maxRssKb: Number.NaN };
      process_.kill('SIGKILL');
    }, deadlineMs - Date.now());
    process_.on('message', (message) => {
      reply = message as RuntimeReply;
      clearTimeout(timer);
      // Lambda freezes the sandbox once the handler settles; open sockets must not keep the run alive.
      setTimeout(() => process_.kill('SIGKILL'), CHILD_EXIT_GRACE_MS).unref();
    });
    process_.on('exit', (code, signal) => {
      clearTimeout(timer);
      child = undefined;
      if (reply === undefined)
        log(`the function process exited (${signal ?? `code ${code}`}) without a result`);
      settle(reply);
    });
    process_.send({
      modulePath,
      exportName,
      event,
      context: {
        functionName: fn.logicalId,
        functionVersion: '$LATEST',
        invokedFunctionArn: `arn:aws:lambda:${env.AWS_REGION}:${LOCAL_ACCOUNT_ID}:function:${fn.logicalId}`,
        memoryLimitInMB: String(fn.memoryMb),
        awsRequestId: requestId,
        logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
        logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
        deadlineMs,
      },
    });
  });
}

function log(message: string): void {
  process.stderr.write(`[invoke] ${message}\n`);
}

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

async function cleanUp(): Promise<void> {
  child?.kill('SIGKILL');
  const running = sandbox;
  sandbox = undefined;
  await running?.stop();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanUp().finally(() => process.exit(130));
  });
}

main()
  .then(
    (code) => code,
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      log(error instanceof UsageError ? `${message}\n${USAGE}` : `error: ${message}`);
      return error instanceof UsageError ? 2 : 1;
    },
  )
  .then(async (code) => {
    await cleanUp();
    process.exit(code);
  });

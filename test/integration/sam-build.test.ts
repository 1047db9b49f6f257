import { execFile, fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFunction } from '../../scripts/lib/build-function.js';
import {
  type FunctionConfig,
  functionConfig,
  functionIds,
  loadTemplate,
  resolveValue,
} from '../../scripts/lib/sam-template.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The builder `sam build` runs, driven as `sam build` drives it; CI puts shared/ beside the clone. */
const SAM_BUILD = resolve(ROOT, '..', 'shared', 'tools', 'sam-build');
const RUNTIME = join(ROOT, 'scripts', 'lib', 'lambda-runtime.mjs');
const TEMPLATE = join(ROOT, 'template.yaml');

const template = loadTemplate(TEMPLATE);
const functions: FunctionConfig[] = functionIds(template)
  .map((id) => functionConfig(template, TEMPLATE, id))
  .filter((fn) => fn.buildMethod === 'esbuild');

let workDir = '';
let samBuild: { code: number; output: string; seconds: number };

/** Where the builder put `fn`'s handler file, looked up in the Lambda Node.js runtime's order. */
function builtHandler(fn: FunctionConfig, root = join(workDir, 'out')): string {
  const file = fn.handler.slice(0, fn.handler.lastIndexOf('.'));
  const found = ['.js', '.mjs', '.cjs']
    .map((ext) => join(root, fn.logicalId, file + ext))
    .find((path) => existsSync(path));
  if (found === undefined) throw new Error(`no ${file}.js/.mjs/.cjs for ${fn.logicalId} in ${root}`);
  return found;
}

/** The function's environment as Lambda would set it, with a placeholder where a deployment would resolve. */
function functionEnv(fn: FunctionConfig): Record<string, string> {
  const pseudo = { 'AWS::Region': 'us-east-1', 'AWS::AccountId': '123456789012', 'AWS::Partition': 'aws' };
  const variables = Object.fromEntries(
    Object.entries(fn.environment).map(([name, value]) => [
      name,
      resolveValue(value, template, pseudo) ?? `${name.toLowerCase()}-placeholder`,
    ]),
  );
  return {
    PATH: process.env.PATH ?? '',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'placeholder',
    AWS_SECRET_ACCESS_KEY: 'placeholder',
    AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
    ...variables,
  };
}

beforeAll(async () => {
  if (!existsSync(SAM_BUILD)) {
    throw new Error(
      `the shared builder is missing: expected ${SAM_BUILD} (a copy of shared/ beside the repository clone)`,
    );
  }
  workDir = await mkdtemp(join(tmpdir(), 'sam-build-test-'));
  const started = performance.now();
  // A person's shell, not npm's: npm and npx put node_modules/.bin (and its esbuild) on PATH, `sam build` has
  // only what the builder installs itself. TMPDIR: the builder's scratch folders (a copy of CodeUri and its
  // npm install) land in ours, deleted after.
  const PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.split(sep).includes('node_modules'))
    .join(delimiter);
  const run = await promisify(execFile)(
    'python3',
    [SAM_BUILD, '--template', TEMPLATE, '--out', join(workDir, 'out')],
    { cwd: ROOT, env: { ...process.env, PATH, TMPDIR: workDir }, maxBuffer: 16 * 1024 * 1024 },
  ).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof error.code === 'number' ? error.code : 1,
      output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
    }),
  );
  samBuild = { ...run, seconds: (performance.now() - started) / 1000 };
  console.log(`[sam-build] ${samBuild.seconds.toFixed(1)} s\n${samBuild.output}`);
}, 300_000);

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('sam build (aws-lambda-builders, as ../shared/tools/sam-build runs it)', () => {
  it('builds every esbuild function of template.yaml with nothing but what npm ci installed', () => {
    expect(functions.length).toBeGreaterThan(0);
    expect(samBuild.code, samBuild.output).toBe(0);
    for (const fn of functions) expect(samBuild.output).toMatch(new RegExp(`^${fn.logicalId}: built`, 'm'));
  });

  it.each(functions.map((fn) => [fn.logicalId, fn] as const))(
    'builds a %s handler that plain node imports and that exports the handler function',
    async (_, fn) => {
      const exportName = fn.handler.slice(fn.handler.lastIndexOf('.') + 1);
      const url = pathToFileURL(builtHandler(fn)).href;
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(url)}); console.log(typeof m.${exportName});`,
        ],
        { cwd: join(workDir, 'out', fn.logicalId), env: functionEnv(fn) },
      );

      expect(stdout.trim()).toBe('function');
    },
  );

  it('keeps error names: the built handler reports JobValidationError for events/invalid-job.json', async () => {
    const fn = functions.find((f) => f.logicalId === 'SyncFunction');
    if (fn === undefined) throw new Error('template.yaml has no SyncFunction built with esbuild');
    const event = JSON.parse(readFileSync(join(ROOT, 'events', 'invalid-job.json'), 'utf8'));

    const child = fork(RUNTIME, [], { env: functionEnv(fn), stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const reply = await new Promise<{ ok: boolean; error?: { errorType: string; errorMessage: string } }>(
      (settle, fail) => {
        child.once('message', (message) => settle(message as never));
        child.once('error', fail);
        child.once('exit', (code) => fail(new Error(`the runtime exited (${code}) without a reply`)));
        child.send({
          modulePath: builtHandler(fn),
          exportName: 'handler',
          event,
          context: {
            functionName: fn.logicalId,
            awsRequestId: 'sam-build-test',
            deadlineMs: Date.now() + 60_000,
          },
        });
      },
    ).finally(() => child.kill('SIGKILL'));

    expect(reply.ok).toBe(false);
    expect(reply.error?.errorType).toBe('JobValidationError');
    expect(reply.error?.errorMessage).toMatch(/job\.source\.roleArn/);
  });

  it.each(functions.map((fn) => [fn.logicalId, fn] as const))(
    'npm run invoke runs the same %s bundle, byte for byte',
    async (_, fn) => {
      const invokeRoot = join(workDir, 'invoke');

      await buildFunction(fn, join(invokeRoot, fn.logicalId));

      const ours = readFileSync(builtHandler(fn, invokeRoot));
      expect(ours.equals(readFileSync(builtHandler(fn))), 'the bundles differ').toBe(true);
    },
  );
});

describe("the template's esbuild flags", () => {
  it('keep the name of every error class the functions export, whatever errors.ts does', async () => {
    const fn = functions.find((f) => f.logicalId === 'SyncFunction');
    if (fn === undefined) throw new Error('template.yaml has no SyncFunction built with esbuild');
    const outdir = join(workDir, 'errors');
    const entry = relative(fn.codeUri, join(ROOT, 'functions', 'core', 'errors.ts'));

    await buildFunction({ ...fn, buildProperties: { ...fn.buildProperties, EntryPoints: [entry] } }, outdir);
    const bundled = join(outdir, existsSync(join(outdir, 'errors.mjs')) ? 'errors.mjs' : 'errors.js');
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(pathToFileURL(bundled).href)});
       const names = Object.entries(m)
         .filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error)
         .map(([exported, ErrorClass]) => [exported, new ErrorClass('probe', {}).name]);
       console.log(JSON.stringify(names));`,
    ]);

    const names = JSON.parse(stdout) as Array<[string, string]>;
    expect(names.length).toBeGreaterThan(3);
    for (const [exported, name] of names) expect(name, exported).toBe(exported);
  });
});

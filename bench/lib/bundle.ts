import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Git-ignored scratch space inside the repository. */
export const SCRATCH_DIR = join(BENCH_DIR, 'results', 'tmp');
export const RESULTS_DIR = join(BENCH_DIR, 'results');

/** The processes the benchmark times, besides rclone and the AWS CLI. */
export const CHILDREN = ['run-sync', 'run-ceiling', 'list-objects', 'run-fan-out'] as const;
export type Child = (typeof CHILDREN)[number];

/**
 * Bundles the child scripts as `sam build` bundles the function (esbuild, everything inlined), so each
 * runs as plain `node` and pays what Lambda pays at start-up, not tsx's on-the-fly compile.
 * Returns the path of each bundle.
 */
export async function bundleChildren(): Promise<Record<Child, string>> {
  const outdir = join(SCRATCH_DIR, 'children');
  await build({
    entryPoints: CHILDREN.map((name) => join(BENCH_DIR, 'children', `${name}.ts`)),
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Failure reasons and error types carry class names (JobValidationError), as in the Lambda bundle.
    keepNames: true,
    // Some of the SDK's CommonJS dependencies call require(); ESM bundles have none of their own.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  return Object.fromEntries(CHILDREN.map((name) => [name, join(outdir, `${name}.mjs`)])) as Record<
    Child,
    string
  >;
}

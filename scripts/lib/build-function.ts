/**
 * Builds a function the way `sam build` does with `BuildMethod: esbuild`: the esbuild command line that
 * aws-lambda-builders' esbuild workflow (nodejs_npm_esbuild, EsbuildCommandBuilder) derives from
 * `Metadata.BuildProperties`, run in CodeUri with the esbuild of this repository's lock file. `npm run invoke`
 * runs what this writes; test/integration/sam-build.test.ts checks it is byte for byte what the builder writes.
 */
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FunctionConfig } from './sam-template.js';

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The builder runs the esbuild in node_modules/.bin of its build folder; this is the same version. */
const ESBUILD = join(REPO_ROOT, 'node_modules', '.bin', 'esbuild');

/** Set by the builder itself, whatever the template says. */
const NOT_CONFIGURABLE = new Set(['bundle', 'platform', 'outdir']);
/** Options of the builder, not of esbuild. */
const BUILDER_ONLY = new Set(['use_npm_ci', 'entry_points']);

/**
 * The esbuild arguments for `buildProperties`, in the builder's order: entry points, its defaults (bundle,
 * node platform, outdir, and es2020 / cjs / minify when the template does not say), then every other
 * property as a flag (`KeepNames: true` → `--keep-names`, `Target: es2023` → `--target=es2023`,
 * `Banner: [js=…]` → `--banner:js=…`).
 *
 * @param codeUri absolute CodeUri; entry points without an extension get `.ts`, else `.js`, as the builder does.
 * @throws Error when EntryPoints is missing or names a file that does not exist, or a value is not a
 *   boolean, string or list (the builder refuses those too).
 */
export function esbuildArguments(
  buildProperties: Record<string, unknown>,
  codeUri: string,
  outdir: string,
): string[] {
  const options = Object.fromEntries(
    Object.entries(buildProperties).map(([key, value]) => [snakeCase(key), value]),
  );
  const entryPoints = options.entry_points;
  if (!Array.isArray(entryPoints) || entryPoints.length === 0) {
    throw new Error('Metadata.BuildProperties.EntryPoints must list the entry files');
  }
  const args = entryPoints.map((entry) => entryWithExtension(String(entry), codeUri));
  args.push('--bundle', '--platform=node', `--outdir=${outdir}`);
  if (!('target' in options)) args.push('--target=es2020');
  if (!('format' in options)) args.push('--format=cjs');
  if (!('minify' in options)) args.push('--minify');
  for (const [key, value] of Object.entries(options)) {
    if (NOT_CONFIGURABLE.has(key) || BUILDER_ONLY.has(key)) continue;
    const flag = `--${key.replaceAll('_', '-')}`;
    if (typeof value === 'boolean') {
      if (value) args.push(flag);
    } else if (typeof value === 'string') {
      args.push(`${flag}=${value}`);
    } else if (Array.isArray(value)) {
      for (const item of value) args.push(`${flag}:${String(item)}`);
    } else {
      throw new Error(
        `BuildProperties ${key}: expected a boolean, string or list, got ${JSON.stringify(value)}`,
      );
    }
  }
  return args;
}

/**
 * Bundles `fn` into `outdir` (emptied first), as `sam build` writes `.aws-sam/build/<LogicalId>/`.
 *
 * @throws Error when the function is not built with esbuild, or esbuild fails (its own message).
 */
export async function buildFunction(fn: FunctionConfig, outdir: string): Promise<void> {
  if (fn.buildMethod !== 'esbuild') {
    throw new Error(
      `${fn.logicalId} has BuildMethod ${fn.buildMethod ?? '(none)'}; only esbuild is supported`,
    );
  }
  const args = esbuildArguments(fn.buildProperties, fn.codeUri, resolve(outdir));
  rmSync(outdir, { recursive: true, force: true });
  try {
    await promisify(execFile)(ESBUILD, [...args, '--log-level=warning'], { cwd: fn.codeUri });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`esbuild failed for ${fn.logicalId}: ${stderr?.trim() || (error as Error).message}`);
  }
}

/** `KeepNames` → `keep_names`, as SAM CLI hands BuildProperties to the builder. */
function snakeCase(key: string): string {
  return key.replace(/(?<!^)(?=[A-Z])/g, '_').toLowerCase();
}

function entryWithExtension(entry: string, codeUri: string): string {
  const candidates = extname(entry) ? [entry] : [`${entry}.ts`, `${entry}.js`];
  const found = candidates.find((candidate) => existsSync(join(codeUri, candidate)));
  if (found === undefined) throw new Error(`entry point ${join(codeUri, entry)} does not exist`);
  return found;
}

/**
 * The file and export Lambda loads for `fn.handler` (`file.export`) in the built `codeDir`, looking for the
 * file in the Node.js runtime's order (.js, .mjs, .cjs).
 *
 * @throws Error when the handler is not `file.export` or no such file was built.
 */
export function handlerEntry(
  fn: FunctionConfig,
  codeDir: string,
): { modulePath: string; exportName: string } {
  const dot = fn.handler.lastIndexOf('.');
  if (dot <= 0) throw new Error(`${fn.logicalId}.Handler must look like file.export, got ${fn.handler}`);
  const [file, exportName] = [fn.handler.slice(0, dot), fn.handler.slice(dot + 1)];
  const modulePath = ['.js', '.mjs', '.cjs']
    .map((ext) => join(codeDir, file + ext))
    .find((path) => existsSync(path));
  if (modulePath === undefined) {
    throw new Error(`handler ${fn.handler}: no ${file}.js, .mjs or .cjs in ${codeDir}`);
  }
  return { modulePath, exportName };
}

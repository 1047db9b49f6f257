import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * Bundles a test's child script (a sync run in its own process, so a test can SIGKILL it) into one ESM
 * file in a fresh temp folder, as the Lambda bundle is built: error class names kept, so failures read
 * as they do in production. Returns the file to run with `node`.
 */
export async function bundleChild(entryPoint: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sync-child-'));
  const outfile = join(dir, 'child.mjs');
  await build({
    entryPoints: [entryPoint],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    keepNames: true,
    banner: {
      js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);',
    },
    logLevel: 'error',
  });
  return outfile;
}

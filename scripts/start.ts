/**
 * `npm start`: the real sync, end to end, on the embedded two-account sandbox.
 *
 * Shows that AccountB's own keys cannot read AccountA's bucket while the assumed role can, then runs the
 * scheduled job three times: a first copy, a no-op rerun, and a rerun after the producer adds one object
 * and rewrites another with the same size. `--json` prints only each sync's summary, one JSON line each
 * (`npm start --silent -- --json | jq`: without --silent npm prints its `> cross-account-sync@… start` banner
 * on stdout too). `--workers N` then runs a fan-out pass with N copy workers (scripts/lib/fan-out-demo.ts).
 * Exits 1 if any sync copies something other than what it should.
 */
import { readFile } from 'node:fs/promises';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { sourceCredentials } from '../functions/core/access/source-credentials.js';
import { dependenciesFromEnvironment } from '../functions/core/clients.js';
import { awsErrorCode, describeError } from '../functions/core/errors.js';
import { parseJob } from '../functions/core/job.js';
import { type CopiedObject, type RunSummary, syncJob } from '../functions/core/run/sync-job.js';
import { sandboxS3 } from '../sandbox/clients.js';
import { receiveRunEvent } from '../sandbox/run-events.js';
import { type Sandbox, startSandbox } from '../sandbox/sandbox.js';
import { compareBuckets, readText } from './lib/compare-buckets.js';
import { consoleLogger } from './lib/console-logger.js';
import { runEventDemo } from './lib/event-demo.js';
import { runFanOutDemo } from './lib/fan-out-demo.js';

const json = process.argv.includes('--json');
const workers = workersOption(process.argv);
// The README covers Node 20 vs 22; the SDK's notice would only interleave with the demo's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const say = (line = '') => {
  if (!json) process.stdout.write(`${line}\n`);
};
const ok = (line: string) => say(`  ✔ ${line}`);

async function main(): Promise<number> {
  const started = Date.now();
  say('cross-account-sync: a pull-based sync from AccountA into AccountB, on a local two-account AWS\n');
  say('Starting the sandbox: moto (S3, STS, IAM, auth enforced) and DynamoDB Local...');
  const sandbox = await startSandbox();
  try {
    say(`  ready in ${seconds(Date.now() - started)}\n`);
    describeSandbox(sandbox);
    Object.assign(process.env, sandbox.env);
    const job = parseJob(JSON.parse(await readFile('events/scheduled-sync.json', 'utf8')));
    const deps = dependenciesFromEnvironment(consoleLogger(json ? 'error' : 'warn'));

    say('1. Who may read AccountA’s bucket');
    await showAccess(sandbox, deps.sts, job);

    const failures: string[] = [];
    const expect = (summary: RunSummary, copied: number) => {
      if (summary.copied !== copied || summary.failed !== 0) {
        failures.push(
          `run ${summary.runId}: copied ${summary.copied} (expected ${copied}), failed ${summary.failed}`,
        );
      }
    };

    say('\n2. First sync');
    const first = await runSync(sandbox, deps, job);
    expect(first, 2);
    const checkpoint = await deps.state.readCheckpoint(job.jobId);
    ok(`checkpoint recorded in DynamoDB: pass complete (run ${checkpoint.lastCompletePass?.runId})`);

    say('\n3. Second sync, nothing changed at the source');
    expect(await runSync(sandbox, deps, job), 0);

    say('\n4. AccountA adds test3.txt and rewrites test2.txt with the same size');
    await changeSource(sandbox);

    say('\n5. Third sync');
    expect(await runSync(sandbox, deps, job), 2);

    say('\n6. Destination against source');
    const mismatches = await compareBuckets(sandbox);
    if (mismatches.length === 0) ok('every source object is in AccountB’s bucket, byte for byte');
    failures.push(...mismatches);

    say('\n7. Event path: AccountA writes reports/x.csv, and no schedule runs');
    failures.push(
      ...(await runEventDemo(sandbox, deps, job, { ok, log: consoleLogger(json ? 'error' : 'warn') })),
    );

    if (workers !== undefined) {
      say(`\n8. Fan-out: the same job spread over shard planners and ${workers} copy workers on SQS`);
      const onPass = (record: Record<string, unknown>) => json && printSummary(record);
      failures.push(...(await runFanOutDemo(sandbox, deps, job, workers, { say, ok, onPass })));
    }

    if (failures.length > 0) {
      process.stderr.write(`\nDemo FAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
      return 1;
    }
    say(
      `\nDone in ${seconds(Date.now() - started)}. Next: npm test, npm run sandbox, npm run invoke -- SyncFunction -e events/scheduled-sync.json`,
    );
    return 0;
  } finally {
    await sandbox.stop();
  }
}

function describeSandbox(sandbox: Sandbox): void {
  const { accountA, accountB } = sandbox;
  say(`  AccountA ${accountA.id}  bucket s3://${accountA.bucket}  role ${accountA.roleArn}`);
  say(
    `                         (trusts AccountB with ExternalId "${accountA.externalId}"; allows ListBucket + GetObject)`,
  );
  say(
    `  AccountB ${accountB.id}  bucket s3://${accountB.destinationBucket}  state table ${accountB.tableName}\n`,
  );
}

async function showAccess(
  sandbox: Sandbox,
  sts: Parameters<typeof sourceCredentials>[0],
  job: ReturnType<typeof parseJob>,
): Promise<void> {
  const { accountA, accountB } = sandbox;
  const own = sandboxS3(sandbox, accountB.syncer);
  const refused = await own.send(new ListObjectsV2Command({ Bucket: accountA.bucket })).then(
    () => 'allowed',
    (error: unknown) => awsErrorCode(error).name ?? describeError(error),
  );
  if (refused === 'allowed')
    throw new Error('AccountB listed AccountA’s bucket with its own keys: sandbox is open');
  ok(`AccountB’s own keys are refused on s3://${accountA.bucket} (${refused})`);

  const credentials = await sourceCredentials(sts, job, 'demo')();
  const assumed = sandboxS3(sandbox, {
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
  });
  const listing = await assumed.send(new ListObjectsV2Command({ Bucket: accountA.bucket }));
  const keys = (listing.Contents ?? []).map((object) => object.Key);
  ok(`AssumeRole into S3GetListRole (ExternalId given) succeeds; the role lists ${keys.join(', ')}`);
  const text = await readText(assumed, accountA.bucket, 'test.txt');
  ok(`and gets test.txt: ${JSON.stringify(text)}`);
}

async function runSync(
  sandbox: Sandbox,
  deps: ReturnType<typeof dependenciesFromEnvironment>,
  job: ReturnType<typeof parseJob>,
) {
  const copied: CopiedObject[] = [];
  const summary = await syncJob(deps, job, { onObjectCopied: (object) => copied.push(object) });
  if (json) {
    printSummary(summary);
    return summary;
  }
  say(
    `  copied ${summary.copied}, skipped ${summary.skipped} unchanged, failed ${summary.failed}, ` +
      `${summary.bytes} bytes in ${seconds(summary.durationMs)} (${summary.listRequests} LIST, ` +
      `${summary.readCapacityUnits} DynamoDB read units)`,
  );
  if (copied.length === 0) ok('nothing to copy: every object matches the ledger');
  for (const object of copied.sort((a, b) => a.key.localeCompare(b.key))) {
    ok(`${object.key} (${object.reason}, ${object.bytes} bytes, sha256 ${object.sha256.slice(0, 12)}…)`);
  }
  if (summary.manifest) {
    const { bucket, manifestKey, markerKey, objects } = summary.manifest;
    ok(`manifest s3://${bucket}/${manifestKey} (${objects} lines), then ${markerKey.split('/').pop()}`);
  }
  const event = await receiveRunEvent(sandbox, summary.runId);
  if (event)
    ok(
      `"${event['detail-type']}" event on bus ${sandbox.accountB.eventBusName} (copied ${event.detail.copied})`,
    );
  return summary;
}

async function changeSource(sandbox: Sandbox): Promise<void> {
  const producer = sandboxS3(sandbox, sandbox.accountA.admin);
  const bucket = sandbox.accountA.bucket;
  const before = await readText(producer, bucket, 'test2.txt');
  // Same length, different bytes: tools that compare size (and time) alone miss this rewrite.
  const rewritten = before.replace(/[a-z]/i, (c) => (c === 'X' ? 'Y' : 'X'));
  await producer.send(new PutObjectCommand({ Bucket: bucket, Key: 'test2.txt', Body: rewritten }));
  await producer.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'test3.txt',
      Body: 'a third object\n',
      ContentType: 'text/plain',
    }),
  );
  ok(`test2.txt: ${JSON.stringify(before)} -> ${JSON.stringify(rewritten)} (${rewritten.length} bytes both)`);
  ok('test3.txt added');
}

/** One sync's summary as a JSON line (`--json`). */
function printSummary(summary: object): void {
  const { jobId, runId, status, copied, skipped, failed, bytes, durationMs } = summary as RunSummary;
  process.stdout.write(
    `${JSON.stringify({ jobId, runId, status, copied, skipped, failed, bytes, durationMs })}\n`,
  );
}

/** `--workers N` (1 to 64): also run the fan-out demo with N copy workers. */
function workersOption(argv: string[]): number | undefined {
  const at = argv.indexOf('--workers');
  if (at === -1) return undefined;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < 1 || value > 64) {
    process.stderr.write(
      'npm start: --workers takes a number of copy workers from 1 to 64, e.g. --workers 3\n',
    );
    process.exit(2);
  }
  return value;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`\nnpm start failed: ${describeError(error)}\n`);
    process.exitCode = 1;
  },
);

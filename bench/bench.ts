/**
 * `npm run bench`: the sync against the tools a user would pick instead (rclone, AWS CLI v2's
 * `aws s3 sync`), the raw SDK as a ceiling and a bare listing as a floor, on one local two-account S3
 * in one run. Writes bench/results/latest.json, latest.md and latest.svg. `--help` lists the flags.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Sandbox, startSandbox } from '../sandbox/sandbox.js';
import { bundleChildren } from './lib/bundle.js';
import { wallTimeChart } from './lib/chart.js';
import { runEventLagWorkload } from './lib/event-lag.js';
import { runFanOutWorkload } from './lib/fan-out.js';
import { warmUpStateTable } from './lib/ledger.js';
import { findProcesses, RSS_METHOD } from './lib/measure.js';
import { parseOptions, USAGE, UsageError } from './lib/options.js';
import { ensurePeers } from './lib/peers.js';
import { checkTargets, markdownReport, summarize, type WorkloadFigures } from './lib/report.js';
import { type Tool, toolSettings } from './lib/tools.js';
import { runWorkload } from './lib/workloads.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const started = Date.now();
const say = (line: string) => {
  const seconds = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`[${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s] ${line}\n`);
};

async function main(): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const peers = ensurePeers(options.peers, options.install, say);
  for (const { peer, reason } of peers.skipped) say(`skipping ${peer}: ${reason}`);
  const copyTools: Tool[] = ['cross-account-sync', ...peers.available, 'ceiling'];
  const noChangeTools: Tool[] = ['cross-account-sync', ...peers.available, 'bare-listing'];

  say('bundling the measured Node processes with esbuild');
  const children = await bundleChildren();
  say('starting the sandbox (moto with auth enforced, DynamoDB Local)');
  let sandbox: Sandbox | undefined;
  const scratch = await mkdtemp(join(tmpdir(), 'cross-account-sync-bench-'));
  const cleanUp = async () => {
    await sandbox?.stop();
    await rm(scratch, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping the sandbox`);
      void cleanUp().finally(() => process.exit(130));
    });
  }

  try {
    sandbox = await startSandbox();
    say(`sandbox up: moto ${sandbox.motoEndpoint}, DynamoDB Local ${sandbox.dynamodbEndpoint}`);
    // A --quick run checks the harness, not the figures: the warm-up would be most of its time.
    if (!options.quick) {
      say('warming up DynamoDB Local (3,000 ledger writes, untimed)');
      await warmUpStateTable(sandbox);
    }
    const servers = {
      moto: findProcesses('moto_server.py', `--port ${new URL(sandbox.motoEndpoint).port}`),
      dynamodb: findProcesses('DynamoDBLocal.jar', `-port ${new URL(sandbox.dynamodbEndpoint).port}`),
    };
    const context = { sandbox, children, scratch, concurrency: options.concurrency, servers };
    const figures: WorkloadFigures[] = [];
    const loads: number[] = [];
    for (const id of options.workloads) {
      const last = id === options.workloads.at(-1);
      const outcome = await runWorkload(id, { context, options, copyTools, noChangeTools, say, last });
      loads.push(...outcome.runs.map((run) => run.loadAverage));
      figures.push(summarize(outcome));
    }
    if (options.fanOut) {
      const rclone = peers.available.includes('rclone');
      const fanOut = { ...options.fanOut, rclone, outDir: options.outDir };
      await runFanOutWorkload(context, fanOut, say);
    }
    if (options.eventLag) {
      await runEventLagWorkload(context, { ...options.eventLag, outDir: options.outDir }, say);
    }
    if (figures.length === 0) return 0;

    const generatedAt = new Date().toISOString();
    const targets = checkTargets(figures);
    const settings = Object.fromEntries(
      [...new Set([...copyTools, ...noChangeTools])].map((tool) => [
        tool,
        toolSettings(options.concurrency)[tool],
      ]),
    );
    const environment = {
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}`,
      s3: 'moto (S3, STS, IAM; SigV4 and policies enforced) on 127.0.0.1, counting S3 requests by type',
      state: 'DynamoDB Local (in memory)',
      peakRss: RSS_METHOD,
      wallTime: 'spawn to exit of each measured process, start-up included, for every tool alike',
      ...Object.fromEntries(Object.entries(peers.versions).map(([peer, version]) => [peer, version])),
      ...Object.fromEntries(peers.skipped.map(({ peer, reason }) => [peer, `skipped: ${reason}`])),
      loadAverage: `1-minute load average at the start of each run: ${Math.min(...loads)}–${Math.max(...loads)} on ${cpus().length} cores (above ${cpus().length}, other work on the machine competed for the CPU)`,
      flags: process.argv.slice(2).join(' ') || '(defaults)',
      totalSeconds: String(Math.round((Date.now() - started) / 1000)),
    };
    const report = {
      generatedAt,
      options: { ...options, outDir: undefined },
      environment,
      settings,
      workloads: figures,
      targets,
    };
    const markdown = markdownReport(figures, targets, { generatedAt, settings, environment });
    await mkdir(options.outDir, { recursive: true });
    await writeFile(join(options.outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(options.outDir, 'latest.md'), markdown);
    await writeFile(join(options.outDir, 'latest.svg'), wallTimeChart(figures, generatedAt));
    process.stdout.write(`${markdown}\n`);
    say(`wrote ${join(options.outDir, 'latest.json')}, latest.md and latest.svg`);
    return 0;
  } finally {
    await cleanUp();
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  say(`benchmark failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
}

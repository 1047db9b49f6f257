import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** GNU time: its %M is the child's peak resident set (ru_maxrss), the same figure for every tool. */
const GNU_TIME = '/usr/bin/time';
/** Without GNU time, VmHWM is polled this often; a short spike between polls can be missed. */
const POLL_MS = 20;
const OUTPUT_TAIL_CHARS = 8_000;

/** One measured process. */
export interface Measured {
  wallSeconds: number;
  /** Peak resident set of the process, in MB (10^6 bytes, as MB/s is). */
  peakRssMb: number;
  /** User + system CPU seconds of the process (and its waited-for children); undefined without GNU time. */
  cpuSeconds?: number;
  stdout: string;
  stderr: string;
}

export class CommandFailedError extends Error {}

/** How the peak RSS is measured, for the report. */
export const RSS_METHOD = existsSync(GNU_TIME)
  ? 'GNU time %M (getrusage ru_maxrss of the process)'
  : `VmHWM from /proc/<pid>/status, polled every ${POLL_MS} ms`;

/**
 * Runs `command` to completion and measures its wall time (spawn to exit, so start-up counts for every
 * tool alike) and peak RSS. Fails with the output's tail when it exits non-zero.
 */
export async function measureCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { cwd?: string } = {},
): Promise<Measured> {
  const useTime = existsSync(GNU_TIME);
  const scratch = await mkdtemp(join(tmpdir(), 'bench-time-'));
  const timeFile = join(scratch, 'rss');
  const [file, argv] = useTime
    ? [GNU_TIME, ['-f', '%M %U %S', '-o', timeFile, command, ...args]]
    : [command, args];
  const started = process.hrtime.bigint();
  const child = spawn(file, argv, { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  });
  let polledKb = 0;
  const poll = useTime
    ? undefined
    : setInterval(() => {
        void readHwmKb(child.pid).then((kb) => {
          polledKb = Math.max(polledKb, kb);
        });
      }, POLL_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode) => resolve(exitCode));
  });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (poll) clearInterval(poll);
  try {
    if (code !== 0) {
      throw new CommandFailedError(
        `${command} ${args.join(' ')} exited ${code}\n${stderr.trim()}\n${stdout.slice(-2000)}`,
      );
    }
    if (!useTime) return { wallSeconds, peakRssMb: (polledKb * 1024) / 1e6, stdout, stderr };
    const [kb = 0, user = 0, system = 0] = ((await readFile(timeFile, 'utf8')).trim().split('\n').pop() ?? '')
      .split(' ')
      .map(Number);
    return { wallSeconds, peakRssMb: (kb * 1024) / 1e6, cpuSeconds: user + system, stdout, stderr };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function readHwmKb(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; 0 once it is gone. */
export async function processCpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th of the line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Linux's USER_HZ, 100 on every mainstream build. */
const CLOCK_TICKS = 100;

/** Processes whose command line contains every one of `needles`, as `ps` shows them. */
export function findProcesses(...needles: string[]): number[] {
  const listing = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout ?? '';
  return listing
    .split('\n')
    .filter((line) => needles.every((needle) => line.includes(needle)) && !line.includes('parent_watch'))
    .map((line) => Number(line.trim().split(/\s+/)[0]))
    .filter((pid) => Number.isInteger(pid) && pid !== process.pid);
}

import {
  type DoctorDependencies,
  type DoctorLink,
  type DoctorReport,
  diagnoseJob,
} from '../functions/core/diagnose/diagnose-job.js';
import type { Job } from '../functions/core/job.js';
import type { CommandResult } from './command-result.js';
import { EXIT, type ExitCode } from './exit-codes.js';

const TITLES: Record<DoctorLink, string> = {
  assumeRole: 'caller may assume the source role',
  externalId: 'the ExternalId is required and accepted',
  consumerTrust: 'the role trusts only the sync function',
  listSource: 'the role may list the source',
  getSource: 'the role may get source objects',
  serverSideCopy: "the sync role may read the source itself (options.copyMethod 'server-side')",
  writeDestination: 'the destination is writable',
  stateTable: 'the state table is reachable',
  bucketEvents: "AccountA's bucket sends its events to EventBridge",
  producerRule: "a rule on AccountA's default bus forwards the job's events to AccountB's bus",
  busPolicy: "AccountB's S3-event bus admits AccountA",
  eventDelivery: "a probe object's event reaches the queue",
};

const MARKS = { ok: '✔', warn: '!', fail: '✘', skipped: '-' } as const;

/**
 * `doctor`: each link of the chain with ✔/✘ and the fix; exit 3 when a link is broken, 5 when it broke
 * because an endpoint did not answer (as `run` exits on a network failure).
 */
export async function diagnoseJobCommand(deps: DoctorDependencies, job: Job): Promise<CommandResult> {
  const report = await diagnoseJob(deps, job);
  const text = doctorLines(report, `doctor: job ${job.jobId}${report.caller ? `, as ${report.caller}` : ''}`);
  return { exitCode: doctorExitCode(report), json: report, text: text.join('\n') };
}

/** A report as a person reads it: the heading, each link with its mark and fix, then the verdict. */
export function doctorLines(report: DoctorReport, heading: string): string[] {
  const lines = [heading];
  for (const check of report.checks) {
    lines.push(`${MARKS[check.status]} ${TITLES[check.link]}: ${check.detail}`);
    if (check.fix) lines.push(`    fix: ${check.fix}`);
  }
  const broken = report.checks.find((check) => check.status === 'fail');
  lines.push(broken ? `broken link: ${TITLES[broken.link]}` : 'every link holds');
  return lines;
}

/** 0 when every link holds, 5 when the broken one is an endpoint that did not answer, 3 otherwise. */
export function doctorExitCode(report: DoctorReport): ExitCode {
  const broken = report.checks.find((check) => check.status === 'fail');
  return report.ok ? EXIT.ok : broken?.unreachable ? EXIT.unexpected : EXIT.access;
}

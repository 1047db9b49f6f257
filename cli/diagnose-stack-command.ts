import type { LambdaClient } from '@aws-sdk/client-lambda';
import {
  type DoctorDependencies,
  type DoctorReport,
  diagnoseJob,
} from '../functions/core/diagnose/diagnose-job.js';
import { describeError } from '../functions/core/errors.js';
import type { Job } from '../functions/core/job.js';
import type { CommandResult } from './command-result.js';
import { doctorExitCode, doctorLines } from './diagnose-job-command.js';
import { EXIT, type ExitCode, exitCodeFor } from './exit-codes.js';
import { invokeFunctionDoctor } from './invoke-function-doctor.js';
import type { DeployedStack } from './read-stack.js';

/** What `doctor --stack` calls with: the caller's doctor clients, and Lambda to ask the function. */
export interface StackDoctorDependencies {
  doctor: DoctorDependencies;
  lambda: LambdaClient;
}

/** The function's side of one job: its report, or why it could not be had. */
type FunctionVerdict =
  | { report: DoctorReport }
  | { error: { name: string; message: string }; exitCode: ExitCode };

/**
 * `doctor --stack`: for each job the stack schedules, the doctor twice. As this shell's identity, with
 * the stack's table and the function's role known (so an account-wide trust in AccountA is named); then
 * as the function's own role, by invoking the function with a doctor event: the identity that runs in
 * production, whose permissions are the template's, not the operator's.
 */
export async function diagnoseStackCommand(
  deps: StackDoctorDependencies,
  stack: DeployedStack,
): Promise<CommandResult> {
  const doctor: DoctorDependencies = {
    ...deps.doctor,
    tableName: stack.tableName,
    functionRoleArns: stack.functionRoleArn ? [stack.functionRoleArn] : undefined,
  };
  const jobs = [];
  const lines: string[] = [];
  const exitCodes: ExitCode[] = [];
  for (const { schedule, job } of stack.jobs) {
    const caller = await diagnoseJob(doctor, job);
    const fn = await functionVerdict(deps.lambda, stack, job);
    jobs.push({ jobId: job.jobId, schedule, caller, function: fn });
    exitCodes.push(doctorExitCode(caller), 'report' in fn ? doctorExitCode(fn.report) : fn.exitCode);
    lines.push(
      `doctor: stack ${stack.stackName}, job ${job.jobId} (schedule ${schedule})`,
      ...doctorLines(caller, `-- as ${caller.caller ?? 'this identity'} (this shell)`).map(indent),
      ...('report' in fn
        ? doctorLines(
            fn.report,
            `-- as function ${stack.functionName}'s role${fn.report.caller ? ` (${fn.report.caller})` : ''}`,
          )
        : [
            `-- as function ${stack.functionName ?? '?'}'s role`,
            `✘ could not ask the function: ${fn.error.message}`,
          ]
      ).map(indent),
      '',
    );
  }
  const exitCode = exitCodes.find((code) => code !== EXIT.ok) ?? EXIT.ok;
  return {
    exitCode,
    json: { stack: stack.stackName, ok: exitCode === EXIT.ok, jobs },
    text: lines.join('\n').trimEnd(),
  };
}

const indent = (line: string) => `  ${line}`;

async function functionVerdict(
  lambda: LambdaClient,
  stack: DeployedStack,
  job: Job,
): Promise<FunctionVerdict> {
  if (!stack.functionName) {
    return {
      error: { name: 'UsageError', message: `stack ${stack.stackName} has no SyncFunctionName output` },
      exitCode: EXIT.usage,
    };
  }
  try {
    return { report: await invokeFunctionDoctor(lambda, stack.functionName, job) };
  } catch (error) {
    return {
      error: { name: (error as Error)?.name ?? 'Error', message: describeError(error) },
      exitCode: exitCodeFor(error),
    };
  }
}

import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { DoctorReport } from '../functions/core/diagnose/diagnose-job.js';
import { SyncError } from '../functions/core/errors.js';
import type { Job } from '../functions/core/job.js';

/**
 * Asks the deployed function to diagnose `job` as its own role (a `{"doctor": job}` event, answered by
 * functions/core/handle-event.ts), synchronously, as `aws lambda invoke` would.
 *
 * @throws SyncError with the function's own error when it failed (e.g. a job it does not accept).
 */
export async function invokeFunctionDoctor(
  lambda: LambdaClient,
  functionName: string,
  job: Job,
): Promise<DoctorReport> {
  const result = await lambda.send(
    new InvokeCommand({
      FunctionName: functionName,
      InvocationType: 'RequestResponse',
      Payload: Buffer.from(JSON.stringify({ doctor: job })),
    }),
  );
  const payload = Buffer.from(result.Payload ?? new Uint8Array()).toString('utf8');
  if (result.FunctionError) {
    const { errorType, errorMessage } = parseOr(payload, {
      errorType: result.FunctionError,
      errorMessage: payload,
    });
    throw new SyncError(
      `function ${functionName} failed to diagnose job ${job.jobId}: ${errorType}: ${errorMessage}`,
    );
  }
  const report = parseOr<DoctorReport | undefined>(payload, undefined);
  if (!report || !Array.isArray(report.checks)) {
    throw new SyncError(
      `function ${functionName} did not answer with a doctor report (is it deployed from this version?): ${payload.slice(0, 200)}`,
    );
  }
  return report;
}

function parseOr<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

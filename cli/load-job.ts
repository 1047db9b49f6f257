import { readFile } from 'node:fs/promises';
import { JobValidationError } from '../functions/core/errors.js';
import { type Job, parseJob } from '../functions/core/job.js';
import { UsageError } from './exit-codes.js';

/**
 * Reads and validates a job file: the same JSON the schedule hands the function.
 *
 * @throws UsageError when the file cannot be read or is not JSON; JobValidationError naming the field.
 */
export async function loadJob(path: string): Promise<Job> {
  return (await loadJobFile(path)).job;
}

/**
 * {@link loadJob}, also returning the JSON as written (no defaults filled in), which `jobs add` stores.
 *
 * @throws as {@link loadJob}.
 */
export async function loadJobFile(path: string): Promise<{ input: unknown; job: Job }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read job file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`job file ${path} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  try {
    return { input, job: parseJob(input) };
  } catch (error) {
    if (error instanceof JobValidationError) {
      throw new JobValidationError(`${path}: ${error.message}`, { cause: error, problems: error.problems });
    }
    throw error;
  }
}

/** What every task message shares: a JSON body, read with a schema, and an error that names the problem. */
import type * as z from 'zod/mini';
import { SyncError } from '../errors.js';
import '../schema-messages.js';

/** A task message a worker cannot act on: not JSON, or not a task of this version. */
export class TaskValidationError extends SyncError {}

/**
 * Reads a `kind` task from a message body with `schema`. A message that is not one names what is wrong; a
 * worker reports it as a failed item, so after the queue's receive limit it waits in the dead-letter queue.
 */
export function parseTask(body: string, kind: string, schema: z.ZodMiniType): unknown {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new TaskValidationError(
      `a ${kind} task is a JSON object; the message body is not JSON: ${preview(body)}`,
    );
  }
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${['task', ...issue.path.map(String)].join('.')} ${issue.message}`,
  );
  throw new TaskValidationError(`invalid ${kind} task: ${problems.join('; ')}`);
}

function preview(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The end of a fan-out pass (state/pass-tally.ts, fanout/end-pass.ts): `running → ending → ended`, each
 * step a conditional update naming the worker, so that exactly one worker writes the end at a time, and a
 * worker that died while ending is taken over only once Lambda has surely killed it.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LAMBDA_MAX_TIMEOUT_MS } from '../run/run-deadline.js';
import { type PassItem, passKey } from './pass-item.js';
import type { PassState } from './pass-types.js';

/** One step of the end: from which state to which, on what further condition, and what else it sets. */
interface EndStep {
  from: PassState['state'];
  to: PassState['state'];
  condition: string;
  set: string;
}

/** The steps, each taken by the worker it names (`endedBy`). */
const STEPS = {
  /** Nothing outstanding, and no one has claimed the end: the claimer writes it by its deadline. */
  claim: {
    from: 'running',
    to: 'ending',
    condition: 'AND outstanding = :zero',
    set: ', endingUntil = :until',
  },
  /** The ender's deadline passed: Lambda has killed it, so two workers never write the end at once. */
  takeOver: {
    from: 'ending',
    to: 'ending',
    condition: 'AND endedBy = :previous AND endingUntil < :now',
    set: ', endingUntil = :until',
  },
  /** Only the ender still in charge records its event, so one taking over later does not send it again. */
  eventPublished: {
    from: 'ending',
    to: 'ending',
    condition: 'AND endedBy = :worker',
    set: ', eventPublishedAt = :at',
  },
  ended: { from: 'ending', to: 'ended', condition: 'AND endedBy = :worker', set: ', finishedAt = :at' },
} satisfies Record<string, EndStep>;

/** Claims the end for `worker` if nothing is outstanding and no one has (PassTally.claimEnd). */
export function claimPassEnd(
  pass: PassItem,
  worker: string,
  until = new Date(Date.now() + LAMBDA_MAX_TIMEOUT_MS),
): Promise<boolean> {
  return takeStep(pass, STEPS.claim, worker, { ':zero': 0, ':until': until.toISOString() });
}

/** Takes the end over from `previous` once its deadline has passed (PassTally.takeOverEnd). */
export function takeOverPassEnd(
  pass: PassItem,
  worker: string,
  previous: string,
  until: Date,
  now = new Date(),
): Promise<boolean> {
  const values = { ':previous': previous, ':now': now.toISOString(), ':until': until.toISOString() };
  return takeStep(pass, STEPS.takeOver, worker, values);
}

/** Records the run event published by `worker`, still the ender (PassTally.markEventPublished). */
export function markPassEventPublished(pass: PassItem, worker: string, at = new Date()): Promise<boolean> {
  return takeStep(pass, STEPS.eventPublished, worker, { ':at': at.toISOString() });
}

/** Marks the pass `ended` by the worker that claimed its end (PassTally.ended). */
export function markPassEnded(pass: PassItem, worker: string, at = new Date()): Promise<boolean> {
  return takeStep(pass, STEPS.ended, worker, { ':at': at.toISOString() });
}

/** `step` by `worker` where its condition holds; false where it did not. */
async function takeStep(
  pass: PassItem,
  { from, to, condition, set }: EndStep,
  worker: string,
  values: Record<string, unknown>,
): Promise<boolean> {
  try {
    await pass.doc.send(
      new UpdateCommand({
        TableName: pass.table,
        Key: passKey(pass),
        UpdateExpression: `SET #state = :to, endedBy = :worker${set}`,
        ConditionExpression: `#state = :from ${condition}`,
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':from': from, ':to': to, ':worker': worker, ...values },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

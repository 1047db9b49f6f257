import { lambdaWorker } from './core/fanout/lambda-worker.js';

/** Part worker: each SQS record is one part of a giant object; the worker of its last part completes it. */
export const handler = lambdaWorker('part');

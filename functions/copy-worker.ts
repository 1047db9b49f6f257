import { lambdaWorker } from './core/fanout/lambda-worker.js';

/** Copy worker: each SQS record is a copy task (a batch of small objects, or one large one). */
export const handler = lambdaWorker('copy');

import { lambdaWorker } from './core/fanout/lambda-worker.js';

/** Shard planner: each SQS record is one shard of a fan-out pass, to compare with its ledger range. */
export const handler = lambdaWorker('plan-shard');

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

const serviceName = 'cross-account-sync';

/** Structured JSON logs; level and service name come from POWERTOOLS_LOG_LEVEL / POWERTOOLS_SERVICE_NAME. */
export const logger = new Logger({ serviceName });

/** CloudWatch metrics in EMF, flushed once per invocation by the logMetrics middleware. */
export const metrics = new Metrics({ namespace: 'CrossAccountSync', serviceName });

/** X-Ray segments for the handler and every AWS call; inert outside Lambda. */
export const tracer = new Tracer({ serviceName });

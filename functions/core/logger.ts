import { Logger } from '@aws-lambda-powertools/logger';

/** Structured JSON logs; level and service name come from POWERTOOLS_LOG_LEVEL / POWERTOOLS_SERVICE_NAME. */
export const logger = new Logger({ serviceName: 'cross-account-sync' });

import type { S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CONTROL_TIMEOUTS,
  dependenciesFromEnvironment,
  doctorDependenciesOf,
  httpHandlerOptions,
  S3_TIMEOUTS,
  stsEndpointOf,
} from '../../functions/core/clients.js';
import { SyncError } from '../../functions/core/errors.js';
import { clientOf } from '../../functions/core/lazy-client.js';
import type { SyncLogger } from '../../functions/core/run/sync-job.js';
import { captureLogger } from '../support/capture-logger.js';

const logger = { info: () => {}, warn: () => {}, error: () => {} } as unknown as SyncLogger;
const env = { STATE_TABLE_NAME: 'sync-state' };

/** What the client's NodeHttpHandler was built with. */
async function handlerConfig(client: { config: unknown }) {
  const { requestHandler } = client.config as { requestHandler: { configProvider: Promise<unknown> } };
  return requestHandler.configProvider;
}

describe('dependenciesFromEnvironment', () => {
  beforeEach(() => {
    vi.stubEnv('AWS_REGION', 'eu-west-1');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.each([
    ['unset', {}],
    ['empty', { STATE_TABLE_NAME: '' }],
  ])(
    'refuses to start when STATE_TABLE_NAME is %s, naming the variable and where the table comes from',
    (_, environment) => {
      // Act
      const build = () => dependenciesFromEnvironment(logger, environment);

      // Assert
      expect(build).toThrow(SyncError);
      expect(build).toThrow(
        'STATE_TABLE_NAME is not set: point it at the DynamoDB table that template.yaml creates ' +
          '(or `npm run sandbox` prints one for local runs)',
      );
    },
  );

  it('keeps state in the named table', () => {
    // Act
    const deps = dependenciesFromEnvironment(logger, env);

    // Assert
    expect(deps.state.tableName).toBe('sync-state');
    expect(deps.logger).toBe(logger);
  });

  it('gives S3 clients five attempts, region redirects and the S3 timeouts, with virtual-hosted addressing on AWS', async () => {
    // Act
    const deps = dependenciesFromEnvironment(logger, env);

    // Assert
    for (const client of [
      deps.destinationS3,
      deps.sourceS3(async () => ({ accessKeyId: 'a', secretAccessKey: 'b' })),
    ]) {
      expect(await client.config.maxAttempts()).toBe(5);
      expect(client.config.followRegionRedirects).toBe(true);
      expect(client.config.forcePathStyle).toBe(false);
      expect(await handlerConfig(client)).toMatchObject({
        connectionTimeout: 5_000,
        requestTimeout: 120_000,
        throwOnRequestTimeout: true,
        socketTimeout: 20_000,
      });
    }
  });

  it('gives STS and DynamoDB five attempts and the short control timeouts', async () => {
    // Act
    const deps = dependenciesFromEnvironment(logger, env);

    // Assert
    for (const client of [deps.sts, deps.state.client]) {
      expect(await client.config.maxAttempts()).toBe(5);
      expect(await handlerConfig(client)).toMatchObject({
        connectionTimeout: 5_000,
        requestTimeout: 10_000,
        throwOnRequestTimeout: true,
        socketTimeout: 10_000,
      });
    }
  });

  it.each([
    ['AWS_ENDPOINT_URL_S3', { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:5000' }],
    ['AWS_ENDPOINT_URL', { AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }],
  ])('uses path-style addressing when %s points S3 somewhere local', (_, endpoint) => {
    // Act
    const deps = dependenciesFromEnvironment(logger, { ...env, ...endpoint });

    // Assert
    expect(deps.destinationS3.config.forcePathStyle).toBe(true);
    expect(deps.destinationS3In?.('us-east-2').config.forcePathStyle).toBe(true);
    expect(
      deps.sourceS3(async () => ({ accessKeyId: 'a', secretAccessKey: 'b' })).config.forcePathStyle,
    ).toBe(true);
  });

  it('replaces every client timeout with the ones given', async () => {
    // Arrange
    const timeouts = { connectionMs: 1, requestMs: 2, idleMs: 3 };

    // Act
    const deps = dependenciesFromEnvironment(logger, env, { timeouts });

    // Assert
    for (const client of [deps.sts, deps.destinationS3, deps.state.client]) {
      expect(await handlerConfig(client)).toMatchObject({
        connectionTimeout: 1,
        requestTimeout: 2,
        socketTimeout: 3,
      });
    }
  });

  it('builds the destination client of another region in that region, keeping the S3 settings', async () => {
    // Act
    const client = dependenciesFromEnvironment(logger, env).destinationS3In?.('ap-south-1') as S3Client;

    // Assert
    expect(await client.config.region()).toBe('ap-south-1');
    expect(client.config.followRegionRedirects).toBe(true);
    expect(await client.config.maxAttempts()).toBe(5);
  });

  it("builds the source client with the role's credentials, in the bucket's region when given, else the function's", async () => {
    // Arrange
    const deps = dependenciesFromEnvironment(logger, env);
    const credentials = { accessKeyId: 'AKIASOURCE', secretAccessKey: 'secret' };

    // Act
    const inRegion = deps.sourceS3(async () => credentials, 'us-west-2');
    const inDefault = deps.sourceS3(async () => credentials);

    // Assert
    expect(await inRegion.config.region()).toBe('us-west-2');
    expect(await inDefault.config.region()).toBe('eu-west-1');
    expect(await inRegion.config.credentials()).toMatchObject(credentials);
    expect(inRegion.config.followRegionRedirects).toBe(true);
    expect(await inRegion.config.maxAttempts()).toBe(5);
  });

  it('publishes run events only when EVENT_BUS_NAME is set', async () => {
    // Act
    const without = dependenciesFromEnvironment(logger, env);
    const withBus = dependenciesFromEnvironment(logger, { ...env, EVENT_BUS_NAME: 'sync-bus' });

    // Assert
    expect(without).not.toHaveProperty('events');
    expect(withBus.events?.busName).toBe('sync-bus');
    if (!withBus.events) throw new Error('no events client');
    const events = await clientOf(withBus.events.client);
    expect(await events.config.maxAttempts()).toBe(5);
    expect(await handlerConfig(events)).toMatchObject({
      requestTimeout: 10_000,
    });
  });

  it('passes metrics through only when given', () => {
    // Arrange
    const metrics = { addMetric: () => {}, addDimensions: () => {} };

    // Act
    const without = dependenciesFromEnvironment(logger, env);
    const withMetrics = dependenciesFromEnvironment(logger, env, { metrics });

    // Assert
    expect(without).not.toHaveProperty('metrics');
    expect(withMetrics.metrics).toBe(metrics);
  });

  it('wraps every client it builds with instrument, once each (the lazy ones when first used)', async () => {
    // Arrange
    const wrapped: unknown[] = [];
    const instrument = <T>(client: T): T => {
      wrapped.push(client);
      return client;
    };

    // Act
    const deps = dependenciesFromEnvironment(logger, { ...env, EVENT_BUS_NAME: 'bus' }, { instrument });
    const other = deps.destinationS3In?.('us-east-2');
    const source = deps.sourceS3(async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }), 'us-west-2');
    if (!deps.events) throw new Error('no events client');
    const events = await clientOf(deps.events.client);
    const eventsAgain = await clientOf(deps.events.client);

    // Assert
    expect(eventsAgain).toBe(events);
    expect(wrapped).toEqual([deps.sts, deps.destinationS3, deps.state.client, other, source, events]);
  });
});

describe('httpHandlerOptions', () => {
  it('maps the timeouts onto the handler, failing a request that outlives its timeout', () => {
    expect(httpHandlerOptions(S3_TIMEOUTS)).toEqual({
      connectionTimeout: 5_000,
      requestTimeout: 120_000,
      throwOnRequestTimeout: true,
      socketTimeout: 20_000,
    });
    expect(CONTROL_TIMEOUTS).toEqual({ connectionMs: 5_000, requestMs: 10_000, idleMs: 10_000 });
  });
});

describe("the SDK's warnings", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** The check NodeHttpHandler runs when a request has waited for a socket (a static of its class). */
  function socketCheckOf(client: { config: unknown }) {
    const { requestHandler } = client.config as { requestHandler: { constructor: unknown } };
    return (requestHandler.constructor as { checkSocketUsage: (...args: unknown[]) => number })
      .checkSocketUsage;
  }

  /** An agent whose one socket is busy with three requests queued: the handler's capacity warning. */
  const saturated = {
    maxSockets: 1,
    sockets: { 'sandbox:443:': [{}] },
    requests: { 'sandbox:443:': [{}, {}, {}] },
  };

  it("are structured lines of the sync's logger, from every client's HTTP handler, not console lines", async () => {
    // Prepare
    const console = vi.spyOn(globalThis.console, 'warn').mockImplementation(() => {});
    const logger = captureLogger();
    const deps = dependenciesFromEnvironment(logger, env);

    // Act: the handler's own check, as it runs when a request waits for a socket
    for (const client of [deps.destinationS3, deps.sts, deps.state.client]) {
      const { logger: handlerLogger } = (await handlerConfig(client)) as { logger: unknown };
      socketCheckOf(client)(saturated, 0, handlerLogger);
    }

    // Assert
    expect(console).not.toHaveBeenCalled();
    expect(logger.lines).toHaveLength(3);
    for (const line of logger.lines) {
      expect(line).toMatchObject({ level: 'warn', message: 'AWS SDK warning' });
      expect(line.fields.sdkMessage).toMatch(
        /socket usage at capacity=1 and 3 additional requests are enqueued/,
      );
    }
  });

  it("leaves out the SDK's per-command info and debug lines", async () => {
    const logger = captureLogger();
    const deps = dependenciesFromEnvironment(logger, env);
    const { logger: handlerLogger } = (await handlerConfig(deps.destinationS3)) as {
      logger: Record<'debug' | 'info' | 'error', (...content: unknown[]) => void>;
    };

    handlerLogger.debug('request', { input: {} });
    handlerLogger.info({ commandName: 'GetObjectCommand' });
    handlerLogger.error('handler failed:', 'socket hang up');

    expect(logger.lines).toEqual([
      { level: 'error', message: 'AWS SDK error', fields: { sdkMessage: 'handler failed: socket hang up' } },
    ]);
  });
});

describe('stsEndpointOf', () => {
  it('prefers AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL', () => {
    expect(stsEndpointOf({ AWS_ENDPOINT_URL_STS: 'http://sts:1', AWS_ENDPOINT_URL: 'http://all:2' })).toBe(
      'http://sts:1',
    );
    expect(stsEndpointOf({ AWS_ENDPOINT_URL_STS: '', AWS_ENDPOINT_URL: 'http://all:2' })).toBe(
      'http://all:2',
    );
  });

  it("names AWS's regional endpoint from AWS_REGION, then AWS_DEFAULT_REGION, else a placeholder", () => {
    expect(stsEndpointOf({ AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-east-1' })).toBe(
      'https://sts.eu-west-1.amazonaws.com',
    );
    expect(stsEndpointOf({ AWS_REGION: '', AWS_DEFAULT_REGION: 'us-east-1' })).toBe(
      'https://sts.us-east-1.amazonaws.com',
    );
    expect(stsEndpointOf({ AWS_ENDPOINT_URL: '' })).toBe('https://sts.<region>.amazonaws.com');
  });
});

describe('doctorDependenciesOf', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("checks with the sync's own clients, table and STS endpoint, as the function", async () => {
    // Arrange
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    const deps = dependenciesFromEnvironment(logger, env);
    const sourceS3 = vi.spyOn(deps, 'sourceS3');
    const credentials = { accessKeyId: 'AKIASOURCE', secretAccessKey: 'secret' };

    // Act
    const doctor = doctorDependenciesOf(deps, { AWS_ENDPOINT_URL_STS: 'http://sts.local:4566' });
    const source = doctor.sourceS3(credentials, 'us-west-2');

    // Assert
    expect(doctor).toMatchObject({
      sts: deps.sts,
      destinationS3: deps.destinationS3,
      dynamodb: deps.state.client,
      tableName: 'sync-state',
      stsEndpoint: 'http://sts.local:4566',
      callerIsFunction: true,
    });
    expect(sourceS3).toHaveBeenCalledWith(expect.any(Function), 'us-west-2');
    const provider = sourceS3.mock.calls[0]?.[0] as () => Promise<unknown>;
    expect(await provider()).toBe(credentials);
    expect(await source.config.region()).toBe('us-west-2');
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
import { type Stall, startStallingProxy } from '../support/stalling-proxy.js';
import { isolatedJob, putObject, readObject, useSandbox } from './helpers.js';

const { sandbox, producer, consumer } = useSandbox();
const source = sandbox.accountA.bucket;
const destination = sandbox.accountB.destinationBucket;

/** Short enough that a stalled attempt fails at once; the production values are in clients.ts. */
const FAST_TIMEOUTS = { connectionMs: 1000, requestMs: 3000, idleMs: 1000 };

let restore: (() => Promise<void>) | undefined;
afterEach(async () => {
  await restore?.();
  restore = undefined;
});

/** Points the sync's S3 clients at a proxy that stalls the first GET of each key in `stalls`. */
async function throughStallingProxy(stalls: Map<string, { kind: Stall; times: number }>) {
  const proxy = await startStallingProxy(sandbox.motoEndpoint, stalls);
  const before = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
  restore = async () => {
    process.env.AWS_ENDPOINT_URL_S3 = before;
    await proxy.close();
  };
  const deps = dependenciesFromEnvironment(consoleLogger('error'), process.env, { timeouts: FAST_TIMEOUTS });
  return { deps, proxy };
}

describe('a source connection that stops making progress', () => {
  it('fails the stalled attempt and copies the object on the retry', async () => {
    // Prepare: one object whose first GET sends half its declared body and stalls, one whose first GET
    // is never answered.
    const job = isolatedJob(sandbox, 'stall');
    const halfBody = `${job.source.prefix}half-body.bin`;
    const silent = `${job.source.prefix}no-response.bin`;
    const data = { [halfBody]: randomBytes(256 * 1024), [silent]: randomBytes(1000) };
    for (const [key, body] of Object.entries(data)) await putObject(producer, source, key, body);
    const { deps, proxy } = await throughStallingProxy(
      new Map([
        [halfBody, { kind: 'half-body', times: 1 }],
        [silent, { kind: 'no-response', times: 1 }],
      ]),
    );

    // Act
    const summary = await syncJob(deps, job, { objectRetry: { baseBackoffMs: 1 } });

    // Assess
    expect(proxy.stalled()).toBe(2);
    expect(summary).toMatchObject({ copied: 2, failed: 0 });
    for (const [key, body] of Object.entries(data)) {
      const copy = await readObject(
        consumer,
        destination,
        `${job.destination.prefix}${key.slice(job.source.prefix.length)}`,
      );
      expect(createHash('sha256').update(copy).digest('hex')).toBe(
        createHash('sha256').update(body).digest('hex'),
      );
    }
  }, 60_000);
});

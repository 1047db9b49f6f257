import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { dependenciesFromEnvironment } from '../../functions/core/clients.js';
import { syncJob } from '../../functions/core/run/sync-job.js';
import { type FaultRule, startFaultProxy } from '../../sandbox/fault-proxy.js';
import { consoleLogger } from '../../scripts/lib/console-logger.js';
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

/** Points the sync's S3 clients at the sandbox's fault proxy, with `rules`. */
async function throughFaultProxy(rules: FaultRule[]) {
  const proxy = await startFaultProxy(sandbox);
  proxy.setRules(rules);
  const before = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoints.s3;
  restore = async () => {
    process.env.AWS_ENDPOINT_URL_S3 = before;
    await proxy.stop();
  };
  const deps = dependenciesFromEnvironment(consoleLogger('error'), process.env, { timeouts: FAST_TIMEOUTS });
  return { deps, proxy };
}

describe('a source connection that stops making progress', () => {
  it('fails the stalled attempt and copies the object on the retry', async () => {
    // Prepare: one object whose first GET sends half its body (under the full Content-Length) and stalls,
    // one whose first GET is never answered. Preflight's one-byte read goes to a third key, `a.bin`.
    const job = isolatedJob(sandbox, 'stall');
    const halfBody = `${job.source.prefix}half-body.bin`;
    const silent = `${job.source.prefix}no-response.bin`;
    const data = {
      [`${job.source.prefix}a.bin`]: randomBytes(100),
      [halfBody]: randomBytes(256 * 1024),
      [silent]: randomBytes(1000),
    };
    for (const [key, body] of Object.entries(data)) await putObject(producer, source, key, body);
    const firstGetOf = (key: string): Omit<FaultRule, 'fault'> => ({
      service: 's3',
      operation: 'GetObject',
      key: `^${key.replaceAll('.', '\\.')}$`,
      count: 1,
    });
    const { deps, proxy } = await throughFaultProxy([
      { ...firstGetOf(halfBody), fault: { type: 'stall', atFraction: 0.5 } },
      { ...firstGetOf(silent), fault: { type: 'hang' } },
    ]);

    // Act
    const summary = await syncJob(deps, job, { objectRetry: { baseBackoffMs: 1 } });

    // Assess
    expect(proxy.counts().injected).toEqual({ stall: 1, hang: 1 });
    expect(summary).toMatchObject({ copied: 3, failed: 0 });
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

import { afterAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../sandbox/fault-proxy.js';
import { isolatedJob, lambdaContext, putObject, useSandbox } from './helpers.js';

const { sandbox, deps, producer } = useSandbox();

const proxies: FaultProxy[] = [];
const s3Endpoint = process.env.AWS_ENDPOINT_URL_S3;
afterAll(async () => {
  process.env.AWS_ENDPOINT_URL_S3 = s3Endpoint;
  for (const proxy of proxies) await proxy.stop();
});

describe('the Lambda handler at its deadline', () => {
  it('returns a partial run, with the cut copy deferred and the lease free, instead of rejecting', async () => {
    // Prepare: a 20-s function whose only object never arrives (its GET is never answered), so the copy
    // is still in flight when the deadline comes (preflight's one-byte read, the first GET, is answered).
    // The handler's clients are built at import, so S3 is pointed at the fault proxy before the handler
    // module is loaded.
    const job = isolatedJob(sandbox, 'handler-deadline');
    const key = `${job.source.prefix}never-arrives.bin`;
    await putObject(producer, sandbox.accountA.bucket, key, 'x'.repeat(1000));
    const proxy = await startFaultProxy(sandbox);
    proxy.setRules([
      {
        service: 's3',
        operation: 'GetObject',
        key: `^${key.replaceAll('.', '\\.')}$`,
        skip: 1,
        fault: { type: 'hang' },
      },
    ]);
    proxies.push(proxy);
    process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoints.s3;
    const { handler } = await import('../../functions/sync.js');

    // Act
    const result = await handler(job, lambdaContext(20_000));

    // Assess
    expect(result).toMatchObject({ jobId: job.jobId, status: 'partial', copied: 0, failed: 0, deferred: 1 });
    expect(proxy.counts().injected.hang).toBeGreaterThanOrEqual(1);
    const lease = await deps.state.readLease(job.jobId);
    expect(lease?.expiresAt ?? 0).toBeLessThanOrEqual(Date.now());
    const failures = [];
    for await (const entry of deps.state.ledger(job.jobId)) if (entry.failure) failures.push(entry.key);
    expect(failures).toEqual([]);
  }, 60_000);
});

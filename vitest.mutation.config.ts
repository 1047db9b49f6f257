import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant of functions/core (npm run test:mutation): every unit test,
 * and the integration tests written to fail when a guarantee breaks (fencing, deadline abort, refreshed
 * credentials, batch order, plan and failure decisions, verification of the bytes, multipart uploads across
 * runs, every StateStore method on DynamoDB Local), each a few seconds. Tests that run the core in a child
 * process (CLI, invoke, SIGKILL histories, benchmarks) cannot see a mutant; the 180-history property test
 * and the broad sync-job tests made a run of one core file take an hour on a 2-core machine.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/unit/setup.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: [
            'test/integration/fencing.test.ts',
            'test/integration/sync-guarantees.test.ts',
            'test/integration/sync-decisions.test.ts',
            'test/integration/run-reporting.test.ts',
            // Verification, aborts, the deadline and refreshed credentials: the guarantees issue 14 names.
            'test/integration/copy-integrity.test.ts',
            'test/integration/multipart-lifecycle.test.ts',
            'test/integration/run-lifecycle.test.ts',
            'test/integration/credentials-heal.test.ts',
            'test/integration/client-timeouts.test.ts',
            // Every StateStore method on DynamoDB Local: conditions, fences, key encodings, errors.
            'test/integration/state-store.test.ts',
            'test/integration/state-store-outage.test.ts',
            // The paths a run takes on unusual sources and roles, and the doctor: each about a second.
            'test/integration/archived-objects.test.ts',
            'test/integration/object-tags.test.ts',
            'test/integration/cross-region.test.ts',
            'test/integration/preflight.test.ts',
            'test/integration/diagnose-job.test.ts',
            'test/integration/doctor-handler.test.ts',
          ],
          globalSetup: ['test/integration/global-setup.ts'],
          setupFiles: ['test/integration/setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

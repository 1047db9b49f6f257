import { defineConfig } from 'vitest/config';

/**
 * The tests Stryker runs against each mutant of functions/core (npm run test:mutation): every unit test,
 * and the integration tests that run the core in this process. Tests that run it in a child process
 * (CLI, invoke, SIGKILL histories, benchmarks) cannot see a mutant, so they only cost time here.
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
            'test/integration/sync-job.test.ts',
            'test/integration/sync-guarantees.test.ts',
            'test/integration/fencing.test.ts',
            'test/integration/sync-properties.test.ts',
            'test/integration/ledger-cost.test.ts',
            'test/integration/diagnose-job.test.ts',
          ],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

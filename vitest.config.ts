import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start their own servers; two cores do not gain from more workers.
    maxWorkers: 2,
    pool: 'forks',
    globalSetup: ['test/harness/global-setup.ts'],
  },
});

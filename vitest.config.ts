import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // integration tests start servers and child processes; two cores here
    fileParallelism: true,
    maxWorkers: 2,
  },
});

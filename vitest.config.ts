import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // node-llama-cpp is a native addon: run test files in child processes, not worker threads.
    pool: 'forks',
    // Lets memory tests collect garbage before they measure.
    execArgv: ['--expose-gc'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Unit tests (no model) first, then integration tests on the real model.
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: { name: 'integration', include: ['test/integration/**/*.test.ts'], sequence: { groupOrder: 1 } },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          sequence: { groupOrder: 2 },
          testTimeout: 60_000,
        },
      },
    ],
  },
});

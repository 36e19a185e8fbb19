// Tests run real servers (Postgres, nats-server, the app on free ports), so timeouts are generous. Files run in three
// worker processes on CI's two cores: much of a file's time is waiting (on its servers, child processes, timeouts
// it is about), and a fresh run on a 2-core machine took 349 s of vitest with three against 436 s with two.
import { defineConfig } from 'vitest/config';
import LongestFirst from './test/harness/sequencer.js';

export default defineConfig({
  // graphql ships CJS and ESM side by side without an exports map: Node (and so yoga) loads the CJS build, while
  // vite would pick the ESM one for our code, and `instanceof GraphQLError` would then fail across the two.
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['test/**/*.test.ts', 'server/**/*.test.ts', 'plugins/**/*.test.ts', 'executors/**/*.test.ts', 'schema/**/*.test.ts'],
    exclude: ['node_modules/**', 'dashboards/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 3,
    // A worker imports the server once for all the files it runs (each file still starts its own servers, on its
    // own ports and directories): importing it afresh per file cost ~2.4 s of CPU each, ~3 minutes a run.
    isolate: false,
    // Longest files first (from test/durations.json on a fresh clone), so no worker ends the run alone.
    sequence: { sequencer: LongestFirst },
    // The adversarial reporter prints the security suite's size and its leaks (test/harness/adversarial-reporter.ts).
    reporters: ['default', './test/harness/adversarial-reporter.ts'],
  },
});

// The executor contract (plugins/testkit.ts) run for `local`: one Node module whose `mode` parameter picks the
// scenario, and a launch log the module appends to, so the suite can count processes started.
// Re-attach: a host's shutdown stops its local processes on purpose (local.test.ts), so `local` declares `rerun`:
// the restarted host starts the attempt again. Both hosts share one executor instance, as two hosts in one process
// would; within an instance, submit is idempotent per attempt (the contract's direct case checks it).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createLocalExecutor } from '../../executors/local/index';
import { type ContractScenario, executorContract } from '../../plugins/testkit';
import { buildModule, createScratch } from '../plugins/host-harness';

const helperJs = readFileSync(path.join(import.meta.dirname, '../../executors/local/progress.js'), 'utf8');

const moduleSource = `
import { appendFileSync } from 'node:fs';
import { output, progress } from './progress.js';
const { mode, launches } = JSON.parse(process.env.ATELIER_PARAMS);
appendFileSync(launches, process.pid + '\\n');
console.log('contract module started in mode ' + mode);
progress(0.1, 'started');
if (mode === 'succeed') {
  output('answer', 42);
  progress(1, 'done');
} else if (mode === 'fail') {
  console.error('failing on purpose');
  process.exit(3);
} else if (mode === 'killed') {
  process.kill(process.pid, 'SIGKILL'); // an unexpected SIGKILL (the OOM killer's signature): retryable
} else {
  setInterval(() => {}, 1_000);
}
`;

const modes: Record<ContractScenario, string> = {
  succeed: 'succeed',
  'fail-permanent': 'fail',
  'fail-retryable': 'killed',
  'run-long': 'long',
};

executorContract('local', async () => {
  const scratch = createScratch();
  const launches = path.join(scratch.root, 'launches.log');
  const { archive, digest } = await buildModule(scratch.root, 'contract', { 'main.mjs': moduleSource, 'progress.js': helperJs });
  // Unsandboxed (the operator's opt-out): the launch log the suite counts lies outside any sandbox. The sandboxed
  // lifecycle (cancel, grace, timeout, SIGKILL, idempotent submit) is local.test.ts's, isolation test/security's.
  const executor = createLocalExecutor({ graceMs: 300, isolation: 'none', warn: () => undefined });
  return {
    executor,
    artifacts: { [digest]: archive },
    scenario: (kind) => ({ module: { digest, entrypoint: 'main.mjs', runtime: 'node' }, parameters: { mode: modes[kind], launches } }),
    submissions: async () => (await readFile(launches, 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
    reattach: 'rerun',
    cleanup: async () => scratch.remove(),
  };
});

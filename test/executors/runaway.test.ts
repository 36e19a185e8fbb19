// Runaway modules against the real control plane with its embedded executor (one process: its RSS is the control
// plane's and the host's): one line of 256 MiB with no newline is cut with a note and leaves memory bounded (the peak
// RSS over a baseline, sampled, not a time), the API answering meanwhile; a cancelled module's children in its
// process group all end. Unsandboxed (ATELIER_MODULE_ISOLATION=none), so the platform's own
// process-group handling is what is tested, not bwrap's PID namespace.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { processAlive } from '../../plugins/process-group';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';

const MiB = 1024 * 1024;
let t: TestApp;
let dir: string;

beforeAll(async () => {
  process.env.ATELIER_MODULE_ISOLATION = 'none'; // read from the environment when the executors are made
  t = await startTestApp();
  await t.publishFixture('runaway');
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-runaway-'));
}, 120_000);
afterAll(async () => {
  delete process.env.ATELIER_MODULE_ISOLATION;
  await t?.stop();
  await rm(dir, { recursive: true, force: true });
});

const START = `mutation ($w: String!) { startRun(workflow: $w) { id } }`;
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { status logs(limit: 5) { line } } } }`;

it('cuts one huge line with no newline with a note, keeps memory bounded and answers meanwhile', async () => {
  await t.createWorkflow({ name: 'one-line', tasks: [{ name: 'wild', module: 'test/runaway', executor: 'local', parameters: { mode: 'line', mib: 256 } }] });
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  try {
    const { startRun } = await t.api.gql(START, { w: 'one-line' });
    let answered = 0;
    const run = await until(
      'the run to end',
      async () => {
        const { run } = await t.api.gql(RUN, { id: startRun.id });
        answered++;
        return ['SUCCEEDED', 'FAILED'].includes(run.status) && run;
      },
      60_000,
    );
    expect(run.status).toBe('SUCCEEDED');
    expect(answered).toBeGreaterThan(1); // the API answered while the module wrote
    expect(run.tasks[0].logs.at(-1).line).toMatch(/…\[line cut at \d+ bytes\]$/);
  } finally {
    clearInterval(sampler);
  }
  // Measured 44 MiB over the baseline for the 256 MiB line (session 24); holding the line would be more than it.
  expect((peak - baseline) / MiB).toBeLessThan(160);
}, 60_000);

it('ends the children of a cancelled module, one waiting on its own child too', async () => {
  const log = path.join(dir, 'children');
  await t.createWorkflow({ name: 'forks', tasks: [{ name: 'wild', module: 'test/runaway', executor: 'local', parameters: { mode: 'fork', log } }] });
  const { startRun } = await t.api.gql(START, { w: 'forks' });
  const pids = await until('the children to start', async () => {
    try {
      const found = readFileSync(log, 'utf8').trim().split('\n').map(Number);
      return found.length === 2 && found;
    } catch {
      return undefined;
    }
  });
  await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id: startRun.id });
  await until('the run to be cancelled', async () => (await t.api.gql(RUN, { id: startRun.id })).run.status === 'CANCELLED');
  await until('every child to end', async () => (await Promise.all(pids.map((pid) => processAlive(pid, null)))).every((a) => !a));
}, 60_000);

// Executors: the same one-node echo run N times cold (unpack the module, spawn node) and N times on a local hot
// cluster (a warm worker with the module already unpacked), each run alone so nothing queues. Prints the
// provisioning time each attempt recorded and the queued → finished time, and how much the hot cluster saves.
import { startTestApp, type TestApp } from '../test/harness/app';
import { percentile, type Row, round } from './lib';
import { runOnce } from './run-once';

const RUNS = 20;

async function timedRun(t: TestApp, workflow: string) {
  const task = await runOnce(t, workflow);
  return { provisioningMs: task.provisioningMs ?? NaN, totalMs: task.finishedAt!.getTime() - task.queuedAt!.getTime() };
}

export async function executorsBench(): Promise<Row[]> {
  // Embedded (PGlite, in-process bus and host): what differs between the two paths is only the executor's work.
  const t = await startTestApp();
  try {
    await t.publishFixture('echo');
    await t.app.services.hotClusters.create({ name: 'bench-warm', executor: 'local', spec: { workers: 2 } }, null);
    for (const state = { ready: false }; !state.ready; await new Promise((resolve) => setTimeout(resolve, 20))) {
      state.ready = (await t.app.services.hotClusters.list()).some((c) => c.state === 'READY');
    }
    await t.createWorkflow({ name: 'bench-cold', tasks: [{ name: 'a', module: 'test/echo', parameters: { steps: 1 } }] });
    await t.createWorkflow({ name: 'bench-hot', tasks: [{ name: 'a', module: 'test/echo', hotCluster: 'bench-warm', parameters: { steps: 1 } }] });
    await timedRun(t, 'bench-cold'); // warm the control plane's own paths (and the artifact) for both
    await timedRun(t, 'bench-hot');
    const cold: { provisioningMs: number; totalMs: number }[] = [];
    const hot: typeof cold = [];
    for (let i = 0; i < RUNS; i++) {
      cold.push(await timedRun(t, 'bench-cold'));
      hot.push(await timedRun(t, 'bench-hot'));
    }
    const p50 = (xs: typeof cold, key: 'provisioningMs' | 'totalMs') =>
      percentile(
        xs.map((x) => x[key]),
        50,
      );
    const saving = p50(cold, 'totalMs') - p50(hot, 'totalMs');
    return [
      {
        bench: 'executors',
        metric: `cold task: provisioning p50 (${RUNS} runs)`,
        value: p50(cold, 'provisioningMs'),
        unit: 'ms',
        note: 'unpack module + spawn node',
      },
      {
        bench: 'executors',
        metric: `hot cluster task: provisioning p50 (${RUNS} runs)`,
        value: p50(hot, 'provisioningMs'),
        unit: 'ms',
        note: 'warm worker, module already unpacked',
      },
      {
        bench: 'executors',
        metric: 'cold task: queued → finished p50',
        value: p50(cold, 'totalMs'),
        unit: 'ms',
        floor: p50(hot, 'totalMs'),
        ratio: p50(cold, 'totalMs') / p50(hot, 'totalMs'),
        note: 'floor: the same task on the hot cluster',
      },
      {
        bench: 'executors',
        metric: 'hot cluster saving per task (p50)',
        value: saving,
        unit: 'ms',
        note: `${round((saving / p50(cold, 'totalMs')) * 100, 0)}% of the cold time`,
      },
    ];
  } finally {
    await t.stop();
  }
}

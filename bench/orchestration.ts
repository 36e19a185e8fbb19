// Orchestration benchmarks on real Postgres + NATS: validating and planning fan-out/fan-in workflows of 1k, 5k
// and 10k no-op nodes (to show planning grows linearly), and completing the 10k-node run end to end with an
// executor process, printing tasks/s and the control plane's peak memory beside the foundation's floor.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packDirectory } from '../server/artifacts/archive';
import { planRun } from '../server/workflows/plan';
import { parseWorkflowSpec, resolveRunParameters } from '../server/workflows/spec';
import { startTestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { startExecutorProcess } from '../test/harness/executor-process';
import type { Infra } from './foundation';
import type { Row } from './lib';

const here = path.dirname(fileURLToPath(import.meta.url));

export const fanOutFanIn = (name: string, width: number) => ({
  name,
  tasks: [
    { name: 'start', module: 'bench/noop' },
    ...Array.from({ length: width }, (_, i) => ({ name: `n${i}`, module: 'bench/noop', dependsOn: ['start'] })),
    { name: 'join', module: 'bench/noop', dependsOn: Array.from({ length: width }, (_, i) => `n${i}`) },
  ],
});

export async function orchestrationBench(infra: Infra, floorTasksPerSecond?: number): Promise<Row[]> {
  const t = await startTestApp({ DATABASE_URL: infra.pgUrl, NATS_URL: infra.natsUrl });
  const executor = await startExecutorProcess(
    { NATS_URL: infra.natsUrl, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: `${t.dataDir}/executor` },
    ['noop'],
    ['--concurrency', '256'],
  );
  const rows: Row[] = [];
  try {
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(here, 'modules', 'noop')));
    if (published.errors) throw new Error(JSON.stringify(published.errors));

    // Validation (parse + graph checks) and planning (module resolution, parameter checks) at three sizes.
    const perNode: number[] = [];
    for (const width of [1000, 5000, 10000]) {
      const raw = JSON.stringify(fanOutFanIn(`plan-${width}`, width));
      const samples: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const spec = parseWorkflowSpec(raw);
        await t.app.database.db.transaction(async (tx) => {
          await planRun(tx, spec, resolveRunParameters(spec, {}), t.app.services.planDefaults);
        });
        samples.push(performance.now() - t0);
      }
      const best = Math.min(...samples);
      perNode.push((best / (width + 2)) * 1000);
      rows.push({
        bench: 'orchestration',
        metric: `validate + plan ${width + 2} nodes`,
        value: best,
        unit: 'ms',
        note: `${((best / (width + 2)) * 1000).toFixed(1)} µs/node`,
      });
    }
    rows.push({
      bench: 'orchestration',
      metric: 'planning cost per node, 10k vs 1k',
      value: perNode[2]! / perNode[0]!,
      unit: '×',
      note: 'linear growth keeps this near 1',
    });

    // The 10k-node run, end to end.
    const width = 10_000;
    await t.createWorkflow(fanOutFanIn('fan-10k', width));
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const t0 = performance.now();
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "fan-10k") { id } }`);
    let status = 'QUEUED';
    while (status === 'QUEUED' || status === 'RUNNING') {
      await new Promise((r) => setTimeout(r, 100));
      status = (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status;
    }
    const wall = performance.now() - t0;
    clearInterval(sampler);
    if (status !== 'SUCCEEDED') throw new Error(`the 10k-node run ended ${status}`);
    const tps = (width + 2) / (wall / 1000);
    rows.push({
      bench: 'orchestration',
      metric: `${width + 2}-node fan-out/fan-in, startRun → SUCCEEDED`,
      value: tps,
      unit: 'tasks/s',
      ...(floorTasksPerSecond ? { floor: floorTasksPerSecond, ratio: floorTasksPerSecond / tps } : {}),
      note: `wall ${Math.round(wall)} ms`,
    });
    rows.push({ bench: 'orchestration', metric: 'control-plane peak RSS during the 10k run', value: peakRss / 2 ** 20, unit: 'MiB' });
    return rows;
  } finally {
    await executor.stop();
    await t.stop();
  }
}

// The control plane's embedded executor host stopped (SIGTERM to `npm start`, a redeploy) while an attempt runs: like
// the standalone host (test/chaos/host-stop.test.ts) it lets the attempt finish and report within
// ATELIER_EXECUTOR_STOP_GRACE_SECONDS, instead of killing it and leaving it to be run again from the start.
import { expect, it } from 'vitest';
import { buildApp } from '../../server/app';
import { loadConfig } from '../../server/config';
import { startTestApp } from '../harness/app';
import { apiClient } from '../harness/client';
import { until } from '../triggers/world';

const RUN = `query ($id: ID!) { run(id: $id) { status tasks { status attempt } } }`;

it('lets the running attempt finish and report within the stop grace before the control plane exits', async () => {
  const env = { ATELIER_EXECUTOR_STOP_GRACE_SECONDS: '60', ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '600' };
  const t = await startTestApp(env);
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'nap', tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 1500 } }] });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "nap") { id } }`);
  await until('the task to run', async () => (await t.api.gql(RUN, { id: startRun.id })).run.tasks[0].status === 'RUNNING', 20_000);

  await t.app.stop();

  // The same data directory, started again: what the stopped control plane recorded, before anything reruns it.
  const again = await buildApp(loadConfig({ PORT: '0', ...t.databaseEnv, ATELIER_LOG_LEVEL: 'silent', ATELIER_EMBEDDED_EXECUTOR: 'false' }));
  try {
    const api = apiClient(await again.start(), again.adminToken);
    expect((await api.gql(RUN, { id: startRun.id })).run).toEqual({ status: 'SUCCEEDED', tasks: [{ status: 'SUCCEEDED', attempt: 1 }] });
  } finally {
    await again.stop();
    await t.stop();
  }
}, 60_000);

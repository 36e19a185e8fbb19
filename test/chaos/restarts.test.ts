// Chaos: SIGKILL the control plane several times during a 200-task run, and an executor host in the middle of a
// task, on real Postgres and nats-server. The run must complete with every task recorded once and none lost.

import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { and, eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { tasks } from '../../server/db/tables/runs';
import { taskEvents } from '../../server/db/tables/task-events';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let nats: NatsServer;
let cp: ControlPlaneProcess | undefined;
const executors: ExecutorProcess[] = [];
const token = 'atl_chaos-test-admin-token';
let env: Record<string, string>;

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-chaos-'));
  env = {
    PORT: String(await freePort()),
    DATABASE_URL: pg.url,
    NATS_URL: nats.url,
    ATELIER_DATA_DIR: dataDir,
    ATELIER_ADMIN_TOKEN: token,
    ATELIER_TICK_MS: '200',
    ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '3',
  };
});

afterAll(async () => {
  await cp?.kill();
  for (const e of executors) await e.stop('SIGKILL');
  await nats?.stop();
  await pg?.stop();
});

const startExecutor = async (pools: string[]) => {
  const e = await startExecutorProcess(
    { NATS_URL: nats.url, ATELIER_URL: cp!.url, ATELIER_TOKEN: token, ATELIER_DATA_DIR: `${env.ATELIER_DATA_DIR}/executor-${executors.length}` },
    pools,
    ['--concurrency', '16'],
  );
  executors.push(e);
  return e;
};

/** Retries while the control plane is down between a kill and its restart. */
async function gql(query: string, variables: Record<string, unknown> = {}) {
  for (let i = 0; ; i++) {
    try {
      return await apiClient(cp!.url, token).gql(query, variables);
    } catch (error) {
      if (i > 100) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

it('completes a 200-task run through control-plane SIGKILLs and an executor crash, recording each result once', async () => {
  cp = await startControlPlaneProcess(env);
  const api = apiClient(cp.url, token);
  for (const m of ['echo', 'sleep']) {
    const r = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', m)));
    expect(r.errors).toBeUndefined();
  }
  // 19 chains of 10 quick no-op tasks, and 10 local tasks long enough to be caught mid-run by the executor crash.
  const spec = {
    name: 'chaos',
    tasks: [
      ...Array.from({ length: 190 }, (_, i) => ({
        name: `c${Math.floor(i / 10)}_${i % 10}`,
        module: 'test/sleep',
        executor: 'noop',
        parameters: { ms: 0, sleepMs: 40 },
        ...(i % 10 ? { dependsOn: [`c${Math.floor(i / 10)}_${(i % 10) - 1}`] } : {}),
      })),
      ...Array.from({ length: 10 }, (_, i) => ({ name: `slow${i}`, module: 'test/sleep', parameters: { ms: 1500 }, retries: 0 })),
    ],
  };
  await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(spec) });
  const noop = await startExecutor(['noop']);
  const local = await startExecutor(['local']);
  const { startRun } = await api.gql(`mutation { startRun(workflow: "chaos", idempotencyKey: "chaos-1") { id } }`);

  // Kill the control plane three times while the run is under way, restarting it each time.
  for (let k = 0; k < 3; k++) {
    await new Promise((r) => setTimeout(r, 700 + k * 300));
    await cp.kill('SIGKILL');
    cp = await startControlPlaneProcess(env);
  }
  // And an executor host in the middle of its local tasks: they are failed over or redelivered.
  await local.stop('SIGKILL');
  await startExecutor(['local']);
  void noop;

  let run: any;
  for (let i = 0; i < 250; i++) {
    run = (await gql(`query ($id: ID!) { run(id: $id) { status message } }`, { id: startRun.id })).run;
    if (!['QUEUED', 'RUNNING'].includes(run.status)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const client = postgres(pg.url, { max: 2, onnotice: () => {} });
  if (run.status !== 'SUCCEEDED') {
    // Say where it stuck: which tasks are open, in which state, on which attempt.
    const open =
      await client`select node, status, attempt, kind, executor, heartbeat_at, queued_at from tasks where run_id = ${startRun.id} and status not in ('SUCCEEDED') order by node limit 20`;
    const outbox = await client`select kind, count(*)::int as n from outbox group by kind`;
    console.error(
      'open tasks:',
      JSON.stringify(open, null, 1),
      '\noutbox:',
      JSON.stringify(outbox),
      '\ncontrol plane:',
      cp!.output().slice(-3000),
      '\nexecutors:',
      executors.map((e) => e.output().slice(-1500)).join('\n---\n'),
    );
  }
  expect(run.status, run.message ?? '').toBe('SUCCEEDED');

  const db = drizzle(client);
  try {
    const rows = await db.select({ status: tasks.status, n: sql<number>`count(*)::int` }).from(tasks).where(eq(tasks.runId, startRun.id)).groupBy(tasks.status);
    expect(rows).toEqual([{ status: 'SUCCEEDED', n: 200 }]);
    const results = await db
      .select({ taskId: taskEvents.taskId, attempt: taskEvents.attempt, n: sql<number>`count(*)::int` })
      .from(taskEvents)
      .where(and(eq(taskEvents.runId, startRun.id), eq(taskEvents.kind, 'result')))
      .groupBy(taskEvents.taskId, taskEvents.attempt);
    expect(results.every((r) => r.n === 1)).toBe(true);
    expect(new Set(results.map((r) => r.taskId)).size).toBe(200);
    const again = await gql(`mutation { startRun(workflow: "chaos", idempotencyKey: "chaos-1") { id } }`);
    expect(again.startRun.id).toBe(startRun.id);
  } finally {
    await client.end();
  }
}, 180_000);

// Task batches and the outbox (protocol 3, issue 21): a control plane killed between committing a run's 40 task
// messages (one outbox row: one batch) and publishing them loses none; the restarted one's relay publishes the batch
// as the direct publish would have, under the same message id, and each task runs exactly once. Real Postgres and
// nats-server; the control plane is its own process (so it can die); the executor host runs in this process with a
// counting executor, so every execution is seen.
import type postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { apiClient } from '../harness/client';
import { type ControlPlaneProcess, crashAt, settledStatus, startControlPlaneProcess } from '../harness/control-plane-process';
import { type CrashWorld, startCrashWorld } from '../harness/crash-world';

let world: CrashWorld;
let sql: postgres.Sql;
let cp: ControlPlaneProcess | undefined;
let env: Record<string, string>;
const token = 'atl_wire-batch-crash-admin-token';
const TASKS = 40;
const executionsOf = (taskId: string) => world.executionsOf(taskId);

beforeAll(async () => {
  world = await startCrashWorld({
    name: 'wire-batch-crash',
    workflows: { 'batch-crash': Array.from({ length: TASKS }, (_, i) => ({ name: `t${i}`, parameters: { ms: 0 } })) },
    // Commits must survive the SIGKILL below, as they do in any real deployment.
    durableCommits: true,
    // A pool's batches are never larger than its smallest live host's capacity: room for the whole run in one.
    host: { maxConcurrency: 64 },
  });
  ({ sql, cp, env } = world);
  // Batches are sized by the hosts the control plane has heard from: wait for this one's heartbeat.
  for (const deadline = Date.now() + 60_000; !(await sql`select 1 from executor_hosts`).length; await new Promise((r) => setTimeout(r, 50)))
    if (Date.now() > deadline) throw new Error('the host’s heartbeat was not recorded in 60 s');
}, 180_000);

afterAll(async () => {
  await world?.stop(cp);
});

const waitForRun = (runId: string) => settledStatus(async () => (await sql<{ status: string }[]>`select status from runs where id = ${runId}`)[0]!.status);

it('a control plane killed between committing a batch and publishing it loses no task: the relay publishes the batch, each task runs once', async () => {
  await cp!.kill();
  // startRun's own transaction dispatches the tasks: the process dies right after its commit, before answering.
  await crashAt(env, 'tasks-committed', (url) =>
    apiClient(url, token)
      .gql(`mutation { startRun(workflow: "batch-crash") { id } }`)
      .catch(() => undefined),
  );
  const [run] = await sql<{ id: string }[]>`select r.id from runs r join workflows w on w.id = r.workflow_id where w.name = 'batch-crash'`;
  const tasks = await sql<{ id: string; status: string }[]>`select id, status from tasks where run_id = ${run!.id}`;
  expect(tasks).toHaveLength(TASKS);
  // Committed and not published: the forty wait in the outbox as one batch, and no host has seen them.
  expect(tasks.every((t) => t.status === 'QUEUED')).toBe(true);
  const rows = await sql<{ msg_id: string; n: number }[]>`select msg_id, json_array_length(payload->'tasks') as n from outbox where kind = 'task'`;
  expect(rows).toHaveLength(1);
  expect(rows[0]!.n).toBe(TASKS);
  expect(rows[0]!.msg_id).toMatch(new RegExp(`:1\\+${TASKS}$`));
  for (const t of tasks) expect(executionsOf(t.id)).toHaveLength(0);

  cp = await startControlPlaneProcess(env);
  expect(await waitForRun(run!.id)).toBe('SUCCEEDED');
  for (const t of tasks) expect(executionsOf(t.id)).toHaveLength(1);
  // The no-op executor runs no module code (Executor.tracking false): its attempts were let run without MLflow tokens.
  expect((await sql`select count(*)::int as n from tokens where task_id = any(${tasks.map((t) => t.id)}::uuid[])`)[0]!.n).toBe(0);
  expect(executionsOf(tasks[0]!.id)[0]!.tracking).toBeUndefined();
  for (let i = 0; i < 100 && (await sql`select count(*)::int as n from outbox`)[0]!.n > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect((await sql`select count(*)::int as n from outbox`)[0]!.n).toBe(0);
}, 300_000);

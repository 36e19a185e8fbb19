// Publishing right after the commit (issue 21), with the outbox as the crash fallback: a control plane killed
// between committing a run's task messages and publishing them loses nothing, and the restarted one's relay
// publishes them exactly once. And a short attempt's start, progress and result, folded into one bus message,
// are stored and applied by one transaction. Real Postgres and nats-server; the control plane is its own process
// (so it can die); the executor host runs in this process with a counting executor, so every execution is seen.
import type postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { apiClient } from '../harness/client';
import { type ControlPlaneProcess, crashAt, retryingGql, settledStatus, startControlPlaneProcess } from '../harness/control-plane-process';
import { type CrashWorld, startCrashWorld } from '../harness/crash-world';

let world: CrashWorld;
let sql: postgres.Sql;
let cp: ControlPlaneProcess | undefined;
let env: Record<string, string>;
const token = 'atl_wire-direct-publish-admin-token';
const executionsOf = (taskId: string) => world.executionsOf(taskId);

beforeAll(async () => {
  world = await startCrashWorld({
    name: 'wire-direct-publish',
    workflows: { 'wire-crash': [{ name: 'only', parameters: { ms: 0 } }], 'wire-fold': [{ name: 'only', parameters: { ms: 0 } }] },
    // Commits must survive the SIGKILL below, as they do in any real deployment.
    durableCommits: true,
  });
  ({ sql, cp, env } = world);
}, 180_000);

afterAll(async () => {
  await world?.stop(cp);
});

/** Retries while the control plane is down between a crash and its restart. */
const gql = retryingGql(() => cp!.url, token);

const waitForRun = (runId: string) => settledStatus(async () => (await sql<{ status: string }[]>`select status from runs where id = ${runId}`)[0]!.status);

it('a control plane killed between committing task messages and publishing them loses none: the relay publishes each once', async () => {
  await cp!.kill();
  // startRun's own transaction dispatches the task: the process dies right after its commit, before answering.
  await crashAt(env, 'tasks-committed', (url) =>
    apiClient(url, token)
      .gql(`mutation { startRun(workflow: "wire-crash") { id } }`)
      .catch(() => undefined),
  );
  const [run] = await sql<{ id: string }[]>`select r.id from runs r join workflows w on w.id = r.workflow_id where w.name = 'wire-crash'`;
  const [task] = await sql<{ id: string; status: string }[]>`select id, status from tasks where run_id = ${run!.id}`;
  // Committed and not published: the message waits in the outbox, and no host has seen it.
  expect(task!.status).toBe('QUEUED');
  expect((await sql`select count(*)::int as n from outbox where kind = 'task'`)[0]!.n).toBe(1);
  expect(executionsOf(task!.id)).toHaveLength(0);

  cp = await startControlPlaneProcess(env);
  expect(await waitForRun(run!.id)).toBe('SUCCEEDED');
  expect(executionsOf(task!.id)).toHaveLength(1);
  for (let i = 0; i < 100 && (await sql`select count(*)::int as n from outbox`)[0]!.n > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect((await sql`select count(*)::int as n from outbox`)[0]!.n).toBe(0);
}, 300_000);

it('a short attempt’s start, progress and result arrive as one message and are stored and applied by one transaction', async () => {
  const { startRun } = await gql(`mutation { startRun(workflow: "wire-fold") { id } }`);
  expect(await waitForRun(startRun.id)).toBe('SUCCEEDED');
  const [task] = await sql<{ id: string; xmin: string }[]>`select id, xmin::text from tasks where run_id = ${startRun.id}`;
  expect(executionsOf(task!.id)).toHaveLength(1);
  // Postgres stamps each row with the transaction that wrote it last: the events and the task's final update share it.
  const events = await sql<{ kind: string; xmin: string; progress: { fraction: number } | null; started: { seq: number } | null }[]>`
    select kind, xmin::text, payload->'progress' as progress, payload->'started' as started from task_events where task_id = ${task!.id} order by seq`;
  // The start and the progress report ride in their result's row; the run's feed still shows each as a step of its own.
  expect(events.map((e) => e.kind)).toEqual(['result']);
  expect(events[0]!.progress).toMatchObject({ fraction: expect.any(Number) });
  expect(events[0]!.started).toMatchObject({ seq: expect.any(Number) });
  // The task, never seen RUNNING on its own, started when its result says: its time less its duration (whole ms up).
  const [times] = await sql<{ started: Date; finished: Date; duration: number }[]>`
    select t.started_at as started, t.finished_at as finished, (e.payload->>'durationMs')::float8 as duration
    from tasks t join task_events e on e.task_id = t.id and e.kind = 'result' where t.id = ${task!.id}`;
  expect(times!.started.getTime()).toBe(times!.finished.getTime() - Math.ceil(times!.duration));
  const feed = await sql<{ kind: string; status: string | null }[]>`
    select x.e->>'kind' as kind, x.e->>'status' as status from run_events r, jsonb_array_elements(r.event->'events') with ordinality as x(e, i)
    where r.run_id = ${startRun.id} and x.e->>'taskId' = ${task!.id} order by r.seq, x.i`;
  expect(feed.map((e) => (e.status ? `${e.kind} ${e.status}` : e.kind))).toEqual([
    'task-status QUEUED',
    'task-progress',
    'task-status RUNNING',
    'task-status SUCCEEDED',
  ]);
  expect(new Set(events.map((e) => e.xmin)).size).toBe(1);
  expect(task!.xmin).toBe(events[0]!.xmin);
  // The run ended in that transaction too.
  const [run] = await sql<{ status: string; xmin: string }[]>`select status, xmin::text from runs where id = ${startRun.id}`;
  expect(run).toEqual({ status: 'SUCCEEDED', xmin: events[0]!.xmin });
}, 120_000);

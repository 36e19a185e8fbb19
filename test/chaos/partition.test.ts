// A network partition between the control plane and Postgres: a proxy that stops forwarding without closing
// anything, as a network dropping packets does (a restart, which resets connections, is test/db/postgres-down.test.ts).
// Before, every statement waited for an answer with no bound (the driver has no statement timeout; TCP retransmits for
// about 15 minutes), and so did every request: a GraphQL query hung until its client gave up. Now a probe unanswered
// for ATELIER_DATABASE_UNREACHABLE_SECONDS marks Postgres out of reach: requests are answered UNAVAILABLE (503), and once
// traffic flows again everything goes on, a run that was in flight through the partition included, executed once.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tasks } from '../../server/db/tables/runs';
import { taskEvents } from '../../server/db/tables/task-events';
import { taskExecutions } from '../../server/db/tables/task-executions';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy';

let pg: PostgresServer;
let proxy: TcpProxy;
let t: TestApp;

beforeAll(async () => {
  pg = await startPostgres({ migrated: true });
  const target = new URL(pg.url);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  t = await startTestApp({ DATABASE_URL: proxy.url(pg.url), ATELIER_DATABASE_UNREACHABLE_SECONDS: '2' });
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'through-partition', tasks: [{ name: 'nap', module: 'test/sleep', executor: 'noop', parameters: { ms: 0, sleepMs: 3000 } }] });
}, 120_000);
afterAll(async () => {
  proxy?.heal();
  await t?.stop();
  await proxy?.close();
  await pg?.stop();
});

/** A request's HTTP status and answer (the admin's client, as any other caller's). */
const post = async (query: string) => {
  const { status, ...body } = await t.api.raw(query);
  return { status, body: body as any };
};
const runStatus = async (id: string) => (await post(`{ run(id: "${id}") { status } }`)).body.data?.run?.status as string | undefined;

it('answers requests UNAVAILABLE while Postgres is out of reach, and goes on once it answers, a run in flight finished once', async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "through-partition") { id } }`);
  await until('the task to run', async () => (await runStatus(startRun.id)) === 'RUNNING');

  proxy.blackHole();
  const [query, mutation] = await Promise.all([
    post('{ experiments(first: 1) { edges { node { name } } } }'),
    post('mutation { createTeam(name: "cut-off") { id } }'),
  ]);
  for (const answer of [query, mutation]) {
    expect(answer.status, JSON.stringify(answer.body)).toBe(503);
    expect(answer.body.errors[0].extensions.code).toBe('UNAVAILABLE');
    expect(answer.body.errors[0].message).toContain('send the request again shortly');
  }

  proxy.heal();
  // The run's task slept through the partition; its result, sent meanwhile, is recorded once Postgres answers.
  await until('the run to succeed', async () => (await runStatus(startRun.id)) === 'SUCCEEDED', 60_000);
  const { db } = t.app.services;
  const [task] = await db.select().from(tasks).where(eq(tasks.runId, startRun.id));
  expect(task).toMatchObject({ status: 'SUCCEEDED', attempt: 1 });
  const results = await db
    .select()
    .from(taskEvents)
    .where(and(eq(taskEvents.taskId, task!.id), eq(taskEvents.kind, 'result')));
  expect(results).toHaveLength(1);
  expect((await db.select().from(taskExecutions).where(eq(taskExecutions.taskId, task!.id))).map((e) => e.count)).toEqual([1]);
  // And the same control plane writes again.
  expect((await post('mutation { createTeam(name: "cut-off") { id } }')).status).toBe(200);
}, 90_000);

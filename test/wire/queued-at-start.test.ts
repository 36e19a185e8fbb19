// startRun writes the tasks it dispatches at once straight as QUEUED, with their messages, in one statement (issue 21):
// no READY row version first, and so no READY event in the run's feed. Tasks a gate looks at (here the cache's
// reservation) are written READY and queued by an update, as before; tasks waiting on upstreams are written PENDING.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('uncached');
  await t.publishFixture('keyed');
});

afterAll(async () => {
  await t?.stop();
});

it('inserts the tasks a new run queues at once as QUEUED, with their messages and no READY step, and the others as before', async () => {
  // The `idle` pool has no host: what is queued stays QUEUED for the checks below.
  await t.createWorkflow({
    name: 'queued-at-start',
    tasks: [
      { name: 'a', module: 'test/uncached', pool: 'idle' },
      { name: 'b', module: 'test/uncached', pool: 'idle' },
      { name: 'cached', module: 'test/keyed', pool: 'idle', parameters: { x: 1 } },
      { name: 'after', module: 'test/uncached', pool: 'idle', dependsOn: ['a', 'b'] },
    ],
  });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "queued-at-start") { id } }`);
  const db = t.app.database.db;
  const tasks = await queryRows<{ id: string; node: string; status: string; attempt: number; queued_at: string | null }>(
    db,
    sql`select id, node, status, attempt, queued_at from tasks where run_id = ${startRun.id} order by node`,
  );
  expect(tasks.map((r) => [r.node, r.status, r.attempt])).toEqual([
    ['a', 'QUEUED', 1],
    ['after', 'PENDING', 0],
    ['b', 'QUEUED', 1],
    ['cached', 'QUEUED', 1],
  ]);
  expect(tasks.filter((r) => r.status === 'QUEUED' && !r.queued_at)).toEqual([]);

  const statuses = await queryRows<{ node: string; status: string; attempt: number }>(
    db,
    sql`select x.e->>'node' as node, x.e->>'status' as status, (x.e->>'attempt')::int as attempt
        from run_events r, jsonb_array_elements(r.event->'events') with ordinality as x(e, i)
        where r.run_id = ${startRun.id} and x.e->>'kind' = 'task-status' order by r.seq, x.i`,
  );
  const of = (node: string) => statuses.filter((e) => e.node === node).map((e) => `${e.status}@${e.attempt}`);
  expect(of('a')).toEqual(['QUEUED@1']);
  expect(of('b')).toEqual(['QUEUED@1']);
  // The cache gate reserved its key (an update of its row): written READY first, then queued.
  expect(of('cached')).toEqual(['READY@0', 'QUEUED@1']);
  expect(of('after')).toEqual([]);

  // What the API shows is what was stored.
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status tasks { node status } } }`, { id: startRun.id });
  expect(run.status).toBe('QUEUED');
  expect(Object.fromEntries(run.tasks.map((task: { node: string; status: string }) => [task.node, task.status]))).toEqual({
    a: 'QUEUED',
    after: 'PENDING',
    b: 'QUEUED',
    cached: 'QUEUED',
  });
});

// A wide run's tasks are written by startRun in parts of ENQUEUE_PART (server/orchestrator/dispatch.ts, issue 21), each
// statement sent as soon as its part is built, so Postgres writes one part while the control plane builds the next.
// Still one transaction: every task is queued once, with its feed event and its message, whatever part it fell in.
// Each statement of a transaction has its own command id, which Postgres keeps on the rows it inserted (`cmin`).
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TaskMessage } from '../../plugins/protocol';
import { queryRows } from '../../server/db/client';
import { ENQUEUE_PART } from '../../server/orchestrator/dispatch';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
const WIDTH = 2 * ENQUEUE_PART + 100;

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('uncached');
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

it('writes a wide run’s tasks in parts of ENQUEUE_PART, each task queued once with its event and its message', async () => {
  // The `idle` pool has no host: the tasks stay as startRun wrote them.
  await t.createWorkflow({
    name: 'wide',
    tasks: Array.from({ length: WIDTH }, (_, i) => ({ name: `t${String(i).padStart(4, '0')}`, module: 'test/uncached', pool: 'idle' })),
  });
  const messages: TaskMessage[] = [];
  const subscription = await t.app.bus.consumeTasks(
    'idle',
    async (delivery) => {
      messages.push(delivery.data);
      await delivery.ack();
    },
    { durable: 'enqueue-parts', maxInFlight: WIDTH },
  );
  try {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "wide") { id } }`);
    const db = t.app.database.db;
    const parts = await queryRows<{ cmin: string; n: number; statuses: string[] }>(
      db,
      sql`select cmin::text, count(*)::int as n, array_agg(distinct status || '@' || attempt) as statuses
          from tasks where run_id = ${startRun.id} group by cmin::text order by min(node)`,
    );
    expect(parts.map((p) => p.n)).toEqual([ENQUEUE_PART, ENQUEUE_PART, 100]);
    expect(parts.flatMap((p) => p.statuses)).toEqual(['QUEUED@1', 'QUEUED@1', 'QUEUED@1']);

    const queued = await queryRows<{ node: string }>(
      db,
      sql`select x.e->>'node' as node from run_events r, jsonb_array_elements(r.event->'events') as x(e)
          where r.run_id = ${startRun.id} and x.e->>'kind' = 'task-status' and x.e->>'status' = 'QUEUED'`,
    );
    expect(queued).toHaveLength(WIDTH);
    expect(new Set(queued.map((e) => e.node)).size).toBe(WIDTH);

    for (const deadline = Date.now() + 30_000; messages.length < WIDTH && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    expect(messages).toHaveLength(WIDTH);
    expect(new Set(messages.map((m) => m.taskId)).size).toBe(WIDTH);
  } finally {
    await subscription.stop();
  }
}, 120_000);

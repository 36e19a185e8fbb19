// Run priority end to end: in a pool of capacity 1, the queued tasks of a higher-priority run dispatch before those
// of a run started earlier at the default priority; one priority is first come first served; bad priorities change nothing.
import { inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs, tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import { until } from './until';

const START = `mutation ($w: String!, $p: JSON, $prio: Int) { startRun(workflow: $w, parameters: $p, priority: $prio) { id status priority } }`;

describe('run priority', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ATELIER_POOL_LIMITS: 'limited=1', ATELIER_POOLS: 'local,limited' });
    await t.publishFixture('sleep');
    await t.createWorkflow({ name: 'blocker', tasks: [{ name: 'hold', module: 'test/sleep', parameters: { ms: 60_000 }, pool: 'limited' }] });
    await t.createWorkflow({
      name: 'scored',
      tasks: ['a', 'b'].map((name) => ({ name, module: 'test/sleep', parameters: { ms: 20 }, pool: 'limited' })),
    });
  });
  afterAll(() => t?.stop());

  const db = () => t.app.database.db;
  const statusOf = async (runId: string) => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: runId })).run.status;

  it('refuses a priority out of bounds, and starts nothing', async () => {
    for (const prio of [11, -11]) {
      const result = await t.api.raw(START, { w: 'scored', prio });
      expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(result.errors?.[0]?.message).toContain('-10 to 10');
    }
    expect(await db().select().from(runs)).toHaveLength(0);
  });

  it('dispatches the queued tasks of a higher-priority run first when the pool is saturated, FIFO within a priority', async () => {
    const blocker = (await t.api.gql(START, { w: 'blocker' })).startRun;
    await until('the blocker to hold the only slot', async () => (await statusOf(blocker.id)) === 'RUNNING');
    const low1 = (await t.api.gql(START, { w: 'scored' })).startRun;
    const low2 = (await t.api.gql(START, { w: 'scored', prio: 0 })).startRun;
    const high = (await t.api.gql(START, { w: 'scored', prio: 5 })).startRun;
    expect([low1.priority, high.priority]).toEqual([0, 5]);
    const runIds = [low1.id, low2.id, high.id];
    await until('all six tasks to wait READY', async () => {
      const rows = await db().select().from(tasks).where(inArray(tasks.runId, runIds));
      return rows.length === 6 && rows.every((r) => r.status === 'READY');
    });
    await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: blocker.id });
    await until('the three runs to end', async () => {
      for (const id of runIds) if ((await statusOf(id)) !== 'SUCCEEDED') return false;
      return true;
    });
    const rows = await db().select().from(tasks).where(inArray(tasks.runId, runIds));
    const order = rows.sort((x, y) => x.startedAt!.getTime() - y.startedAt!.getTime()).map((r) => r.runId);
    // The pool ran one at a time: the high run's two tasks, then the first low run's, then the second's.
    expect(order).toEqual([high.id, high.id, low1.id, low1.id, low2.id, low2.id]);
  });
});

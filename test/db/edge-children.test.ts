// Which tasks a success counts into, when the recorder reads a result's children by their keys (run-edges.ts,
// recorded-tasks.ts): a fan-out, joins, a task waiting on two branches, a fan-out wider than the read returns whole, a
// map, and a rerun whose copied tasks were counted at its start. Each success is recorded by the control plane that
// started the run (the one that knows its edges), one at a time, and after each the run's tasks are checked against
// the spec: a task waits (PENDING) exactly while one of its upstreams has not succeeded, having counted those that have.
import { eq } from 'drizzle-orm';
import { expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { runs, type Task, tasks } from '../../server/db/tables/runs';
import { countedApp } from '../harness/counted-app';

const sleep = { module: 'test/sleep', parameters: { ms: 1 } };
const wide = Array.from({ length: 9 }, (_, i) => ({ name: `x${i}`, ...sleep, dependsOn: ['w'] }));
const spec = {
  name: 'edges',
  tasks: [
    { name: 'a', ...sleep },
    { name: 'b', ...sleep, dependsOn: ['a'] },
    { name: 'c', ...sleep, dependsOn: ['a'] },
    { name: 'g', ...sleep, dependsOn: ['a'] },
    { name: 'd', ...sleep, dependsOn: ['b', 'c'] },
    { name: 'e', ...sleep },
    { name: 'f', ...sleep, dependsOn: ['e', 'd'] },
    { name: 'm', module: 'test/sleep', map: { over: [1, 2], as: 'ms' }, dependsOn: ['g'] },
    { name: 'n', ...sleep, dependsOn: ['m', 'c'] },
    { name: 'w', ...sleep },
    ...wide,
    { name: 'y', ...sleep, dependsOn: wide.map((x) => x.name) },
  ],
};
const upstreams = new Map(spec.tasks.map((s) => [s.name, s.dependsOn ?? []]));

const w = countedApp({ workflows: [spec] });

const tasksOf = (runId: string) => w.db.select().from(tasks).where(eq(tasks.runId, runId)).orderBy(tasks.node);

/** Each spec node's task as the spec says it should be now: waiting with its succeeded upstreams counted, or not. */
function expected(rows: Task[]) {
  const status = new Map(rows.map((r) => [r.node, r.status]));
  return rows
    .filter((r) => !r.mapParent)
    .map((r) => {
      const ups = upstreams.get(r.node)!;
      const waits = ups.some((u) => status.get(u) !== 'SUCCEEDED');
      return { node: r.node, waits, counted: waits ? ups.filter((u) => status.get(u) === 'SUCCEEDED').length : 'any' };
    });
}
const actual = (rows: Task[]) =>
  rows.filter((r) => !r.mapParent).map((r) => ({ node: r.node, waits: r.status === 'PENDING', counted: r.status === 'PENDING' ? r.upstreamDone : 'any' }));

/** Records the success of the run's queued tasks one at a time (`pick` chooses which), checking the run after each. */
async function succeedAll(runId: string, pick: (queued: Task[]) => Task): Promise<string[]> {
  const order: string[] = [];
  for (;;) {
    const rows = await tasksOf(runId);
    expect(actual(rows)).toEqual(expected(rows));
    const queued = rows.filter((r) => r.status === 'QUEUED');
    if (!queued.length) break;
    const task = pick(queued);
    order.push(task.node);
    const base = { taskId: task.id, runId, attempt: task.attempt, host: 'test', at: new Date().toISOString() };
    const bundle: ExecutorEvent[] = [
      { ...base, kind: 'started', seq: 1, handle: null },
      { ...base, kind: 'result', seq: 2, durationMs: 1, outcome: { state: 'SUCCEEDED', outputs: { out: task.node } } },
    ];
    await w.t.app.services.orchestrator.recordEvents(bundle);
  }
  const [run] = await w.db.select().from(runs).where(eq(runs.id, runId));
  expect(run!.status).toBe('SUCCEEDED');
  expect((await tasksOf(runId)).every((r) => r.status === 'SUCCEEDED')).toBe(true);
  return order;
}

it('counts each success into exactly the tasks that wait on it, in any order, and in a rerun with copied tasks', async () => {
  // First in, first out; then last in, first out: the joins see their upstreams end in both orders.
  for (const pick of [(q: Task[]) => q[0]!, (q: Task[]) => q.at(-1)!]) {
    const runId = (await w.alice.gql(`mutation { startRun(workflow: "edges") { id } }`)).startRun.id as string;
    const order = await succeedAll(runId, pick);
    // Every node once but the map, which its two items end.
    expect(order).toHaveLength(spec.tasks.length - 1 + 2);
  }
  const source = (await w.alice.gql(`mutation { startRun(workflow: "edges") { id } }`)).startRun.id as string;
  await succeedAll(source, (q) => q[0]!);
  // b and what waits on it (d, then f) execute again; the rest is copied, counted into d and f at the rerun's start.
  const rerun = (await w.alice.gql(`mutation ($id: ID!) { rerunRun(id: $id, from: NODES, nodes: ["b"]) { id } }`, { id: source })).rerunRun.id as string;
  const copied = (await tasksOf(rerun)).filter((r) => r.reusedFromTaskId).map((r) => r.node);
  expect(copied).toContain('c');
  expect(copied).not.toContain('d');
  expect(await succeedAll(rerun, (q) => q[0]!)).toEqual(['b', 'd', 'f']);
}, 120_000);

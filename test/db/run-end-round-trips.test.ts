// A one-task run's recording (its start, progress and result in one bundle) in two round trips (issue 21): BEGIN, the
// lock, the read and the early insert; then the success, the run's RUNNING, its end, its webhooks, signal and events and
// the COMMIT, sent together. The run's end is sent before Postgres has answered anything after the read: guarded in SQL
// (settle.ts endBehind), its webhooks, signal and run-status event written only if its row shows that end. Real
// Postgres, a recorder on a connection of its own whose statements and Postgres' answers are counted on the socket.
// A chain edge's recording too (issue 21, session 31): the child's enqueue sent behind the counting statement, guarded
// in SQL on that statement having made the child READY (edge-dispatch.ts).
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { queryRows } from '../../server/db/client';
import { runs, tasks } from '../../server/db/tables/runs';
import { appendRunEvents } from '../../server/events/run-event-log';
import type { OrchestratorContext, Step } from '../../server/orchestrator/context';
import { queueAndWrite } from '../../server/orchestrator/dispatch';
import { emitRunEnded } from '../../server/webhooks/run-events';
import { countedApp, oneTask } from '../harness/counted-app';
import { countedOrchestrator } from '../harness/counted-orchestrator';
import { roundTrips } from '../harness/counting-pool';
import { type Receiver, startReceiver } from '../webhooks/receiver';

const sleep = { module: 'test/sleep', parameters: { ms: 1 } };
const w = countedApp({
  workflows: [
    oneTask(),
    {
      name: 'two-step',
      tasks: [
        { name: 'a', ...sleep },
        { name: 'b', ...sleep, dependsOn: ['a'] },
      ],
    },
    // Two children of one parent, joined by a third: a fan-out and a join, each edge dispatched behind the counting statement.
    {
      name: 'diamond',
      tasks: [
        { name: 'a', ...sleep },
        { name: 'b', ...sleep, dependsOn: ['a'] },
        { name: 'c', ...sleep, dependsOn: ['a'] },
        { name: 'd', ...sleep, dependsOn: ['b', 'c'] },
      ],
    },
  ],
  env: { ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*' },
});
let receiver: Receiver;

// A team's webhook for its runs' ends: every end of its runs writes a delivery.
beforeAll(async () => {
  receiver = await startReceiver();
  await w.alice.gql(`mutation ($u: String!) { createWebhook(team: "ml", url: $u, events: ["run.*"]) { secret } }`, { u: `${receiver.url}/runs` });
});

afterAll(() => receiver?.close());

/** A run of `one-task` started, and its one task's bundle as a host folds it: started, progress, result. */
async function oneTaskRun(workflow = 'one-task'): Promise<{ runId: string; bundle: ExecutorEvent[] }> {
  const runId = (await w.alice.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow })).startRun.id as string;
  const [task] = await w.db
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.status, 'QUEUED')));
  const base = { taskId: task!.id, runId, attempt: task!.attempt, host: 'test', at: new Date().toISOString() };
  return {
    runId,
    bundle: [
      { ...base, kind: 'started', seq: 1, handle: null },
      { ...base, kind: 'progress', seq: 2, fraction: 0.5, message: 'half way' },
      { ...base, kind: 'result', seq: 3, durationMs: 1, outcome: { state: 'SUCCEEDED', outputs: { out: 1 } } },
    ],
  };
}

/** The bundle of the run's QUEUED task `node`, as oneTaskRun makes its task's. */
async function bundleOf(runId: string, node: string): Promise<ExecutorEvent[]> {
  const [task] = await w.db
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.node, node), eq(tasks.status, 'QUEUED')));
  const base = { taskId: task!.id, runId, attempt: task!.attempt, host: 'test', at: new Date().toISOString() };
  return [
    { ...base, kind: 'started', seq: 1, handle: null },
    { ...base, kind: 'result', seq: 2, durationMs: 1, outcome: { state: 'SUCCEEDED', outputs: { out: node } } },
  ];
}

/**
 * What form the recorder's read of a result's task took: its children by key (one, several, none) or a scan of the
 * run's PENDING tasks (recorded-tasks.ts).
 */
function readForm(): string {
  const read = w.counted.seen.sent.find((s) => s.statement.includes('others_ended'))?.statement ?? '';
  return /d\.node = \$\d+::text /.test(read) ? 'key' : /d\.node = any\(/.test(read) ? 'keys' : / and false offset 0\)/.test(read) ? 'leaf' : 'scan';
}

const deliveriesOf = async (runId: string) =>
  (await queryRows<{ event_type: string }>(w.db, sql`select event_type from webhook_deliveries where subject = ${`run:${runId}`}`)).map((r) => r.event_type);

it("records a one-task run's bundle in two round trips, the run's end, its event and its webhooks' lookup among them", async () => {
  // Once first: a statement kept prepared is described on its first use on a connection, a round trip of its own.
  const warm = await oneTaskRun();
  await w.counted.orchestrator.recordEvents(warm.bundle);
  const { runId, bundle } = await oneTaskRun();
  const { seen } = w.counted;
  seen.sent.length = 0;
  await w.counted.orchestrator.recordEvents(bundle);
  expect(roundTrips(seen.sent)).toBe(2);
  const [run] = await w.db.select().from(runs).where(eq(runs.id, runId));
  expect(run).toMatchObject({ status: 'SUCCEEDED', message: null });
  expect(run!.finishedAt).not.toBeNull();
  expect(await deliveriesOf(runId)).toEqual(['run.succeeded']);
  // The run's end is its last event, numbered after the task's, and stored numbers have no holes.
  const events = await w.t.app.services.feed.since(runId, 0);
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  expect(events.at(-1)).toMatchObject({ kind: 'run-status', status: 'SUCCEEDED' });
  expect(events).toContainEqual(expect.objectContaining({ kind: 'task-status', status: 'SUCCEEDED' }));
}, 60_000);

it('records the bundle of a one-task run this control plane started in one round trip: its reads guessed behind a guard', async () => {
  for (const counting of [false, true]) {
    const run = await w.counted.orchestrator.startRun({ workflow: 'one-task', trigger: 'API' }, null);
    const bundle = await bundleOf(run.id, 'work');
    const { seen } = w.counted;
    seen.sent.length = 0;
    await w.counted.orchestrator.recordEvents(bundle);
    if (counting) expect(roundTrips(seen.sent)).toBe(1);
    // Guessed, and the guess held: one transaction, its guard among its statements.
    expect(seen.sent.filter((s) => s.statement.startsWith('begin')).length).toBe(1);
    // The guard after the run's lock, so it reads under it.
    const lock = seen.sent.findIndex((s) => s.statement.includes('from "runs"') && s.statement.includes('for update'));
    expect(lock).toBeGreaterThan(-1);
    expect(seen.sent.findIndex((s) => s.statement.includes('atelier_expect'))).toBeGreaterThan(lock);
    const [row] = await w.db.select().from(runs).where(eq(runs.id, run.id));
    expect(row).toMatchObject({ status: 'SUCCEEDED', message: null });
    expect(row!.startedAt).not.toBeNull();
    expect(row!.finishedAt).not.toBeNull();
    const [task] = await w.db.select().from(tasks).where(eq(tasks.runId, run.id));
    expect(task).toMatchObject({ status: 'SUCCEEDED', outputs: { out: 'work' }, progress: 1 });
    const events = await w.t.app.services.feed.since(run.id, 0);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((e) => `${e.kind}:${'status' in e ? e.status : ''}`)).toEqual([
      'run-status:QUEUED',
      'task-status:QUEUED',
      'task-status:RUNNING',
      'task-status:SUCCEEDED',
      'run-status:RUNNING',
      'run-status:SUCCEEDED',
    ]);
    expect(await deliveriesOf(run.id)).toEqual(['run.succeeded']);
  }
}, 60_000);

it("records a chain edge (a parent's result, its child dispatched) in two round trips: the child's enqueue sent behind the counting statement", async () => {
  const warm = await oneTaskRun('two-step');
  await w.counted.orchestrator.recordEvents(warm.bundle);
  const { runId, bundle } = await oneTaskRun('two-step');
  const { seen } = w.counted;
  seen.sent.length = 0;
  await w.counted.orchestrator.recordEvents(bundle);
  expect(roundTrips(seen.sent)).toBe(2);
  const rows = await w.db.select({ node: tasks.node, status: tasks.status }).from(tasks).where(eq(tasks.runId, runId)).orderBy(tasks.node);
  expect(rows).toEqual([
    { node: 'a', status: 'SUCCEEDED' },
    { node: 'b', status: 'QUEUED' },
  ]);
}, 60_000);

it("records a chain edge in two round trips when the pool's batch size is older than its freshness: read again after the commit", async () => {
  let clock = Date.now();
  const late = countedOrchestrator(w.pg.url, { now: () => new Date(clock) });
  try {
    // The first edge reads the pool's batch size (a pool never read is read in the transaction).
    await late.orchestrator.recordEvents((await oneTaskRun('two-step')).bundle);
    clock += 6_000;
    const { bundle } = await oneTaskRun('two-step');
    late.seen.sent.length = 0;
    await late.orchestrator.recordEvents(bundle);
    expect(roundTrips(late.seen.sent)).toBe(2);
    // The held size served, and it is read again once the recording has committed, outside its transaction.
    const commit = late.seen.sent.findIndex((s) => s.statement.startsWith('commit'));
    await vi.waitFor(() => expect(late.seen.sent.findIndex((s) => s.statement.includes('join executor_hosts h'))).toBeGreaterThan(commit));
  } finally {
    await late.end();
  }
}, 60_000);

it("stores a run's end event only if the run's row shows that end, numbering the rest as before", async () => {
  const { runId } = await oneTaskRun();
  const at = new Date().toISOString();
  const note = { kind: 'run-status', runId, status: 'RUNNING', message: null, at } as const;
  const end = { kind: 'run-status', runId, status: 'SUCCEEDED', message: null, at } as const;
  const before = (await queryRows<{ event_seq: string }>(w.db, sql`select event_seq from runs where id = ${runId}`))[0]!.event_seq;
  // The run is not ended: the end's event is left out, and the number moves by the other event alone.
  const left = await w.db.transaction((tx) => appendRunEvents(tx, [note, end], new Set([end])));
  expect(left.map((e) => [e.seq, e.kind, 'status' in e && e.status])).toEqual([[Number(before) + 1, 'run-status', 'RUNNING']]);
  // Ended as the event says: stored, numbered after the others.
  await w.db
    .update(runs)
    .set({ status: 'SUCCEEDED', finishedAt: new Date(at) })
    .where(eq(runs.id, runId));
  const kept = await w.db.transaction((tx) => appendRunEvents(tx, [note, end], new Set([end])));
  expect(kept.map((e) => [e.seq, 'status' in e && e.status])).toEqual([
    [Number(before) + 2, 'RUNNING'],
    [Number(before) + 3, 'SUCCEEDED'],
  ]);
  const stored = await w.t.app.services.feed.since(runId, Number(before));
  expect(stored.map((e) => [e.seq, 'status' in e && e.status])).toEqual([
    [Number(before) + 1, 'RUNNING'],
    [Number(before) + 2, 'RUNNING'],
    [Number(before) + 3, 'SUCCEEDED'],
  ]);
}, 60_000);

it("writes a run's end's webhook delivery only if the run's row shows that end", async () => {
  const { runId } = await oneTaskRun();
  const [run] = await w.db.select().from(runs).where(eq(runs.id, runId));
  const at = new Date();
  // Still queued: nothing is written.
  expect(await w.db.transaction((tx) => emitRunEnded(tx, run!, 'SUCCEEDED', null, at))).toBe(false);
  expect(await deliveriesOf(runId)).toEqual([]);
  // Ended as it says: written.
  await w.db.update(runs).set({ status: 'SUCCEEDED', finishedAt: at }).where(eq(runs.id, runId));
  expect(await w.db.transaction((tx) => emitRunEnded(tx, run!, 'SUCCEEDED', null, at))).toBe(true);
  expect(await deliveriesOf(runId)).toEqual(['run.succeeded']);
}, 60_000);

it("queues a chain edge's child sent behind the counting statement only if that made it READY, and writes its outbox row only then", async () => {
  const { runId } = await oneTaskRun('two-step');
  const [child] = await w.db
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.node, 'b')));
  const msgId = `guard-${child!.id}`;
  const row = { pool: child!.pool, msgId, payload: { taskId: child!.id } as never };
  /** The enqueue as edge-dispatch.ts sends it (`ifReady`), in a transaction of its own. */
  const enqueueIfReady = () =>
    w.db.transaction(async (tx) => {
      const step = { at: new Date(), deletedPublished: [], writes: [] as Promise<unknown>[] } as unknown as Step;
      queueAndWrite({ ctx: {} as OrchestratorContext, tx, step }, runId, [child!.id], [], [row], () => {}, true);
      for (const write of step.writes) await write;
    });
  const state = async () => ({
    status: (await w.db.select({ status: tasks.status }).from(tasks).where(eq(tasks.id, child!.id)))[0]!.status,
    outbox: (await queryRows<{ n: number }>(w.db, sql`select count(*)::int as n from outbox where msg_id = ${msgId}`))[0]!.n,
  });
  // Still PENDING (its parent's success not counted): nothing is written.
  await enqueueIfReady();
  expect(await state()).toEqual({ status: 'PENDING', outbox: 0 });
  // READY, as the counting statement leaves it: queued, with its outbox row.
  await w.db.update(tasks).set({ status: 'READY' }).where(eq(tasks.id, child!.id));
  await enqueueIfReady();
  expect(await state()).toEqual({ status: 'QUEUED', outbox: 1 });
}, 60_000);

it("records a fan-out's and a join's edges in two round trips each, the join's child queued once its last parent succeeded", async () => {
  const statuses = async (runId: string) =>
    Object.fromEntries(
      (await w.db.select({ node: tasks.node, status: tasks.status, done: tasks.upstreamDone }).from(tasks).where(eq(tasks.runId, runId))).map((r) => [
        r.node,
        `${r.status}:${r.done}`,
      ]),
    );
  // Twice: the first run's statements are described on first use (a round trip of their own); the second is counted.
  for (const counting of [false, true]) {
    const { runId, bundle } = await oneTaskRun('diamond');
    const trips: number[] = [];
    const record = async (events: ExecutorEvent[]) => {
      w.counted.seen.sent.length = 0;
      await w.counted.orchestrator.recordEvents(events);
      trips.push(roundTrips(w.counted.seen.sent));
    };
    await record(bundle);
    expect(await statuses(runId)).toEqual({ a: 'SUCCEEDED:0', b: 'QUEUED:1', c: 'QUEUED:1', d: 'PENDING:0' });
    await record(await bundleOf(runId, 'b'));
    expect(await statuses(runId)).toEqual({ a: 'SUCCEEDED:0', b: 'SUCCEEDED:1', c: 'QUEUED:1', d: 'PENDING:1' });
    await record(await bundleOf(runId, 'c'));
    expect(await statuses(runId)).toEqual({ a: 'SUCCEEDED:0', b: 'SUCCEEDED:1', c: 'SUCCEEDED:1', d: 'QUEUED:2' });
    // The join's message carries both its upstreams' outputs: c's from its success, b's as the read under the lock gave it.
    const [message] = await queryRows<{ inputs: unknown }>(
      w.db,
      sql`select payload->'inputs' as inputs from outbox where payload->>'runId' = ${runId} and payload->>'node' = 'd'`,
    );
    expect(message?.inputs).toEqual({ b: { out: 'b' }, c: { out: 'c' } });
    await record(await bundleOf(runId, 'd'));
    const [run] = await w.db.select().from(runs).where(eq(runs.id, runId));
    expect(run!.status).toBe('SUCCEEDED');
    // Every task's story in the feed, in order: the children READY, then QUEUED, each once.
    const events = await w.t.app.services.feed.since(runId, 0);
    const d = events.filter((e) => e.kind === 'task-status' && 'node' in e && e.node === 'd').map((e) => 'status' in e && e.status);
    expect(d).toEqual(['READY', 'QUEUED', 'RUNNING', 'SUCCEEDED']);
    if (counting) expect(trips).toEqual([2, 2, 2, 2]);
  }
}, 60_000);

it("reads an edge's children by their keys when this control plane started the run, in the same two round trips", async () => {
  for (const counting of [false, true]) {
    // Started by the counted orchestrator itself: it knows the run's edges (run-edges.ts).
    const run = await w.counted.orchestrator.startRun({ workflow: 'diamond', trigger: 'API' }, null);
    const forms: string[] = [];
    const trips: number[] = [];
    for (const node of ['a', 'b', 'c', 'd']) {
      w.counted.seen.sent.length = 0;
      await w.counted.orchestrator.recordEvents(await bundleOf(run.id, node));
      forms.push(readForm());
      trips.push(roundTrips(w.counted.seen.sent));
    }
    expect(forms).toEqual(['keys', 'key', 'key', 'leaf']);
    if (counting) expect(trips).toEqual([2, 2, 2, 2]);
    const rows = await w.db
      .select({ node: tasks.node, status: tasks.status, done: tasks.upstreamDone })
      .from(tasks)
      .where(eq(tasks.runId, run.id))
      .orderBy(tasks.node);
    expect(rows.map((r) => `${r.node}:${r.status}:${r.done}`)).toEqual(['a:SUCCEEDED:0', 'b:SUCCEEDED:1', 'c:SUCCEEDED:1', 'd:SUCCEEDED:2']);
    expect((await w.db.select().from(runs).where(eq(runs.id, run.id)))[0]!.status).toBe('SUCCEEDED');
  }
  // A run this control plane did not start (the app's did): the scan, as before.
  const { runId, bundle } = await oneTaskRun('two-step');
  w.counted.seen.sent.length = 0;
  await w.counted.orchestrator.recordEvents(bundle);
  expect(readForm()).toBe('scan');
  expect(roundTrips(w.counted.seen.sent)).toBe(2);
  const [b] = await w.db
    .select({ status: tasks.status })
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.node, 'b')));
  expect(b!.status).toBe('QUEUED');
}, 60_000);

it('reads the children by key after the first edge of a run another control plane started (another replica)', async () => {
  // Two runs: each is learnt on its own.
  for (let i = 0; i < 2; i++) {
    // Started by the app's control plane: the counted one (a replica beside it) knows nothing of the run's edges.
    const runId = (await w.alice.gql(`mutation { startRun(workflow: "diamond") { id } }`)).startRun.id as string;
    const forms: string[] = [];
    const trips: number[] = [];
    for (const node of ['a', 'b', 'c', 'd']) {
      const bundle = await bundleOf(runId, node);
      w.counted.seen.sent.length = 0;
      await w.counted.orchestrator.recordEvents(bundle);
      forms.push(readForm());
      trips.push(roundTrips(w.counted.seen.sent));
      // Read on a connection of its own after the commit (here the pool's one, behind it): what the next edge reads by.
      await w.counted.runEdges.learnt(runId);
    }
    // The first edge scans and has the run's tasks read behind its commit; each edge after it reads its children by key.
    expect(forms).toEqual(['scan', 'key', 'key', 'leaf']);
    // Two round trips each, whichever form (a pool's batch size gone stale is read again behind the commit, not in it).
    expect(trips).toEqual([2, 2, 2, 2]);
    const rows = await w.db
      .select({ node: tasks.node, status: tasks.status, done: tasks.upstreamDone })
      .from(tasks)
      .where(eq(tasks.runId, runId))
      .orderBy(tasks.node);
    expect(rows.map((r) => `${r.node}:${r.status}:${r.done}`)).toEqual(['a:SUCCEEDED:0', 'b:SUCCEEDED:1', 'c:SUCCEEDED:1', 'd:SUCCEEDED:2']);
    expect((await w.db.select().from(runs).where(eq(runs.id, runId)))[0]!.status).toBe('SUCCEEDED');
  }
}, 60_000);

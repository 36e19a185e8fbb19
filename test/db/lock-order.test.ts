// Lock order on real Postgres, outside the deployments (test/deployments/lock-order.test.ts): a parent's row before its
// children's (docs/architecture.md, "Lock order"). Each case holds, in a transaction of its own, the first lock of the
// writer a person's request once deadlocked with (a loop's, the orchestrator's), sends the request, waits until it is
// blocked on a lock, then takes that writer's second lock. With the old order the two wait on each other in a circle:
// the test's transaction is the one Postgres aborts (its deadlock_timeout is the shorter), so the case fails with
// 40P01 rather than the request being retried past it.
import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { createTaskCache } from '../../server/cache/store';
import type { Db, Tx } from '../../server/db/client';
import { queryRows } from '../../server/db/client';
import { cacheEntries, cacheReservations } from '../../server/db/tables/cache';
import { columnLabels, datasets, datasetVersions } from '../../server/db/tables/governance';
import { moduleVersions } from '../../server/db/tables/modules';
import { alerts, monitors } from '../../server/db/tables/monitoring';
import { runs, tasks } from '../../server/db/tables/runs';
import { recordDatasetWrites } from '../../server/governance/policy';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;
let alice: ApiClient & { token: string };
let db: Db;
const DIGEST = `sha256:${'e'.repeat(64)}`;

beforeAll(async () => {
  pg = await startPostgres();
  // No executor host: the runs' tasks stay queued, and the test moves them with events of its own. No sweep either.
  t = await startTestApp({ DATABASE_URL: pg.url, ATELIER_MONITOR_EVAL_MS: '3600000', ATELIER_EMBEDDED_EXECUTOR: '0', ATELIER_TICK_MS: '60000' });
  db = t.app.services.db;
  alice = await t.user('alice');
  await t.team('ml', ['alice'], ['ml']);
  await t.api.gql(`mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "ml/features", domain: production, columns: $c, digest: "${DIGEST}") { id } }`, {
    c: [{ name: 'region', type: 'string', label: { level: 'PUBLIC' } }],
  });
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await pg?.stop();
});

const blocked = async () =>
  (await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`))[0]!
    .n;

/**
 * In a transaction: `first` (the other writer's first lock), then `request` is sent; once it waits on a lock, `second`
 * (the other writer's next lock). Returns what the request answered.
 */
async function meet<T>(first: (tx: Tx) => Promise<unknown>, request: () => Promise<T>, second: (tx: Tx) => Promise<unknown>): Promise<T> {
  let answer: Promise<T> | undefined;
  await db.transaction(async (tx) => {
    // This side detects a circle first, so the old order fails here (40P01) instead of the request being retried.
    await tx.execute(sql`set local deadlock_timeout = '50ms'`);
    await first(tx);
    answer = request();
    answer.catch(() => {}); // awaited below
    for (let i = 0; i < 500 && (await blocked()) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await blocked()).toBeGreaterThan(0);
    await second(tx);
  });
  return answer!;
}

it("a person's action on an alert takes its monitor first, as the evaluator and deleteMonitor do", async () => {
  const { createMonitor } = await alice.gql(`mutation ($i: MonitorInput!) { createMonitor(input: $i) { id } }`, {
    i: {
      name: 'latency',
      target: { kind: 'DATASET', ref: 'ml/features' },
      metric: 'latency',
      rules: [{ id: 'slow', kind: 'THRESHOLD', above: 100, windowSeconds: 300, consecutive: 1 }],
    },
  });
  const now = new Date(Date.now() + 2000);
  await alice.gql(`mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`, {
    o: [{ target: { kind: 'DATASET', ref: 'ml/features' }, metric: 'latency', value: 150, at: new Date(now.getTime() - 10_000).toISOString() }],
  });
  expect(await evaluateDueMonitors(db, { now })).toEqual({ evaluated: 1, opened: 1 });
  const [alert] = await db.select().from(alerts).where(eq(alerts.monitorId, createMonitor.id));

  const acked = await meet(
    // The evaluator: its due monitors claimed, then their alerts written (openAlert on a continuing breach).
    (tx) => tx.select({ id: monitors.id }).from(monitors).where(eq(monitors.id, createMonitor.id)).for('update'),
    () => alice.gql(`mutation ($id: ID!) { acknowledgeAlert(id: $id) { state } }`, { id: alert!.id }),
    (tx) =>
      tx
        .update(alerts)
        .set({ breaches: sql`${alerts.breaches} + 1` })
        .where(eq(alerts.id, alert!.id)),
  );
  expect(acked.acknowledgeAlert.state).toBe('ACKNOWLEDGED');
  const [after] = await db.select().from(alerts).where(eq(alerts.id, alert!.id));
  expect(after).toMatchObject({ state: 'ACKNOWLEDGED', breaches: alert!.breaches + 1 });
}, 60_000);

it("a label change takes its dataset first, as a task's output written by the recorder does", async () => {
  const [dataset] = await db.select().from(datasets).where(eq(datasets.name, 'features'));
  const raised = await meet(
    // recordDatasetWrites: the dataset's row, then its column labels computed from lineage.
    (tx) => tx.select({ id: datasets.id }).from(datasets).where(eq(datasets.id, dataset!.id)).for('update'),
    () =>
      alice.gql(`mutation { setColumnLabel(dataset: "ml/features", column: "region", label: { level: INTERNAL }, reason: "regions are internal") { level } }`),
    (tx) =>
      tx
        .insert(columnLabels)
        .values({ datasetId: dataset!.id, column: 'region', level: 'PUBLIC', categories: [], reason: 'computed from lineage' })
        .onConflictDoUpdate({ target: [columnLabels.datasetId, columnLabels.column], set: { computedLevel: 'PUBLIC', computedCategories: [] } }),
  );
  expect(raised.setColumnLabel.level).toBe('INTERNAL');
  const [label] = await db.select().from(columnLabels).where(eq(columnLabels.datasetId, dataset!.id));
  expect(label).toMatchObject({ level: 'INTERNAL', computedLevel: 'PUBLIC' });
}, 60_000);

it('a task writing several datasets locks them in name order, whatever order its ports are in', async () => {
  // Two outputs, named so that the manifest's order is the reverse of the names'.
  const manifest = {
    outputs: [
      { name: 'b', dataset: 'ml/zz-second', columns: [{ name: 'x' }] },
      { name: 'a', dataset: 'ml/aa-first', columns: [{ name: 'x' }] },
    ],
  };
  const write = {
    taskId: '00000000-0000-4000-8000-000000000001',
    domain: 'production' as const,
    createdBy: null,
    manifest: manifest as never,
    access: { inputs: {}, outputs: { a: { dataset: 'ml/aa-first' }, b: { dataset: 'ml/zz-second' } } },
    outputs: { a: 'one', b: 'two' },
  };
  const ceiling = { level: 'CONFIDENTIAL' as const, deniedCategories: [] };
  await db.transaction((tx) => recordDatasetWrites(tx, [write], ceiling));
  const byName = async (name: string) => (await db.select().from(datasets).where(eq(datasets.name, name)))[0]!;
  const [first, second] = [await byName('aa-first'), await byName('zz-second')];

  await meet(
    // Another task's outputs, recorded at the same moment: the first dataset by name taken, then the second.
    (tx) => tx.select({ id: datasets.id }).from(datasets).where(eq(datasets.id, first.id)).for('update'),
    () => db.transaction((tx) => recordDatasetWrites(tx, [write], ceiling)),
    (tx) => tx.select({ id: datasets.id }).from(datasets).where(eq(datasets.id, second.id)).for('update'),
  );
  const versions = await db.select().from(datasetVersions);
  expect(versions.filter((v) => v.datasetId === first.id || v.datasetId === second.id)).toHaveLength(4);
}, 60_000);

it('a metric logged through MLflow takes its run first, as a cancel of the run does', async () => {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const experiment = (await post('experiments/create', { name: 'locks' })).body.experiment_id;
  const taskId = (await post('runs/create', { experiment_id: experiment, run_name: 'locks' })).body.run.info.run_id as string;
  const [task] = await db.select().from(tasks).where(eq(tasks.id, taskId));

  const logged = await meet(
    // A cancel (the orchestrator's lockRun), then the run's open tasks updated.
    (tx) => tx.select({ id: runs.id }).from(runs).where(eq(runs.id, task!.runId)).for('update'),
    () => post('runs/log-batch', { run_id: taskId, metrics: [{ key: 'loss', value: 0.5, timestamp: Date.now(), step: 1 }] }),
    (tx) => tx.update(tasks).set({ message: 'touched under the run lock' }).where(eq(tasks.id, taskId)),
  );
  expect(logged.status).toBe(200);
  const got = await fetch(`${t.url}/api/2.0/mlflow/runs/get?run_id=${taskId}`, { headers: { authorization: `Bearer ${alice.token}` } });
  expect(((await got.json()) as any).run.data.metrics).toEqual([expect.objectContaining({ key: 'loss', value: 0.5 })]);
}, 60_000);

it("the recorder takes a run's row before it writes its tasks' progress, as a cancel does", async () => {
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'locks-flat', tasks: [{ name: 'work', module: 'test/sleep', parameters: { ms: 1 } }] });
  const runId = (await t.api.gql(`mutation { startRun(workflow: "locks-flat") { id } }`)).startRun.id as string;
  const [task] = await db.select().from(tasks).where(eq(tasks.runId, runId));
  expect(task!.status).toBe('QUEUED');
  const progress: ExecutorEvent = {
    kind: 'progress',
    taskId: task!.id,
    runId,
    attempt: task!.attempt,
    seq: 1,
    at: new Date().toISOString(),
    host: 'test',
    fraction: 0.5,
    message: 'half way',
  };
  await meet(
    // A cancel: the run's row, then its open tasks.
    (tx) => tx.select({ id: runs.id }).from(runs).where(eq(runs.id, runId)).for('update'),
    () => t.app.services.orchestrator.recordEvents([progress]),
    (tx) => tx.update(tasks).set({ message: 'touched under the run lock' }).where(eq(tasks.id, task!.id)),
  );
  const [after] = await db.select().from(tasks).where(eq(tasks.id, task!.id));
  expect(after).toMatchObject({ progress: 0.5, progressMessage: 'half way', message: 'touched under the run lock' });
}, 60_000);

it("the recorder takes the runs of a batch's heartbeats before it writes several of their tasks, as a cancel does", async () => {
  await t.createWorkflow({
    name: 'locks-pair',
    tasks: [
      { name: 'a', module: 'test/sleep', parameters: { ms: 1 } },
      { name: 'b', module: 'test/sleep', parameters: { ms: 1 } },
    ],
  });
  const runId = (await t.api.gql(`mutation { startRun(workflow: "locks-pair") { id } }`)).startRun.id as string;
  const pair = await db.select().from(tasks).where(eq(tasks.runId, runId)).orderBy(tasks.id);
  expect(pair.map((x) => x.status)).toEqual(['QUEUED', 'QUEUED']);
  const beat = (task: (typeof pair)[number]): ExecutorEvent => ({
    kind: 'heartbeat',
    taskId: task.id,
    runId,
    attempt: task.attempt,
    seq: 1,
    at: new Date().toISOString(),
    host: 'test',
  });
  await meet(
    // A cancel: the run's row, then its open tasks, one of them here.
    async (tx) => {
      await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, runId)).for('update');
      await tx.update(tasks).set({ message: 'first under the run lock' }).where(eq(tasks.id, pair[1]!.id));
    },
    () => t.app.services.orchestrator.recordEvents([beat(pair[0]!), beat(pair[1]!)]),
    (tx) => tx.update(tasks).set({ message: 'second under the run lock' }).where(eq(tasks.id, pair[0]!.id)),
  );
  const after = await db.select().from(tasks).where(eq(tasks.runId, runId)).orderBy(tasks.id);
  expect(after.map((x) => x.message)).toEqual(['second under the run lock', 'first under the run lock']);
  expect(after.every((x) => x.heartbeatAt !== null)).toBe(true);
}, 60_000);

it('a cancel takes a run and its nested runs in id order, as the recorder takes the runs of a batch', async () => {
  await t.createWorkflow({ name: 'locks-inner', tasks: [{ name: 'work', module: 'test/sleep', parameters: { ms: 1 } }] });
  await t.createWorkflow({ name: 'locks-outer', tasks: [{ name: 'sub', workflow: 'locks-inner' }] });
  // A nested run whose id sorts before its parent's (ids are random: a few tries).
  let parent = '';
  let child = '';
  for (let i = 0; i < 40 && !(child && child < parent); i++) {
    parent = (await t.api.gql(`mutation { startRun(workflow: "locks-outer") { id } }`)).startRun.id;
    child = (await db.select({ id: tasks.childRunId }).from(tasks).where(eq(tasks.runId, parent)))[0]!.id!;
  }
  expect(child < parent).toBe(true);
  const cancelled = await meet(
    // The recorder with events of both runs: their rows in id order, the child's first.
    (tx) => tx.select({ id: runs.id }).from(runs).where(eq(runs.id, child)).for('update'),
    () => t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id: parent }),
    (tx) =>
      tx
        .update(runs)
        .set({ eventSeq: sql`${runs.eventSeq} + 1` })
        .where(eq(runs.id, parent)),
  );
  expect(cancelled.cancelRun.status).toBe('CANCELLED');
  const rows = await db.select({ id: runs.id, status: runs.status }).from(runs).where(sql`${runs.id} in (${parent}, ${child})`);
  expect(rows.map((r) => r.status)).toEqual(['CANCELLED', 'CANCELLED']);
}, 60_000);

it('a cancel locks a nested run started while it waited for the parent in id order too, not after the parent', async () => {
  // A nested run whose id sorts before its parent's, its link hidden until the cancel has read the tree: as if the
  // parent's transaction that waits to start it were the one the cancel waits for.
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'locks-late-inner', tasks: [{ name: 'work', module: 'test/sleep', parameters: { ms: 1 } }] });
  await t.createWorkflow({ name: 'locks-late-outer', tasks: [{ name: 'sub', workflow: 'locks-late-inner' }] });
  let parent = '';
  let child = '';
  for (let i = 0; i < 40 && !(child && child < parent); i++) {
    parent = (await t.api.gql(`mutation { startRun(workflow: "locks-late-outer") { id } }`)).startRun.id;
    child = (await db.select({ id: tasks.childRunId }).from(tasks).where(eq(tasks.runId, parent)))[0]!.id!;
  }
  expect(child < parent).toBe(true);
  await db.update(tasks).set({ childRunId: null }).where(eq(tasks.runId, parent));
  const backendPid = async (tx: Tx) => (await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`))[0]!.pid;
  // Until some backend waits on a lock the backend `pid` holds.
  const waitingOn = async (pid: number) => {
    for (let i = 0; i < 500; i++) {
      const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pg_stat_activity where ${pid}::int = any(pg_blocking_pids(pid))`);
      if (row!.n > 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`nobody waited on backend ${pid}`);
  };
  let recorderPid = 0;
  let recorderHolds!: () => void;
  let recorderGoes!: () => void;
  const holding = new Promise<void>((r) => (recorderHolds = r));
  const goes = new Promise<void>((r) => (recorderGoes = r));
  // The recorder with events of both runs: the child's row (the lower id) first, then the parent's event number.
  const recorder = db.transaction(async (tx) => {
    // This side detects a circle first, so the old order fails here (40P01) instead of the cancel being retried.
    await tx.execute(sql`set local deadlock_timeout = '50ms'`);
    await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, child)).for('update');
    recorderPid = await backendPid(tx);
    recorderHolds();
    await goes;
    await tx
      .update(runs)
      .set({ eventSeq: sql`${runs.eventSeq} + 1` })
      .where(eq(runs.id, parent));
  });
  recorder.catch(() => {}); // awaited below
  let cancel: Promise<{ cancelRun: { status: string } }> | undefined;
  // The parent's transaction starting the nested run: its row locked while the cancel reads the tree and waits for it.
  await db.transaction(async (tx) => {
    await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, parent)).for('update');
    cancel = t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id: parent });
    cancel.catch(() => {}); // awaited below
    await waitingOn(await backendPid(tx));
    await tx.update(tasks).set({ childRunId: child }).where(eq(tasks.runId, parent));
    await holding;
  });
  // The cancel, holding the parent or not, now waits for the child's row: the recorder moves on to the parent's.
  await waitingOn(recorderPid);
  recorderGoes();
  await recorder;
  expect((await cancel!).cancelRun.status).toBe('CANCELLED');
  const rows = await db.select({ id: runs.id, status: runs.status }).from(runs).where(sql`${runs.id} in (${parent}, ${child})`);
  expect(rows.map((r) => r.status)).toEqual(['CANCELLED', 'CANCELLED']);
}, 60_000);

describe("the cache's entries, in key order", () => {
  const cache = createTaskCache({ objects: undefined as never, reservationTtlMs: 60_000, maxBytes: 0 }); // evicts all
  const [first, second] = ['lock-order-a', 'lock-order-b'];
  /** Both entries and their reservations, the second written first: a scan meets them against their keys' order. */
  async function entries(): Promise<string[]> {
    await db.delete(cacheEntries);
    await db.delete(cacheReservations);
    const [version] = await db.select({ id: moduleVersions.id }).from(moduleVersions).limit(1);
    const runId = randomUUID();
    const taskIds = [randomUUID(), randomUUID()];
    for (const [i, key] of [second, first].entries()) {
      const common = { key, components: { scope: 'production' } as never, module: 'test/sleep', moduleVersionId: version!.id };
      await db
        .insert(cacheEntries)
        .values({ ...common, scope: 'production', outputs: {}, sizeBytes: 2, sourceTaskId: taskIds[i]!, sourceRunId: runId, durationMs: 1 });
      await db.insert(cacheReservations).values({ ...common, taskId: taskIds[i]!, runId, heartbeatAt: new Date(), expiresAt: new Date(Date.now() + 60_000) });
    }
    return taskIds;
  }
  const lockEntry = (key: string) => (tx: Tx) => tx.select({ key: cacheEntries.key }).from(cacheEntries).where(eq(cacheEntries.key, key)).for('update');

  it('eviction takes them in key order, as the recorder writes several entries', async () => {
    await t.publishFixture('sleep').catch(() => undefined); // a module version for the entries (an earlier case may have published it)
    await entries();
    const evicted = await meet(lockEntry(first), () => cache.evict(db, new Date()), lockEntry(second));
    expect(evicted).toBe(2);
  }, 60_000);

  it("the recorder writes a task's entries in key order, as eviction takes them", async () => {
    await t.publishFixture('sleep').catch(() => undefined);
    const taskIds = await entries();
    await meet(
      lockEntry(first),
      () =>
        db.transaction((tx) =>
          cache.record(
            tx,
            taskIds.map((taskId) => ({ taskId, outputs: { done: true }, durationMs: 5 })),
            new Date(),
          ),
        ),
      lockEntry(second),
    );
    const rows = await db.select({ key: cacheEntries.key, outputs: cacheEntries.outputs }).from(cacheEntries).orderBy(cacheEntries.key);
    expect(rows).toEqual([
      { key: first, outputs: { done: true } },
      { key: second, outputs: { done: true } },
    ]);
  }, 60_000);
});

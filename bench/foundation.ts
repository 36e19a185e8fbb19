// Foundation benchmarks on real Postgres + NATS: (a) 2,000 independent no-op tasks through the whole path
// (startRun → outbox → JetStream → executor process → events → recorded), and (b) startRun → first progress
// event at a graphql-ws subscriber. Beside each, its floor measured in the same run: a JetStream
// publish → consume → ack plus one Postgres insert and update per task.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import postgres from 'postgres';
import WebSocket from 'ws';
import type { TaskMessage } from '../plugins/protocol';
import { packDirectory } from '../server/artifacts/archive';
import { createJetStreamBus } from '../server/bus/jetstream';
import { startTestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { startExecutorProcess } from '../test/harness/executor-process';
import { percentile, type Row } from './lib';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Infra {
  pgUrl: string;
  natsUrl: string;
}

const fakeTask = (i: number): TaskMessage => ({
  taskId: randomUUID(),
  runId: randomUUID(),
  attempt: 1,
  node: `n${i}`,
  pool: 'floor',
  executor: 'noop',
  module: { ref: 'bench/noop@1', digest: 'sha256:0', entrypoint: 'none', runtime: 'shell' },
  parameters: {},
  inputs: {},
  timeoutMs: 60_000,
  settings: {},
  enqueuedAt: new Date().toISOString(),
});

/** The floor: per task, a JetStream publish → pull consume → ack, plus one Postgres insert and one update. */
export async function floor(infra: Infra, tasks: number, latencySamples: number) {
  const sql = postgres(infra.pgUrl, { max: 10, onnotice: () => {} });
  await sql`create table if not exists bench_floor (id uuid primary key, status text not null, at timestamptz not null default now())`;
  const bus = await createJetStreamBus({ url: infra.natsUrl, streamPrefix: `floor${Date.now()}` });
  try {
    // throughput: everything published at once, consumed with many in flight
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const sub = await bus.consumeTasks(
      'floor',
      async (d) => {
        await sql`insert into bench_floor (id, status) values (${d.data.taskId}, 'RUNNING')`;
        await sql`update bench_floor set status = 'SUCCEEDED' where id = ${d.data.taskId}`;
        await d.ack();
        if (++done === tasks) finish();
      },
      { durable: 'floor', maxInFlight: 256, ackWaitMs: 30_000 },
    );
    const started = performance.now();
    await Promise.all(Array.from({ length: tasks }, (_, i) => fakeTask(i)).map((m) => bus.publishTask('floor', m, m.taskId)));
    await finished;
    const throughput = tasks / ((performance.now() - started) / 1000);
    await sub.stop();

    // latency: one message at a time
    const samples: number[] = [];
    let resolveOne: (() => void) | undefined;
    const sub2 = await bus.consumeTasks(
      'floor-latency',
      async (d) => {
        await sql`insert into bench_floor (id, status) values (${d.data.taskId}, 'RUNNING')`;
        await sql`update bench_floor set status = 'SUCCEEDED' where id = ${d.data.taskId}`;
        await d.ack();
        resolveOne?.();
      },
      { durable: 'floor-latency', maxInFlight: 1, ackWaitMs: 30_000 },
    );
    for (let i = 0; i < latencySamples; i++) {
      const one = new Promise<void>((r) => (resolveOne = r));
      const t0 = performance.now();
      const m = fakeTask(i);
      await bus.publishTask('floor-latency', m, m.taskId);
      await one;
      samples.push(performance.now() - t0);
    }
    await sub2.stop();
    return { throughput, p50: percentile(samples, 50), p99: percentile(samples, 99) };
  } finally {
    await bus.close();
    await sql`drop table if exists bench_floor`;
    await sql.end();
  }
}

export async function foundationBench(infra: Infra, options: { tasks?: number; runs?: number } = {}): Promise<Row[]> {
  const taskCount = options.tasks ?? 2000;
  const runCount = options.runs ?? 200;
  const t = await startTestApp({ DATABASE_URL: infra.pgUrl, NATS_URL: infra.natsUrl });
  const executor = await startExecutorProcess(
    { NATS_URL: infra.natsUrl, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: `${t.dataDir}/executor` },
    ['noop'],
    ['--concurrency', '256'],
  );
  const ws = createClient({
    url: `${t.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${t.app.adminToken}` },
  });
  try {
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(here, 'modules', 'noop')));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await t.createWorkflow({ name: 'bench-fanout', tasks: Array.from({ length: taskCount }, (_, i) => ({ name: `t${i}`, module: 'bench/noop' })) });
    await t.createWorkflow({ name: 'bench-one', tasks: [{ name: 'only', module: 'bench/noop' }] });

    // Everything the control plane publishes, observed by one subscriber for the whole benchmark.
    const waiters = new Map<string, { kind: string; resolve: () => void }>();
    const seen = new Map<string, Set<string>>();
    const unsubscribe = ws.subscribe<{ allRunEvents?: { __typename: string; runId: string; runStatus?: string } }>(
      { query: 'subscription { allRunEvents { __typename ... on RunStatusEvent { runId runStatus } ... on TaskProgressEvent { runId } } }' },
      {
        next: ({ data }) => {
          const e = data?.allRunEvents;
          if (!e) return;
          const key = e.__typename === 'RunStatusEvent' ? `status:${e.runStatus}` : e.__typename;
          if (!seen.has(e.runId)) seen.set(e.runId, new Set());
          seen.get(e.runId)!.add(key);
          const w = waiters.get(e.runId);
          if (w && w.kind === key) w.resolve();
        },
        error: (err) => console.error('subscription error', err),
        complete: () => {},
      },
    );
    const waitFor = (runId: string, kind: string) =>
      seen.get(runId)?.has(kind) ? Promise.resolve() : new Promise<void>((resolve) => waiters.set(runId, { kind, resolve }));
    await new Promise((r) => setTimeout(r, 200)); // let the subscription settle

    // (a) throughput
    const t0 = performance.now();
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "bench-fanout") { id } }`);
    await waitFor(startRun.id, 'status:SUCCEEDED');
    const wall = performance.now() - t0;
    const tasksPerSecond = taskCount / (wall / 1000);

    // (b) latency, one run at a time
    const samples: number[] = [];
    for (let i = 0; i < runCount; i++) {
      const s0 = performance.now();
      const { startRun: run } = await t.api.gql(`mutation { startRun(workflow: "bench-one") { id } }`);
      await waitFor(run.id, 'TaskProgressEvent');
      samples.push(performance.now() - s0);
      await waitFor(run.id, 'status:SUCCEEDED');
    }
    unsubscribe();

    const f = await floor(infra, taskCount, runCount);
    return [
      {
        bench: 'foundation',
        metric: `${taskCount} no-op tasks, startRun → recorded`,
        value: tasksPerSecond,
        unit: 'tasks/s',
        floor: f.throughput,
        ratio: f.throughput / tasksPerSecond,
        note: `wall ${Math.round(wall)} ms`,
      },
      {
        bench: 'foundation',
        metric: 'startRun → first progress at subscriber, p50',
        value: percentile(samples, 50),
        unit: 'ms',
        floor: f.p50,
        ratio: percentile(samples, 50) / f.p50,
        note: `${runCount} runs`,
      },
      {
        bench: 'foundation',
        metric: 'startRun → first progress at subscriber, p99',
        value: percentile(samples, 99),
        unit: 'ms',
        floor: f.p99,
        ratio: percentile(samples, 99) / f.p99,
      },
    ];
  } finally {
    await ws.dispose();
    await executor.stop();
    await t.stop();
  }
}

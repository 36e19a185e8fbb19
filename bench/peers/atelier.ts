// Atelier's side of the peers bench: the control plane (in this process, or as its own process for S4) on the
// same Postgres and nats-server as the peer, an executor host process serving the `noop` pool, and the bench's
// probes reading the database as the observer role (never counted as Atelier's statements).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, eq, sql } from 'drizzle-orm';
import postgres from 'postgres';
import { packDirectory } from '../../server/artifacts/archive';
import { runs, tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../../test/harness/app';
import { PUBLISH } from '../../test/harness/client';
import { type ExecutorProcess, startExecutorProcess } from '../../test/harness/executor-process';
import { percentile, round } from '../lib';
import type { ChainResult, ThroughputResult } from './graphile';
import { asRole, OBSERVER, type StatementCounter } from './statements';

const here = path.dirname(fileURLToPath(import.meta.url));
export const noopModuleDir = path.join(here, '..', 'modules', 'noop');
const terminal = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const independent = (name: string, width: number) => ({
  name,
  tasks: Array.from({ length: width }, (_, i) => ({ name: `t${i}`, module: 'bench/noop' })),
});

export const chain = (name: string, length: number) => ({
  name,
  tasks: Array.from({ length }, (_, i) => ({ name: `c${i}`, module: 'bench/noop', ...(i ? { dependsOn: [`c${i - 1}`] } : {}) })),
});

/** The production tick unless ATELIER_BENCH_PEERS_TICK_MS says otherwise (the tests' harness uses 100). */
const tickMs = () => process.env.ATELIER_BENCH_PEERS_TICK_MS || '1000';

export interface AtelierUnderTest {
  t: TestApp;
  executor: ExecutorProcess;
  observer: postgres.Sql;
  database: string;
  /** Statements per second the idle control plane sends (its background loops), measured over 2 s after start (0 when not measured). */
  idleStatementsPerSecond: number;
  stop(): Promise<void>;
}

/**
 * The control plane with its production tick (ATELIER_TICK_MS 1000, not the tests' 100) and an executor host
 * process on the `noop` pool with 256 attempts in flight, as bench/foundation.ts runs it.
 */
export async function startAtelier(
  /** `appPgUrl`: the control plane's own DATABASE_URL where it differs from `pgUrl` (a Unix socket's), the bench's connections on `pgUrl`. */
  infra: { pgUrl: string; natsUrl: string; appPgUrl?: string },
  workflows: object[],
  counter: StatementCounter,
  /** How long to watch the idle control plane's own statements (0: not at all). */
  idleWindowMs = 2000,
): Promise<AtelierUnderTest> {
  const t = await startTestApp({ DATABASE_URL: infra.appPgUrl ?? infra.pgUrl, NATS_URL: infra.natsUrl, ATELIER_TICK_MS: tickMs() });
  let executor: ExecutorProcess | undefined;
  const observer = postgres(asRole(infra.pgUrl, OBSERVER), { max: 1, onnotice: () => {} });
  try {
    executor = await startExecutorProcess(
      { NATS_URL: infra.natsUrl, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: `${t.dataDir}/executor` },
      ['noop'],
      ['--concurrency', '256'],
      // The hop tracer (plugins/trace.ts) of bench/peers/s3-profile.ts, in the host's process too.
      process.env.ATELIER_TRACE_DIR ? { ATELIER_TRACE_DIR: process.env.ATELIER_TRACE_DIR } : {},
    );
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(noopModuleDir));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    for (const w of workflows) await t.createWorkflow(w);
    const database = new URL(infra.pgUrl).pathname.slice(1);
    await counter.reset();
    await sleep(idleWindowMs);
    const idle = idleWindowMs ? await counter.read(database) : { statements: 0 };
    const ex = executor;
    return {
      t,
      executor,
      observer,
      database,
      idleStatementsPerSecond: idleWindowMs ? idle.statements / (idleWindowMs / 1000) : 0,
      async stop() {
        await ex.stop();
        await observer.end();
        await t.stop();
      },
    };
  } catch (err) {
    await executor?.stop();
    await observer.end();
    await t.stop();
    throw err;
  }
}

/**
 * startRun, answered or not: a run whose start answered an error may still exist (#21: a 10,000-task startRun
 * answered `max_payload size exceeded` after its transaction committed), so then it is looked up by workflow.
 */
async function startRunOf(a: AtelierUnderTest, workflow: string, since: Date): Promise<{ runId: string; startError?: string }> {
  const result = await a.t.api.raw<{ startRun: { id: string } }>(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
  if (result.data?.startRun?.id) return { runId: result.data.startRun.id };
  const startError = result.errors?.map((e) => e.message).join('; ') ?? `HTTP ${result.status}`;
  const [row] = await a.observer<{ id: string }[]>`
    select r.id from runs r join workflows w on w.id = r.workflow_id
    where w.name = ${workflow} and r.created_at >= ${since} order by r.created_at desc limit 1`;
  if (!row) throw new Error(`startRun(${workflow}) failed and no run exists: ${startError}`);
  return { runId: row.id, startError };
}

/** Polls the run's status as the observer every `everyMs` until it ends; the poll's granularity bounds the error. */
async function untilEnded(a: AtelierUnderTest, runId: string, deadlineMs: number, everyMs = 5): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const [row] = await a.observer<{ status: string }[]>`select status from runs where id = ${runId}`;
    if (row && terminal.has(row.status)) return row.status;
    if (Date.now() > deadline) throw new Error(`run ${runId} was still ${row?.status} after ${deadlineMs / 1000} s`);
    await sleep(everyMs);
  }
}

export interface AtelierThroughput extends ThroughputResult {
  /** From startRun's request to its answer. */
  startMs: number;
  startError?: string;
  /** Statements per task less what the idle loops would have sent over the same wall time. */
  netStatementsPerTask: number;
}

/** S1: startRun of a workflow of `tasks` independent no-op tasks → the run SUCCEEDED. */
export async function atelierThroughput(a: AtelierUnderTest, workflow: string, taskCount: number, counter: StatementCounter): Promise<AtelierThroughput> {
  await counter.reset();
  const since = new Date(Date.now() - 1000);
  const t0 = performance.now();
  const { runId, startError } = await startRunOf(a, workflow, since);
  const startMs = performance.now() - t0;
  const status = await untilEnded(a, runId, 600_000);
  const wallMs = performance.now() - t0;
  const window = await counter.read(a.database);
  if (status !== 'SUCCEEDED') throw new Error(`the ${taskCount}-task run ended ${status}`);
  return {
    tasksPerSecond: taskCount / (wallMs / 1000),
    wallMs,
    startMs,
    statementsPerTask: window.statements / taskCount,
    netStatementsPerTask: (window.statements - a.idleStatementsPerSecond * (wallMs / 1000)) / taskCount,
    serverMsPerTask: window.serverMs / taskCount,
    evicted: window.evicted,
    ...(startError ? { startError } : {}),
  };
}

export interface AtelierChain extends ChainResult {
  netStatementsPerEdge: number;
}

/**
 * S2: a `length`-step dependsOn chain. Each edge is the child's stored started_at − the parent's stored
 * finished_at: both are the executor host's wall clock (`at` of its started and result events, Date.now(), so
 * millisecond resolution), the one clock every attempt of this bench shares.
 */
export async function atelierChain(a: AtelierUnderTest, workflow: string, length: number, counter: StatementCounter): Promise<AtelierChain> {
  await counter.reset();
  const t0 = performance.now();
  const { runId } = await startRunOf(a, workflow, new Date(Date.now() - 1000));
  const status = await untilEnded(a, runId, 600_000);
  const wallMs = performance.now() - t0;
  const window = await counter.read(a.database);
  if (status !== 'SUCCEEDED') throw new Error(`the ${length}-step chain ended ${status}`);
  const rows = await a.observer<{ node: string; started: number; finished: number }[]>`
    select node, extract(epoch from started_at) * 1000 as started, extract(epoch from finished_at) * 1000 as finished
    from tasks where run_id = ${runId}`;
  const byIndex = new Map(rows.map((r) => [Number(r.node.slice(1)), { started: Number(r.started), finished: Number(r.finished) }]));
  const edges: number[] = [];
  for (let i = 1; i < length; i++) edges.push(byIndex.get(i)!.started - byIndex.get(i - 1)!.finished);
  if (edges.some((e) => !Number.isFinite(e))) throw new Error('a task of the chain has no started_at or finished_at');
  const edgesCount = length - 1;
  return {
    edges,
    p50: percentile(edges, 50),
    p99: percentile(edges, 99),
    statementsPerEdge: window.statements / edgesCount,
    netStatementsPerEdge: (window.statements - a.idleStatementsPerSecond * (wallMs / 1000)) / edgesCount,
    serverMsPerEdge: window.serverMs / edgesCount,
    evicted: window.evicted,
  };
}

/** S5: the embedded default (PGlite, in-process bus, in-process executor host) on a workflow of `tasks` no-op tasks. */
export async function embeddedThroughput(count: number, deadlineMs: number): Promise<{ tasksPerSecond?: number; wallMs?: number; unfinished?: string }> {
  const t = await startTestApp({ ATELIER_TICK_MS: tickMs() });
  try {
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(noopModuleDir));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await t.createWorkflow(independent('embedded', count));
    const t0 = performance.now();
    const started = await t.api.raw<{ startRun: { id: string } }>(`mutation { startRun(workflow: "embedded") { id } }`);
    const runId = started.data?.startRun?.id;
    if (!runId) return { unfinished: `startRun answered ${JSON.stringify(started.errors)}` };
    const db = t.app.database.db;
    for (;;) {
      const [row] = await db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId));
      if (row && terminal.has(row.status)) {
        const wallMs = performance.now() - t0;
        if (row.status !== 'SUCCEEDED') return { unfinished: `the run ended ${row.status}` };
        return { tasksPerSecond: count / (wallMs / 1000), wallMs };
      }
      if (performance.now() - t0 > deadlineMs) {
        // How far it got: the rate so far says more than "did not finish" alone.
        const [done] = await db
          .select({ n: sql<number>`count(*)::int` })
          .from(tasks)
          .where(and(eq(tasks.runId, runId), eq(tasks.status, 'SUCCEEDED')));
        const n = Number(done?.n ?? 0);
        return {
          unfinished: `did not finish in ${Math.round(deadlineMs / 1000)} s: ${n} of ${count} tasks done, ${round(n / (deadlineMs / 1000))} tasks/s so far`,
        };
      }
      await sleep(50);
    }
  } finally {
    await t.stop();
  }
}

// The peer: graphile-worker (a Postgres job queue woken by LISTEN/NOTIFY) on the same Postgres, in this process.
// Two configurations: its defaults (1 concurrent job, 2 s poll interval, a pool of 10), and what its performance
// page recommends for throughput (24 concurrent jobs, a pool of 25, a local queue of 500 fetched in one statement,
// completions batched with a 0 ms delay: worker.graphile.org/docs/performance, graphile-worker 0.17).
import { Logger, makeWorkerUtils, type Runner, run, type WorkerUtils } from 'graphile-worker';
import postgres from 'postgres';
import { percentile } from '../lib';
import { asRole, OBSERVER, type StatementCounter } from './statements';

export type PeerConfig = 'graphile default' | 'graphile tuned';

const silent = new Logger(() => () => {});

const workerOptions = (config: PeerConfig): GraphileConfig.WorkerOptions =>
  config === 'graphile default' ? {} : { concurrentJobs: 24, maxPoolSize: 25, localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };

async function startWorker(url: string, config: PeerConfig, taskList: Parameters<typeof run>[0]['taskList']): Promise<Runner> {
  return run({ connectionString: url, taskList, noHandleSignals: true, logger: silent, crontab: '', preset: { worker: workerOptions(config) } });
}

/** Polls (as the observer, not counted) until graphile-worker's job table is empty: completions are written after the handler returns. */
async function jobsDrained(observer: postgres.Sql, deadline: number) {
  for (;;) {
    const [row] = await observer`select count(*)::int as n from graphile_worker._private_jobs`;
    if (row!.n === 0) return;
    if (Date.now() > deadline) throw new Error(`graphile-worker still had ${row!.n} jobs at the deadline`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export interface ThroughputResult {
  tasksPerSecond: number;
  wallMs: number;
  statementsPerTask: number;
  serverMsPerTask: number;
  evicted: boolean;
}

/** S1: `tasks` independent no-op jobs added in one `addJobs` call; the clock stops when all ran and none is left in the table. */
export async function graphileThroughput(url: string, config: PeerConfig, tasks: number, counter: StatementCounter): Promise<ThroughputResult> {
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url, logger: silent });
  await utils.migrate();
  const observer = postgres(asRole(url, OBSERVER), { max: 1, onnotice: () => {} });
  let done = 0;
  let allRan!: () => void;
  const ran = new Promise<void>((r) => (allRan = r));
  const runner = await startWorker(url, config, {
    noop: async () => {
      if (++done === tasks) allRan();
    },
  });
  try {
    await counter.reset();
    const t0 = performance.now();
    await utils.addJobs(Array.from({ length: tasks }, () => ({ identifier: 'noop', payload: {} })));
    await ran;
    await jobsDrained(observer, Date.now() + 120_000);
    const wallMs = performance.now() - t0;
    const window = await counter.read(new URL(url).pathname.slice(1));
    if (done !== tasks) throw new Error(`graphile-worker ran ${done} of ${tasks} jobs`);
    return {
      tasksPerSecond: tasks / (wallMs / 1000),
      wallMs,
      statementsPerTask: window.statements / tasks,
      serverMsPerTask: window.serverMs / tasks,
      evicted: window.evicted,
    };
  } finally {
    await runner.stop();
    await observer.end();
    await utils.release();
  }
}

export interface ChainResult {
  /** child start − parent finish, one per edge, in ms. */
  edges: number[];
  p50: number;
  p99: number;
  statementsPerEdge: number;
  serverMsPerEdge: number;
  evicted: boolean;
}

const now = () => performance.timeOrigin + performance.now();

/**
 * S2: a chain of `length` jobs, each adding the next as its last step. Parent finish is taken right before that
 * `addJob` (its work is done; the enqueue is the queue's part of the edge), child start on entering the handler:
 * both on this process's high-resolution clock.
 */
export async function graphileChain(url: string, config: PeerConfig, length: number, counter: StatementCounter): Promise<ChainResult> {
  const utils = await makeWorkerUtils({ connectionString: url, logger: silent });
  await utils.migrate();
  const observer = postgres(asRole(url, OBSERVER), { max: 1, onnotice: () => {} });
  const edges: number[] = [];
  let last!: () => void;
  const finished = new Promise<void>((r) => (last = r));
  const runner = await startWorker(url, config, {
    link: async (payload, helpers) => {
      const startedAt = now();
      const { i, parentDoneAt } = payload as { i: number; parentDoneAt?: number };
      if (parentDoneAt !== undefined) edges.push(startedAt - parentDoneAt);
      if (i + 1 === length) return last();
      await helpers.addJob('link', { i: i + 1, parentDoneAt: now() });
    },
  });
  try {
    await counter.reset();
    await utils.addJob('link', { i: 0 });
    await finished;
    await jobsDrained(observer, Date.now() + 120_000);
    const window = await counter.read(new URL(url).pathname.slice(1));
    if (edges.length !== length - 1) throw new Error(`graphile-worker's chain measured ${edges.length} of ${length - 1} edges`);
    return {
      edges,
      p50: percentile(edges, 50),
      p99: percentile(edges, 99),
      statementsPerEdge: window.statements / (length - 1),
      serverMsPerEdge: window.serverMs / (length - 1),
      evicted: window.evicted,
    };
  } finally {
    await runner.stop();
    await observer.end();
    await utils.release();
  }
}

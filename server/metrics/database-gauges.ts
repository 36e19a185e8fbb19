// The metrics read from the database at scrape time: the same on every replica, since they count shared state (runs
// and tasks waiting, live executor hosts, open alerts). One set of queries, each on a partial index whose predicate
// it repeats (checked with EXPLAIN on Postgres at 160k tasks), answers every gauge, and its answer is kept for
// `ttlMs`, so a storm of scrapes (every replica scraped by two Prometheus servers) costs one query set.
import { sql } from 'drizzle-orm';
import { Gauge, type Registry } from 'prom-client';
import { type Db, queryRows } from '../db/client';
import { METRIC_PREFIX } from './instruments';

export const DATABASE_GAUGES_TTL_MS = 5000;

const SHARED = 'Read from the database at scrape time: the same on every replica.';

interface Snapshot {
  runs: { status: string; n: number }[];
  tasks: { pool: string; status: string; n: number; oldest: string | null }[];
  hosts: { executor: string; n: number }[];
  alerts: { state: string; n: number }[];
  at: number;
}

export interface DatabaseGaugeOptions {
  db: Db;
  /** How long a host may stay silent and still count as alive (ATELIER_HOST_STALE_SECONDS, as pool health reads it). */
  hostStaleMs: number;
  ttlMs?: number;
  now?: () => number;
}

/** Registers the database gauges on `registry`; they read one snapshot, refreshed at most once per `ttlMs`. */
export function registerDatabaseGauges(registry: Registry, options: DatabaseGaugeOptions): void {
  const now = options.now ?? Date.now;
  const ttlMs = options.ttlMs ?? DATABASE_GAUGES_TTL_MS;
  let current: { at: number; snapshot: Promise<Snapshot> } | undefined;
  const snapshot = () => {
    if (!current || now() - current.at >= ttlMs) {
      const taken = { at: now(), snapshot: read(options.db, options.hostStaleMs, now()) };
      // A failed read is not kept: the next scrape asks again.
      taken.snapshot.catch(() => {
        if (current === taken) current = undefined;
      });
      current = taken;
    }
    return current.snapshot;
  };
  const registers = [registry];
  new Gauge({
    name: `${METRIC_PREFIX}runs`,
    help: `Runs not yet ended, by status (QUEUED, RUNNING). ${SHARED}`,
    labelNames: ['status'] as const,
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const status of ['QUEUED', 'RUNNING']) this.set({ status }, s.runs.find((r) => r.status === status)?.n ?? 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}tasks_queued`,
    help: `Module tasks waiting to run per executor pool: ready for a free slot (READY) or handed to the bus and not yet started (QUEUED). ${SHARED}`,
    labelNames: ['pool', 'status'] as const,
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const t of s.tasks) if (t.status !== 'RUNNING') this.set({ pool: t.pool, status: t.status }, t.n);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}tasks_running`,
    help: `Module tasks running per executor pool. ${SHARED}`,
    labelNames: ['pool'] as const,
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const t of s.tasks) if (t.status === 'RUNNING') this.set({ pool: t.pool }, t.n);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}oldest_queued_task_age_seconds`,
    help: `Seconds the oldest waiting (READY or QUEUED) module task of each executor pool has waited since it was queued. ${SHARED}`,
    labelNames: ['pool'] as const,
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      const oldest = new Map<string, number>();
      for (const t of s.tasks) {
        if (t.status === 'RUNNING' || !t.oldest) continue;
        const at = new Date(t.oldest).getTime();
        oldest.set(t.pool, Math.min(oldest.get(t.pool) ?? at, at));
      }
      for (const [pool, at] of oldest) this.set({ pool }, Math.max(0, (s.at - at) / 1000));
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}executor_hosts_alive`,
    help: `Executor hosts heard from within the host stale time (ATELIER_HOST_STALE_SECONDS), by executor kind they run. ${SHARED}`,
    labelNames: ['executor'] as const,
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const h of s.hosts) this.set({ executor: h.executor }, h.n);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}alerts_open`,
    help: `Monitor and freshness alerts open, by state (OPEN, ACKNOWLEDGED). ${SHARED}`,
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const state of ['OPEN', 'ACKNOWLEDGED']) this.set({ state }, s.alerts.find((a) => a.state === state)?.n ?? 0);
    },
  });
}

/**
 * The four queries, each on its partial index: runs_active_idx, tasks_pool_active_idx and tasks_pool_ready_idx,
 * executor_hosts_seen_idx, alerts_one_open_key. They walk only what is waiting, running, alive or open, never the
 * finished history.
 */
async function read(db: Db, hostStaleMs: number, at: number): Promise<Snapshot> {
  const seenSince = new Date(at - hostStaleMs).toISOString();
  const [runs, active, ready, hosts, alerts] = await Promise.all([
    queryRows<{ status: string; n: number }>(db, sql`select status, count(*)::int as n from runs where status in ('QUEUED', 'RUNNING') group by status`),
    queryRows<{ pool: string; status: string; n: number; oldest: string | null }>(
      db,
      sql`select pool, status, count(*)::int as n, min(queued_at)::text as oldest from tasks
        where status in ('QUEUED', 'RUNNING') and kind = 'module' group by pool, status`,
    ),
    queryRows<{ pool: string; status: string; n: number; oldest: string | null }>(
      db,
      sql`select pool, 'READY' as status, count(*)::int as n, min(queued_at)::text as oldest from tasks
        where status = 'READY' and kind = 'module' group by pool`,
    ),
    queryRows<{ executor: string; n: number }>(
      db,
      sql`select e.executor, count(*)::int as n from executor_hosts h, unnest(h.executors) as e(executor)
        where h.last_seen_at > ${seenSince}::timestamptz group by e.executor`,
    ),
    queryRows<{ state: string; n: number }>(db, sql`select state, count(*)::int as n from alerts where state in ('OPEN', 'ACKNOWLEDGED') group by state`),
  ]);
  const num = <T extends { n: number }>(rows: T[]) => rows.map((r) => ({ ...r, n: Number(r.n) }));
  return { runs: num(runs), tasks: num([...active, ...ready]), hosts: num(hosts), alerts: num(alerts), at };
}

// Routing tasks to executor pools: which pool a GPU task goes to, what the control plane knows of the executor
// hosts (their heartbeats), and why a task that was handed to a pool is still waiting. Hosts pull their pools'
// queues, so routing decides the pool; a task for a pool no live host serves stays queued and says so.
import { desc, sql } from 'drizzle-orm';
import type { HostHeartbeat } from '../../plugins/protocol';
import { type Db, queryRows, type Tx } from '../db/client';
import { type ExecutorHostRow, executorHosts } from '../db/tables/executors';
import type { Task } from '../db/tables/runs';

export interface GpuRouting {
  /** Declared GPU pools, GPUs per host (`ATELIER_GPU_POOLS=gpu-a100=8,gpu-t4=1`): a request larger than every
   * one of them is refused at run start. Empty: pools are learnt from host heartbeats. */
  gpuPools: Record<string, number>;
  /** Where a GPU task goes when no pool is declared and no GPU host has been seen: it waits there for one. */
  fallbackPool: string;
}

export const DEFAULT_GPU_POOL = 'gpu';
/** How long a silent host is remembered (for "last host seen … ago"); hot-clusters.ts forgets it after. */
export const HOST_MEMORY_MS = 24 * 3600_000;

/** Keeps the latest heartbeat of a host. `seenAt` is the control plane's clock: hosts' clocks may drift. */
export async function recordHeartbeat(db: Db, heartbeat: HostHeartbeat, seenAt: Date): Promise<void> {
  const row = {
    id: heartbeat.hostId,
    name: heartbeat.host,
    executors: heartbeat.executors,
    pools: heartbeat.pools,
    capacity: heartbeat.capacity,
    running: heartbeat.running,
    gpus: heartbeat.gpus,
    hotClusters: heartbeat.hotClusters,
    hotClusterExecutors: heartbeat.hotClusterExecutors,
    remoteHotClusterExecutors: heartbeat.remoteHotClusterExecutors ?? [],
    version: heartbeat.version,
    draining: heartbeat.draining ?? false,
    startedAt: new Date(heartbeat.startedAt),
    lastSeenAt: seenAt,
  };
  const { id, ...changed } = row;
  await db.insert(executorHosts).values(row).onConflictDoUpdate({ target: executorHosts.id, set: changed });
}

/** Every host heard from within `forgetMs`, most recently seen first. */
export async function knownHosts(db: Db | Tx, now: Date, forgetMs = HOST_MEMORY_MS): Promise<ExecutorHostRow[]> {
  return db
    .select()
    .from(executorHosts)
    .where(sql`${executorHosts.lastSeenAt} > ${new Date(now.getTime() - forgetMs).toISOString()}::timestamptz`)
    .orderBy(desc(executorHosts.lastSeenAt));
}

export const isLive = (host: Pick<ExecutorHostRow, 'lastSeenAt'>, now: Date, staleMs: number) => now.getTime() - host.lastSeenAt.getTime() <= staleMs;

/**
 * The pool for a task asking for `gpus` GPUs that names no pool itself: the smallest declared pool that fits;
 * without declarations, the pool of a host that has advertised enough GPUs (live ones first); otherwise the
 * fallback pool, where the task waits for such a host. Returns a string error when no declared pool fits.
 */
export function gpuPoolFor(gpus: number, routing: GpuRouting, hosts: ExecutorHostRow[], now: Date, staleMs: number): { pool: string } | { error: string } {
  const declared = Object.entries(routing.gpuPools);
  if (declared.length) {
    const fits = declared.filter(([, n]) => n >= gpus).sort(([a, x], [b, y]) => x - y || a.localeCompare(b));
    if (fits.length) return { pool: fits[0]![0] };
    const list = declared.map(([p, n]) => `${p}=${n}`).join(', ');
    return {
      error: `asks for ${gpus} GPUs but no pool has that many per host (ATELIER_GPU_POOLS: ${list}); ask for fewer, or declare and start a larger pool`,
    };
  }
  const candidates = hosts
    .filter((h) => h.gpus >= gpus && h.pools.length > 0)
    .sort((a, b) => Number(isLive(b, now, staleMs)) - Number(isLive(a, now, staleMs)) || a.gpus - b.gpus);
  return { pool: candidates[0]?.pools[0] ?? routing.fallbackPool };
}

/** Why a task handed to (or held for) a pool has not started, or null when it is simply next in line. */
export function waitingReason(
  task: Pick<Task, 'kind' | 'status' | 'pool' | 'executor' | 'gpus' | 'hotCluster'>,
  hosts: ExecutorHostRow[],
  now: Date,
  staleMs: number,
): string | null {
  if (task.kind !== 'module' || (task.status !== 'READY' && task.status !== 'QUEUED')) return null;
  const start = `start one with \`npx atelier executor --pools ${task.pool}${task.gpus > 0 ? ` --gpus ${task.gpus}` : ''}\``;
  const serving = hosts.filter((h) => h.pools.includes(task.pool));
  const live = serving.filter((h) => isLive(h, now, staleMs));
  if (!live.length) {
    if (!serving.length)
      return `no executor host serves pool ${task.pool}${task.gpus > 0 ? ` (it needs ${task.gpus} GPU${task.gpus === 1 ? '' : 's'})` : ''}; ${start}`;
    const last = serving[0]!;
    return `no live executor host serves pool ${task.pool}; last host seen ${ago(now.getTime() - last.lastSeenAt.getTime())} ago (${last.name}) — ${start}`;
  }
  // A host that is part of the task's hot cluster runs it whatever executor it names (a kubernetes-gpu cluster's pods
  // run its tasks with local).
  const withExecutor = live.filter((h) => h.executors.includes(task.executor) || (task.hotCluster && h.hotClusters.includes(task.hotCluster)));
  if (!withExecutor.length) {
    return `the live hosts of pool ${task.pool} (${live.map((h) => h.name).join(', ')}) do not run executor "${task.executor}" (they run ${[...new Set(live.flatMap((h) => h.executors))].join(', ')}); configure it on a host of that pool`;
  }
  if (task.gpus > 0 && !withExecutor.some((h) => h.gpus >= task.gpus)) {
    return `needs ${task.gpus} GPUs; the live hosts of pool ${task.pool} have at most ${Math.max(...withExecutor.map((h) => h.gpus))} — ${start}`;
  }
  if (task.hotCluster && !withExecutor.some((h) => h.hotClusters.includes(task.hotCluster!))) {
    return `hot cluster ${task.hotCluster} is not warm on any live host of pool ${task.pool} yet`;
  }
  const capacity = withExecutor.reduce((n, h) => n + h.capacity, 0);
  const running = withExecutor.reduce((n, h) => n + h.running, 0);
  if (task.status === 'QUEUED' && running >= capacity)
    return `all ${capacity} slot${capacity === 1 ? '' : 's'} of pool ${task.pool} ${capacity === 1 ? 'is' : 'are'} busy`;
  return null;
}

export type PoolHealth = 'HEALTHY' | 'STALE' | 'NO_HOSTS';

export interface PoolSummary {
  pool: string;
  liveHosts: ExecutorHostRow[];
  capacity: number;
  running: number;
  queued: number;
  gpus: number;
  health: PoolHealth;
  lastSeenAt: Date | null;
}

/** Pools as the hosts announce them, plus pools that have tasks queued but no host at all. */
export async function poolSummaries(db: Db, hosts: ExecutorHostRow[], now: Date, staleMs: number): Promise<PoolSummary[]> {
  const queuedRows = await queryRows<{ pool: string; n: number }>(
    db,
    sql`select pool, count(*)::int as n from tasks where status in ('READY', 'QUEUED') and kind = 'module' group by pool`,
  );
  const queued = new Map(queuedRows.map((r) => [r.pool, Number(r.n)]));
  const pools = [...new Set([...hosts.flatMap((h) => h.pools), ...queued.keys()])].sort();
  return pools.map((pool) => {
    const serving = hosts.filter((h) => h.pools.includes(pool));
    const liveHosts = serving.filter((h) => isLive(h, now, staleMs));
    return {
      pool,
      liveHosts,
      capacity: liveHosts.reduce((n, h) => n + h.capacity, 0),
      running: liveHosts.reduce((n, h) => n + h.running, 0),
      queued: queued.get(pool) ?? 0,
      gpus: Math.max(0, ...liveHosts.map((h) => h.gpus)),
      health: liveHosts.length ? 'HEALTHY' : serving.length ? 'STALE' : 'NO_HOSTS',
      lastSeenAt: serving[0]?.lastSeenAt ?? null,
    };
  });
}

function ago(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

// Hot clusters and executor hosts as the control plane keeps them: host heartbeats recorded, hot clusters created
// (owned by a team of their creator's, or by the creator alone) and ended (by their owners or admins, or after
// their idle timeout), the hosts of a cluster's pool told to keep it warm until their
// heartbeats agree, the leases tasks take on a cluster, and each attempt's provisioning and execution times.
import { and, eq, inArray, isNotNull, isNull, lt, ne, sql } from 'drizzle-orm';
import type { Bus } from '../../plugins/bus/types';
import type { ExecutorEvent, HostHeartbeat, HotClusterCommand } from '../../plugins/protocol';
import { AuditedDenial, audited } from '../audit/audit';
import type { AppAbility } from '../auth/ability';
import { DEFAULT_HOT_CLUSTER_IDLE_MS, DEFAULT_HOT_CLUSTER_MAX_IDLE_MS, MIN_HOT_CLUSTER_IDLE_MS } from '../config/defaults';
import { type Db, queryRows } from '../db/client';
import { executorHosts, type HotCluster, hotClusterLeases, hotClusters } from '../db/tables/executors';
import type { Identity } from '../db/tables/identities';
import { tasks } from '../db/tables/runs';
import { badInput, notFound } from '../errors';
import { assertOwnerMay, newOwnerTeam, ownerOf } from '../teams/ownership';
import { poolRefusal } from './cluster-access';
import { HOST_MEMORY_MS, isLive, knownHosts, recordHeartbeat } from './routing';

export interface CreateHotClusterInput {
  name: string;
  executor: string;
  /** Default: the executor's name, as for tasks. */
  pool?: string;
  spec?: Record<string, unknown>;
  idleTimeoutMs?: number;
  /** The owning team's name; default: the creator's only team (none: the creator alone owns it). */
  team?: string;
}

/** Who asks: the identity and its request's ability (admins may end any cluster). */
export interface Actor {
  identity: Identity;
  ability: AppAbility;
}

export interface HotClusterService {
  /** Without an actor (internal callers), the cluster has no owning team. */
  create(input: CreateHotClusterInput, actor: Actor | null): Promise<HotCluster>;
  /** Ends a live cluster; with an actor, only its team's members, its teamless creator and admins may (else FORBIDDEN, audited). */
  end(name: string, reason: string, actor?: Actor): Promise<HotCluster>;
  list(options?: { includeEnded?: boolean }): Promise<HotCluster[]>;
  /** Records a host's heartbeat and tells it which clusters to start or end. */
  onHeartbeat(heartbeat: HostHeartbeat): Promise<void>;
  /** Leases and provisioning/execution times from a batch of executor events (idempotent). */
  recordEvents(events: ExecutorEvent[]): Promise<void>;
  /** Ends clusters idle past their timeout, and forgets hosts silent for a day. */
  tick(): Promise<void>;
}

export interface HotClusterServiceOptions {
  db: Db;
  bus: Bus;
  now?: () => Date;
  hostStaleMs: number;
  /** The longest idle timeout a cluster may have (default 24 h). */
  maxIdleMs?: number;
  /** The pools members may create clusters on (ATELIER_HOT_CLUSTER_POOLS); null or absent: any pool no other owner holds. */
  pools?: Record<string, string[] | '*'> | null;
  /** After a cluster's state changed (created, warm, ended): the executors page follows it (host-changes.ts). */
  onChange?: (name: string) => void;
}

const HOST_PRUNE_EVERY_MS = 60_000;
const IDLE_CHECK_EVERY_MS = 1000;
const nameRe = /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/;

export function createHotClusterService(options: HotClusterServiceOptions): HotClusterService {
  const { db, bus } = options;
  const now = options.now ?? (() => new Date());
  const maxIdleMs = options.maxIdleMs ?? DEFAULT_HOT_CLUSTER_MAX_IDLE_MS;
  let lastHostPrune = Number.NEGATIVE_INFINITY;
  let lastIdleCheck = Number.NEGATIVE_INFINITY;

  const command = (cluster: HotCluster, action: HotClusterCommand['action']): HotClusterCommand => ({
    action,
    name: cluster.name,
    executor: cluster.executor,
    pool: cluster.pool,
    spec: cluster.spec,
  });

  async function end(name: string, reason: string, actor?: Actor): Promise<HotCluster> {
    const missing = () => notFound(`No live hot cluster named ${name}; \`npx atelier cluster list\` shows the live ones.`);
    const [live] = await db
      .select()
      .from(hotClusters)
      .where(and(eq(hotClusters.name, name), ne(hotClusters.state, 'ENDED')));
    if (!live) throw missing();
    if (actor)
      await audited(db, () =>
        assertOwnerMay(
          db,
          ownerOf(actor.identity, actor.ability),
          live,
          { action: 'hotCluster.end', subject: `hotCluster:${live.name}`, label: `Hot cluster ${live.name}` },
          'end',
        ),
      );
    // By id: a cluster ended and recreated under the same name meanwhile is not the one that was checked.
    const [ended] = await db
      .update(hotClusters)
      .set({ state: 'ENDED', endedAt: now(), endReason: reason })
      .where(and(eq(hotClusters.id, live.id), ne(hotClusters.state, 'ENDED')))
      .returning();
    if (!ended) throw missing();
    options.onChange?.(ended.name);
    await bus.publishControl('hot-cluster', command(ended, 'end'));
    return ended;
  }

  return {
    async create(input, actor) {
      const identity = actor?.identity ?? null;
      if (!nameRe.test(input.name))
        throw badInput(
          `Hot cluster name "${input.name}" must be lowercase letters, digits and dashes (at most 64), starting and ending with a letter or digit.`,
        );
      if (!nameRe.test(input.executor)) throw badInput(`Executor name "${input.executor}" is not a valid name.`);
      const idleTimeoutMs = input.idleTimeoutMs ?? DEFAULT_HOT_CLUSTER_IDLE_MS;
      if (!Number.isInteger(idleTimeoutMs) || idleTimeoutMs < MIN_HOT_CLUSTER_IDLE_MS || idleTimeoutMs > maxIdleMs)
        throw badInput(
          `The idle timeout must be a whole number of seconds from ${MIN_HOT_CLUSTER_IDLE_MS / 1000} to ${maxIdleMs / 1000} (${formatHours(maxIdleMs)}, ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS); got ${input.idleTimeoutMs === undefined ? idleTimeoutMs : input.idleTimeoutMs / 1000} s.`,
          [{ path: 'idleTimeoutSeconds', message: `must be from ${MIN_HOT_CLUSTER_IDLE_MS / 1000} to ${maxIdleMs / 1000}` }],
        );
      const pool = input.pool ?? input.executor;
      // Remote clusters' pods pull the cluster's pool themselves: a host serving it would take their tasks and run them cold.
      const takers = (await knownHosts(db, now())).filter(
        (h) => isLive(h, now(), options.hostStaleMs) && h.remoteHotClusterExecutors.includes(input.executor) && h.pools.includes(pool),
      );
      if (takers.length) {
        throw badInput(
          `Executor ${input.executor} keeps hot clusters as pods that pull the cluster's pool themselves, and pool ${pool} is served by ${takers.map((h) => h.name).join(', ')}: give the cluster a pool of its own (--pool ${input.name}).`,
        );
      }
      const [existing] = await db
        .select()
        .from(hotClusters)
        .where(and(eq(hotClusters.name, input.name), ne(hotClusters.state, 'ENDED')));
      if (existing)
        throw badInput(
          `A hot cluster named ${input.name} is already live (executor ${existing.executor}, pool ${existing.pool}); end it first with \`npx atelier cluster end ${input.name}\`.`,
        );
      const owner = actor ? ownerOf(actor.identity, actor.ability) : null;
      const subject = `hotCluster:${input.name}`;
      const teamId = owner
        ? await audited(db, () => newOwnerTeam(db, owner, input.team, { action: 'hotCluster.create', subject, label: 'a hot cluster' }))
        : null;
      if (owner) {
        const remoteExecutors = new Set((await knownHosts(db, now())).flatMap((h) => h.remoteHotClusterExecutors));
        const refused = await poolRefusal(
          db,
          owner,
          { name: input.name, executor: input.executor, pool, teamId },
          { pools: options.pools ?? null, remoteExecutors },
        );
        if (refused)
          await audited(db, () => {
            throw new AuditedDenial(
              {
                identity: owner.identity,
                action: 'hotCluster.create',
                decision: 'deny',
                subject,
                rule: 'a member creates hot clusters only on pools open to their team',
                details: { pool },
              },
              `You may not create hot cluster ${input.name} on pool ${pool}: ${refused}.`,
            );
          });
      }
      const [cluster] = await db
        .insert(hotClusters)
        .values({
          name: input.name,
          executor: input.executor,
          pool,
          spec: input.spec ?? {},
          idleTimeoutMs,
          createdBy: identity?.id ?? null,
          teamId,
          lastUsedAt: now(),
        })
        .returning();
      options.onChange?.(cluster!.name);
      await bus.publishControl('hot-cluster', command(cluster!, 'start'));
      return cluster!;
    },

    end,

    list(listOptions = {}) {
      const query = db.select().from(hotClusters);
      return (listOptions.includeEnded ? query : query.where(ne(hotClusters.state, 'ENDED'))).orderBy(hotClusters.name);
    },

    async onHeartbeat(heartbeat) {
      await recordHeartbeat(db, heartbeat, now());
      const held = new Set(heartbeat.hotClusters);
      const clusters = await db
        .select()
        .from(hotClusters)
        .where(held.size ? sql`${hotClusters.state} <> 'ENDED' or ${inArray(hotClusters.name, [...held])}` : ne(hotClusters.state, 'ENDED'));
      const liveNames = new Set(clusters.filter((c) => c.state !== 'ENDED').map((c) => c.name));
      for (const cluster of clusters) {
        if (cluster.state === 'ENDED') continue;
        // A remote cluster (its own pods) is started by any host with the executor, whatever pools that host serves.
        const serves =
          heartbeat.hotClusterExecutors.includes(cluster.executor) &&
          (heartbeat.pools.includes(cluster.pool) || (heartbeat.remoteHotClusterExecutors ?? []).includes(cluster.executor));
        if (serves && !held.has(cluster.name)) await bus.publishControl('hot-cluster', command(cluster, 'start'));
        if (held.has(cluster.name) && cluster.state === 'STARTING') {
          await db.update(hotClusters).set({ state: 'READY' }).where(eq(hotClusters.id, cluster.id));
          options.onChange?.(cluster.name);
        }
      }
      // Held but ended (or ended and recreated elsewhere): let it go.
      for (const name of held) {
        if (!liveNames.has(name)) {
          const ended = clusters.find((c) => c.name === name);
          await bus.publishControl('hot-cluster', { action: 'end', name, executor: ended?.executor ?? '', pool: ended?.pool ?? '', spec: {} });
        }
      }
    },

    async recordEvents(events) {
      const reports = events.filter((e) => e.kind === 'started' || e.kind === 'result');
      if (!reports.length) return;
      const taskIds = [...new Set(reports.map((e) => e.taskId))];
      const onClusters = await db
        .select({ id: tasks.id, cluster: hotClusters.id })
        .from(tasks)
        .leftJoin(hotClusters, and(eq(hotClusters.name, tasks.hotCluster), ne(hotClusters.state, 'ENDED')))
        .where(and(inArray(tasks.id, taskIds), isNotNull(tasks.hotCluster)));
      const liveClusterOf = new Map(onClusters.map((t) => [t.id, t.cluster]));
      const at = now();
      for (const e of reports) {
        if (!liveClusterOf.has(e.taskId)) continue; // not on a hot cluster: most tasks
        const liveCluster = liveClusterOf.get(e.taskId);
        if (e.kind === 'started') {
          if (liveCluster)
            await db.insert(hotClusterLeases).values({ clusterId: liveCluster, taskId: e.taskId, attempt: e.attempt, host: e.host }).onConflictDoNothing();
          continue;
        }
        // Released even when the cluster has ended meanwhile; a result whose start was never seen still counts as use.
        const released = await db
          .update(hotClusterLeases)
          .set({ releasedAt: at })
          .where(and(eq(hotClusterLeases.taskId, e.taskId), eq(hotClusterLeases.attempt, e.attempt), isNull(hotClusterLeases.releasedAt)))
          .returning({ clusterId: hotClusterLeases.clusterId });
        if (!released.length && liveCluster) {
          await db
            .insert(hotClusterLeases)
            .values({ clusterId: liveCluster, taskId: e.taskId, attempt: e.attempt, host: e.host, releasedAt: at })
            .onConflictDoNothing();
        }
        const used = released[0]?.clusterId ?? liveCluster;
        if (used) await db.update(hotClusters).set({ lastUsedAt: at }).where(eq(hotClusters.id, used));
      }
    },

    async tick() {
      const at = now();
      // Idle timeouts are whole seconds: looked at once a second, however often the sweep ticks (tests tick at 100 ms).
      if (at.getTime() - lastIdleCheck < IDLE_CHECK_EVERY_MS) return;
      lastIdleCheck = at.getTime();
      const idle = await queryRows<{ name: string; idle_timeout_ms: number }>(
        db,
        sql`select c.name, c.idle_timeout_ms from hot_clusters c
            where c.state <> 'ENDED'
              and coalesce(c.last_used_at, c.created_at) + make_interval(secs => c.idle_timeout_ms / 1000.0) < ${at.toISOString()}::timestamptz
              and not exists (select 1 from hot_cluster_leases l where l.cluster_id = c.id and l.released_at is null)`,
      );
      for (const c of idle) await end(c.name, `idle for ${Math.round(Number(c.idle_timeout_ms) / 1000)} s`).catch(() => undefined);
      // Every host process is a new row (a restart is a new id): rows of long-gone processes would pile up. Forgotten
      // after a day, so looked for once a minute, not on every tick.
      if (at.getTime() - lastHostPrune < HOST_PRUNE_EVERY_MS) return;
      lastHostPrune = at.getTime();
      await db.delete(executorHosts).where(lt(executorHosts.lastSeenAt, new Date(at.getTime() - HOST_MEMORY_MS)));
    },
  };
}

const formatHours = (ms: number) => (ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : `${Math.round(ms / 60_000)} min`);

/** Why a hot cluster is not warm anywhere yet, or null when a live host holds it. */
export async function hotClusterMessage(db: Db, cluster: HotCluster, now: Date, staleMs: number): Promise<string | null> {
  if (cluster.state === 'ENDED') return cluster.endReason ? `ended: ${cluster.endReason}` : 'ended';
  const known = (await knownHosts(db, now)).filter((h) => isLive(h, now, staleMs));
  const live = known.filter((h) => h.pools.includes(cluster.pool));
  if (live.some((h) => h.hotClusters.includes(cluster.name))) return null;
  const creators = known.filter((h) => h.remoteHotClusterExecutors.includes(cluster.executor));
  if (creators.length)
    return `starting: ${cluster.executor} on ${creators.map((h) => h.name).join(', ')} is bringing up its pods, which will serve pool ${cluster.pool}`;
  if (!live.length) return `no live executor host serves pool ${cluster.pool}; start one with \`npx atelier executor --pools ${cluster.pool}\``;
  const withExecutor = live.filter((h) => h.executors.includes(cluster.executor));
  if (!withExecutor.length)
    return `the live hosts of pool ${cluster.pool} do not run executor "${cluster.executor}" (they run ${[...new Set(live.flatMap((h) => h.executors))].join(', ')})`;
  const keepers = withExecutor.filter((h) => h.hotClusterExecutors.includes(cluster.executor));
  if (!keepers.length) return `executor ${cluster.executor} cannot keep hot clusters (on ${withExecutor.map((h) => h.name).join(', ')}); its tasks run cold`;
  return `starting on ${keepers.map((h) => h.name).join(', ')}`;
}

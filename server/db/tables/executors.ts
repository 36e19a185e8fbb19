// Executor hosts as their heartbeats last described them, and hot clusters (compute an executor keeps warm
// between runs) with the leases tasks take on them.
import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, jsonb, pgTable, text, timestamp, unique, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { hotClusterStates } from '../../vocabulary';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { tasks } from './runs';
import { teams } from './teams';

export const executorHosts = pgTable(
  'executor_hosts',
  {
    /** The host process's own id: a restarted host is a new row, the old one goes stale. */
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    executors: text('executors').array().notNull(),
    pools: text('pools').array().notNull(),
    capacity: integer('capacity').notNull(),
    running: integer('running').notNull(),
    gpus: integer('gpus').notNull().default(0),
    hotClusters: text('hot_clusters').array().notNull().default(sql`'{}'::text[]`),
    hotClusterExecutors: text('hot_cluster_executors').array().notNull().default(sql`'{}'::text[]`),
    /** Of those, the executors whose clusters are compute of their own pulling the cluster's pool (Kubernetes pods). */
    remoteHotClusterExecutors: text('remote_hot_cluster_executors').array().notNull().default(sql`'{}'::text[]`),
    version: text('version').notNull(),
    /** Its last heartbeat said it is stopping: it takes no new work and finishes what it runs. */
    draining: boolean('draining').notNull().default(false),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [index('executor_hosts_seen_idx').on(t.lastSeenAt.desc().nullsFirst())],
);

/** STARTING: asked for, no host holds it warm yet. READY: a host holds it. ENDED: ended by a user or idle timeout. */

export const hotClusters = pgTable(
  'hot_clusters',
  {
    id: id(),
    name: text('name').notNull(),
    executor: text('executor').notNull(),
    pool: text('pool').notNull(),
    spec: jsonb('spec').$type<Record<string, unknown>>().notNull().default({}),
    state: text('state', { enum: hotClusterStates }).notNull().default('STARTING'),
    /** Ended automatically after this long without a lease. */
    idleTimeoutMs: bigint('idle_timeout_ms', { mode: 'number' }).notNull(),
    lastUsedAt: at('last_used_at'),
    createdBy: uuid('created_by').references(() => identities.id),
    /** The team that owns it (its members end it); null: its creator's alone (admins end any). */
    teamId: uuid('team_id').references(() => teams.id),
    createdAt: createdAt(),
    endedAt: at('ended_at'),
    endReason: text('end_reason'),
  },
  // Names are reused once a cluster has ended: only one live cluster per name.
  (t) => [uniqueIndex('hot_clusters_live_name').on(t.name).where(sql`state <> 'ENDED'`)],
);

export const hotClusterLeases = pgTable(
  'hot_cluster_leases',
  {
    id: id(),
    clusterId: uuid('cluster_id')
      .notNull()
      .references(() => hotClusters.id),
    taskId: uuid('task_id')
      .notNull()
      .references(() => tasks.id),
    attempt: integer('attempt').notNull(),
    host: text('host'),
    acquiredAt: createdAt(),
    releasedAt: at('released_at'),
  },
  (t) => [unique('hot_cluster_leases_attempt').on(t.taskId, t.attempt), index('hot_cluster_leases_cluster_idx').on(t.clusterId)],
);

export type ExecutorHostRow = typeof executorHosts.$inferSelect;
export type HotCluster = typeof hotClusters.$inferSelect;
export type HotClusterLease = typeof hotClusterLeases.$inferSelect;

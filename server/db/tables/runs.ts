// Runs (one execution of a workflow version) and their tasks (one per node), with attempts and timings.
import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, jsonb, pgTable, real, text, unique, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { domains, type ModelInput, runStatuses, type TaskDataAccess, taskKinds, taskStatuses, triggerRules, triggers } from '../../vocabulary';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { moduleVersions } from './modules';
import { experiments } from './tracking';
import { workflows, workflowVersions } from './workflows';

export const runs = pgTable(
  'runs',
  {
    id: id(),
    /** Null only for a run logged from outside a workflow (trigger EXTERNAL: a notebook, an MLflow client). */
    workflowId: uuid('workflow_id').references(() => workflows.id),
    workflowVersionId: uuid('workflow_version_id').references(() => workflowVersions.id),
    /** The experiment it belongs to: its workflow's own unless it named another. */
    experimentId: uuid('experiment_id')
      .notNull()
      .references(() => experiments.id),
    /** A display name (an MLflow run_name); null: the run is shown by its id. */
    name: text('name'),
    /** A free note, editable after the run ended: who wrote it last, and when. */
    note: text('note'),
    noteBy: uuid('note_by').references(() => identities.id),
    noteAt: at('note_at'),
    /** Set when deleted through the MLflow API (lifecycle_stage `deleted`); it is hidden from searches, restorable. */
    deletedAt: at('deleted_at'),
    status: text('status', { enum: runStatuses }).notNull(),
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull().default({}),
    trigger: text('trigger', { enum: triggers }).notNull(),
    sourceRunId: uuid('source_run_id'),
    /** For a nested workflow's run: the run and task (a `workflow` node) that started it. */
    parentRunId: uuid('parent_run_id'),
    parentTaskId: uuid('parent_task_id'),
    /** A caller's key: the same identity starting a run again with the same key gets this run instead of a second one. */
    idempotencyKey: text('idempotency_key'),
    /** False while the workflow's `maxActiveRuns` holds the run back; its tasks wait until it is admitted. */
    admitted: boolean('admitted').notNull().default(true),
    /** Most tasks of this run queued or running at once (from the spec's concurrency). */
    maxParallelTasks: integer('max_parallel_tasks'),
    /** The data domain the run works in: its tasks read and write cache entries of this domain only. */
    domain: text('domain', { enum: domains }).notNull().default('experimentation'),
    /** An experimentation run's private cache namespace: it reuses and feeds only entries of that namespace. */
    cacheNamespace: text('cache_namespace'),
    /** Execute every cacheable task even when its key has an entry, and replace the entry with the new result. */
    refreshCache: boolean('refresh_cache').notNull().default(false),
    /** Higher dispatches first from a saturated pool (RUN_PRIORITY_MIN..MAX, aged while waiting: see limits.ts). */
    priority: integer('priority').notNull().default(0),
    /** The run's time limit (the spec's `timeoutSeconds` or startRun's override); null: none. */
    timeoutMs: integer('timeout_ms'),
    /**
     * When the sweep ends the run FAILED if it is still open: its admission plus `timeoutMs`, no later than its parent
     * run's; null while it waits for admission or has no limit (server/orchestrator/run-deadline.ts).
     */
    deadlineAt: at('deadline_at'),
    createdBy: uuid('created_by').references(() => identities.id),
    /**
     * The scopes of the token that started it (a nested run: its parent's); null: unscoped. The run acts for the
     * intersection of its starter's rights and these (server/orchestrator/run-actor.ts), never for more than the token.
     */
    scopes: text('scopes').array(),
    message: text('message'),
    createdAt: createdAt(),
    startedAt: at('started_at'),
    finishedAt: at('finished_at'),
    /** The number of the run's latest live event (`run_events.seq`): bumped, under this row's lock, as each is stored. */
    eventSeq: bigint('event_seq', { mode: 'number' }).notNull().default(0),
  },
  (t) => [
    index('runs_created_idx').on(t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    index('runs_workflow_idx').on(t.workflowId, t.createdAt.desc().nullsFirst()),
    index('runs_experiment_idx').on(t.experimentId, t.createdAt.desc().nullsFirst()),
    index('runs_parent_idx').on(t.parentRunId),
    index('runs_active_idx').on(t.status).where(sql`status in ('QUEUED', 'RUNNING')`),
    // searchRuns' check that some readable run declares a param it names (tracking/search-keys.ts): a lookup, not a scan
    index('runs_parameters_idx').using('gin', t.parameters),
    index('runs_deadline_idx').on(t.deadlineAt).where(sql`deadline_at is not null and status in ('QUEUED', 'RUNNING')`),
    // A key is its identity's own; the control plane's runs (no identity) share one scope of their own.
    uniqueIndex('runs_idempotency_key').on(sql`coalesce(${t.createdBy}, '00000000-0000-0000-0000-000000000000'::uuid)`, t.idempotencyKey),
  ],
);

/**
 * PENDING: waiting for upstreams. READY: upstreams satisfied its trigger rule, waiting for a concurrency slot.
 * QUEUED: handed to the bus. RETRYING: a failed attempt waits for its backoff before the next one.
 */

export const tasks = pgTable(
  'tasks',
  {
    id: id(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id),
    node: text('node').notNull(),
    /** `module`: runs a module on an executor; `workflow`: runs another workflow as a child run; `map`: fans a module out over a list. */
    kind: text('kind', { enum: taskKinds }).notNull().default('module'),
    /** The module as the spec named it (`ns/name@latest`); `moduleVersionId` is what it was pinned to. */
    moduleRef: text('module_ref'),
    moduleVersionId: uuid('module_version_id').references(() => moduleVersions.id),
    /** For a `workflow` node: the workflow as named, the version pinned at run start, and its current child run. */
    workflowRef: text('workflow_ref'),
    childWorkflowVersionId: uuid('child_workflow_version_id'),
    childRunId: uuid('child_run_id'),
    /** For a `map` node: what it maps over (a list, or "${outputs.NODE.NAME}") and the parameter each item is passed as. */
    mapOver: jsonb('map_over'),
    mapAs: text('map_as'),
    /** For one item of a map: the map node it belongs to and its position. */
    mapParent: text('map_parent'),
    mapIndex: integer('map_index'),
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull().default({}),
    dependsOn: text('depends_on').array().notNull().default(sql`'{}'::text[]`),
    triggerRule: text('trigger_rule', { enum: triggerRules }).notNull().default('all_succeeded'),
    /** The spec's `when`: a CEL condition decided when the task would be dispatched (workflows/condition.ts). */
    condition: text('condition'),
    /** How many upstreams have ended, succeeded and failed: a trigger rule is decided from these counts, so a
     * 10k-wide join costs the same per finished upstream as a narrow one. */
    upstreamDone: integer('upstream_done').notNull().default(0),
    upstreamSucceeded: integer('upstream_succeeded').notNull().default(0),
    upstreamFailed: integer('upstream_failed').notNull().default(0),
    status: text('status', { enum: taskStatuses }).notNull(),
    attempt: integer('attempt').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(1),
    /** First retry waits this long; each further one twice as long (capped). */
    retryDelayMs: integer('retry_delay_ms').notNull().default(1000),
    retryAt: at('retry_at'),
    /** Attempts lost to the platform (lost host, preemption): retried without using the task's own retries. */
    systemFailures: integer('system_failures').notNull().default(0),
    /** Set when a rerun reused this node's result from an earlier run instead of executing it. */
    reusedFromTaskId: uuid('reused_from_task_id'),
    /** The task's cache key, set when it was looked up before dispatch (null: not cacheable). */
    cacheKey: text('cache_key'),
    /** Set when the task was completed from cache: the task and run whose result it took, and the time that saved. */
    cacheSourceTaskId: uuid('cache_source_task_id'),
    cacheSourceRunId: uuid('cache_source_run_id'),
    cacheSavedMs: bigint('cache_saved_ms', { mode: 'number' }),
    timeoutMs: bigint('timeout_ms', { mode: 'number' }).notNull(),
    pool: text('pool').notNull(),
    executor: text('executor').notNull(),
    settings: jsonb('settings').$type<Record<string, unknown>>().notNull().default({}),
    /** GPUs the module asks for (manifest resources); routing sends it only to pools whose hosts have them. */
    gpus: integer('gpus').notNull().default(0),
    /** The hot cluster the node asked for: its attempts run there and skip provisioning. */
    hotCluster: text('hot_cluster'),
    /** Of the last attempt's duration: getting compute ready, then running the module. */
    provisioningMs: integer('provisioning_ms'),
    executionMs: integer('execution_ms'),
    outputs: jsonb('outputs').$type<Record<string, unknown>>(),
    /** The datasets and columns the task may read and write, as decided before it was dispatched. */
    dataAccess: jsonb('data_access').$type<TaskDataAccess>(),
    /** The models the task takes as inputs, by port, pinned to one version when the run started. */
    models: jsonb('models').$type<Record<string, ModelInput>>(),
    reason: text('reason'),
    message: text('message'),
    exitCode: integer('exit_code'),
    progress: real('progress'),
    progressMessage: text('progress_message'),
    externalHandle: jsonb('external_handle'),
    host: text('host'),
    queuedAt: at('queued_at'),
    startedAt: at('started_at'),
    finishedAt: at('finished_at'),
    heartbeatAt: at('heartbeat_at'),
  },
  (t) => [
    // Also serves every lookup by run alone (its first column): a second index on run_id cost each of a task's ~4 row
    // versions (inserted, queued, running, ended) one more index entry.
    unique('tasks_run_node_key').on(t.runId, t.node),
    // the catalog's usage counts: how many runs used each module version
    index('tasks_module_version_idx').on(t.moduleVersionId),
    // what the orchestrator's ticker looks for: due retries, silent running tasks, tasks waiting for a slot
    index('tasks_open_idx').on(t.status).where(sql`status in ('READY', 'RUNNING', 'RETRYING')`),
    index('tasks_run_open_idx').on(t.runId).where(sql`status in ('PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING')`),
    // What settling reads after each batch of results: a run's tasks still waiting for upstreams or for dispatch
    // (settle.ts evaluate). The open index above made that a walk over every queued and running task of the run: 10 to
    // 30 ms per batch at 10,000 tasks, for rows it then skipped. The status in the key: whether a run has a READY task
    // (the recorder's read, recorded-tasks.ts) is one probe, not a walk over its PENDING ones (a chain's every edge).
    index('tasks_run_waiting_idx').on(t.runId, t.status).where(sql`status in ('PENDING', 'READY')`),
    index('tasks_pool_active_idx').on(t.pool).where(sql`status in ('QUEUED', 'RUNNING')`),
    // a saturated pool's queue, oldest first (dispatch orders it by run priority, aged)
    index('tasks_pool_ready_idx').on(t.pool, t.queuedAt).where(sql`status = 'READY'`),
    // Figures over a period, from the tasks that ended in it: cache savings (cache/stats.ts) and costs (runs/costs.ts).
    // Only a task's last row version is in it (the one that ended it), where one on looked-up tasks alone took each of
    // their versions from dispatch on, and the costs, with none, read every task ever run for a week's figures.
    index('tasks_finished_idx').on(t.finishedAt).where(sql`finished_at is not null`),
    // the copies of a task's metric summaries, found when it gains points after it succeeded (tracking/inherit.ts)
    index('tasks_cache_source_idx').on(t.cacheSourceTaskId).where(sql`cache_source_task_id is not null`),
    index('tasks_reused_from_idx').on(t.reusedFromTaskId).where(sql`reused_from_task_id is not null`),
  ],
);

export type Run = typeof runs.$inferSelect;
export type Task = typeof tasks.$inferSelect;
export type NewTask = typeof tasks.$inferInsert;

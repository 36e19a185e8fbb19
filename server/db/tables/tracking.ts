// Experiment tracking: experiments that group runs, free tags on runs, and every metric point a task reported
// (with a per-task, per-metric summary kept as points arrive, so runs are searched and compared without scanning
// points). Parameters a task logs itself (MLflow's log_param) live beside its declared ones.
import { bigint, doublePrecision, index, integer, jsonb, pgTable, pgView, primaryKey, smallint, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { teams } from './teams';
import { workflows } from './workflows';

/**
 * A named group of runs. A workflow's runs go to its own experiment (created with its first run, named after it)
 * unless a run names another; runs logged from outside a workflow (notebooks, MLflow clients) name theirs.
 */
export const experiments = pgTable(
  'experiments',
  {
    id: id(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    /** The workflow whose own experiment this is (at most one per workflow); null for one created by name. */
    workflowId: uuid('workflow_id').references(() => workflows.id),
    /** The owning team (who may rename or delete it); null: its creator alone (and admins). */
    teamId: uuid('team_id').references(() => teams.id),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
    /** MLflow's experiment tags (string to string). */
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    /** Set when deleted (MLflow's lifecycle_stage `deleted`); restorable until then. */
    deletedAt: at('deleted_at'),
  },
  (t) => [unique('experiments_name_key').on(t.name), unique('experiments_workflow_key').on(t.workflowId)],
);

/** A run's free tags: one value per key, editable after the run ended; who set it and when. */
export const runTags = pgTable(
  'run_tags',
  {
    runId: uuid('run_id').notNull(),
    key: text('key').notNull(),
    value: text('value').notNull(),
    setBy: uuid('set_by').references(() => identities.id),
    setAt: at('set_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.key] }), index('run_tags_key_value_idx').on(t.key, t.value)],
);

/**
 * Every metric point, once, stored in blocks: one row per series (task, metric, attempt) and block number, holding
 * up to METRIC_BLOCK_POINTS points as parallel arrays in the order they were appended (the reporter's order; a batch
 * that arrives late is appended where it lands, so readers order by `seq`). `seq` numbers the points of one attempt,
 * so a redelivered batch stores nothing twice (`seq_lo`/`seq_hi` bound a block's seqs for that check). Values are
 * float8: NaN and ±Infinity are kept. Why blocks: one row per point cost a heap tuple, an index entry and a summary
 * lookup per point (~5,000 points/s stored on PGlite); a block is one row per ~1,000 points.
 */
export const metricBlocks = pgTable(
  'metric_blocks',
  {
    taskId: uuid('task_id').notNull(),
    name: text('name').notNull(),
    attempt: integer('attempt').notNull(),
    block: integer('block').notNull(),
    runId: uuid('run_id').notNull(),
    n: integer('n').notNull(),
    seqLo: bigint('seq_lo', { mode: 'number' }).notNull(),
    seqHi: bigint('seq_hi', { mode: 'number' }).notNull(),
    seqs: bigint('seqs', { mode: 'number' }).array().notNull(),
    steps: bigint('steps', { mode: 'number' }).array().notNull(),
    vals: doublePrecision('vals').array().notNull(),
    ats: timestamp('ats', { withTimezone: true }).array().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.taskId, t.name, t.attempt, t.block] }),
    index('metric_blocks_seq_hi_idx').on(t.taskId, t.name, t.attempt, t.seqHi),
    index('metric_blocks_attempt_idx').on(t.taskId, t.attempt, t.seqHi),
  ],
);

/**
 * The points of metric_blocks one row each (a view, defined in the migration that made blocks): for reads that want
 * points, not blocks (MLflow's get-history, short series, tests). Filters on task_id, name and attempt reach the
 * blocks' primary key.
 */
export const metricPoints = pgView('metric_points', {
  taskId: uuid('task_id').notNull(),
  runId: uuid('run_id').notNull(),
  attempt: integer('attempt').notNull(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  name: text('name').notNull(),
  step: bigint('step', { mode: 'number' }).notNull(),
  value: doublePrecision('value').notNull(),
  at: timestamp('at', { withTimezone: true }).notNull(),
}).existing();

/**
 * One row per task and metric, updated as points are stored: what run pages, search and compare read. `last` is the
 * point reported last (by attempt, then order); min and max ignore NaN, and their steps say where the best was.
 */
export const metricSummaries = pgTable(
  'metric_summaries',
  {
    taskId: uuid('task_id').notNull(),
    runId: uuid('run_id').notNull(),
    name: text('name').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
    last: doublePrecision('last').notNull(),
    lastStep: bigint('last_step', { mode: 'number' }).notNull(),
    lastAt: at('last_at').notNull(),
    /** Where `last` sits in the task's order: a batch that arrives late does not overwrite a later point. */
    lastAttempt: integer('last_attempt').notNull(),
    lastSeq: bigint('last_seq', { mode: 'number' }).notNull(),
    /** Of the points that are numbers (not NaN); null while there are none. */
    min: doublePrecision('min'),
    minStep: bigint('min_step', { mode: 'number' }),
    max: doublePrecision('max'),
    maxStep: bigint('max_step', { mode: 'number' }),
    /**
     * Set on a task served from cache or reused by a rerun: the row is a copy of this task's (the one that reported
     * the points, which stay with it), so readers by run see the run as its tasks made it (server/tracking/inherit.ts).
     */
    sourceTaskId: uuid('source_task_id'),
  },
  (t) => [
    primaryKey({ columns: [t.taskId, t.name] }),
    index('metric_summaries_run_idx').on(t.runId),
    index('metric_summaries_name_last_idx').on(t.name, t.last),
  ],
);

/**
 * Each series (task, metric, attempt) summarised in fixed buckets, kept by the statement that stores its points, so a
 * long series is downsampled from a few rows instead of every point. A bucket holds the points whose key (`axis` seq:
 * the point's order; step: its step) shifted right by `shift` is `bucket`. Buckets are stored packed: one row per
 * page of 32 buckets (`page` = bucket >> ROLLUP_PAGE_SHIFT, kept in the row: migration 0045), each column an array in bucket order
 * holding the page's non-empty buckets (so a 2,000-point batch writes ~15 rows, not ~420 one per bucket). Per bucket:
 * the count; `lo_*`/`hi_*` = [value, seq, step] of the lowest and highest number (null while only NaN);
 * `first_*`/`last_*` = [key, seq, step, value] of the first and last point by key (then seq). Batches may arrive in
 * any order: a page written again is merged bucket by bucket (rollups.ts). Levels: server/tracking/rollups.ts.
 */
export const metricRollupPages = pgTable(
  'metric_rollup_pages',
  {
    taskId: uuid('task_id').notNull(),
    name: text('name').notNull(),
    attempt: integer('attempt').notNull(),
    axis: text('axis').$type<'seq' | 'step'>().notNull(),
    shift: smallint('shift').notNull(),
    page: bigint('page', { mode: 'number' }).notNull(),
    /** The points the page's buckets hold (the sum of `ns`). */
    total: bigint('total', { mode: 'number' }).notNull(),
    buckets: bigint('buckets', { mode: 'number' }).array().notNull(),
    ns: bigint('ns', { mode: 'number' }).array().notNull(),
    loValue: doublePrecision('lo_value').array().notNull(),
    loSeq: doublePrecision('lo_seq').array().notNull(),
    loStep: doublePrecision('lo_step').array().notNull(),
    hiValue: doublePrecision('hi_value').array().notNull(),
    hiSeq: doublePrecision('hi_seq').array().notNull(),
    hiStep: doublePrecision('hi_step').array().notNull(),
    firstKey: doublePrecision('first_key').array().notNull(),
    firstSeq: doublePrecision('first_seq').array().notNull(),
    firstStep: doublePrecision('first_step').array().notNull(),
    firstValue: doublePrecision('first_value').array().notNull(),
    lastKey: doublePrecision('last_key').array().notNull(),
    lastSeq: doublePrecision('last_seq').array().notNull(),
    lastStep: doublePrecision('last_step').array().notNull(),
    lastValue: doublePrecision('last_value').array().notNull(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.name, t.attempt, t.axis, t.shift, t.page] })],
);

/**
 * One row per run and metric, kept with `metric_summaries` by the same statement: what search filters and orders by
 * (an index per aggregate, so `metrics.acc > 0.9 … order by metrics.acc desc` walks one index instead of summarising
 * every run). `last` is the last value of the task that reported most recently, min and max over all its tasks;
 * NaN is stored as null here (search treats it as no value).
 */
export const runMetricSummaries = pgTable(
  'run_metric_summaries',
  {
    runId: uuid('run_id').notNull(),
    name: text('name').notNull(),
    last: doublePrecision('last'),
    lastAt: at('last_at').notNull(),
    lastTask: uuid('last_task').notNull(),
    min: doublePrecision('min'),
    max: doublePrecision('max'),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.name] }),
    index('run_metric_summaries_last_idx').on(t.name, t.last),
    index('run_metric_summaries_min_idx').on(t.name, t.min),
    index('run_metric_summaries_max_idx').on(t.name, t.max),
  ],
);

/** Parameters a task logged itself (MLflow's log_param, or an external run's), beside the ones its spec declared. */
export const loggedParams = pgTable(
  'logged_params',
  {
    taskId: uuid('task_id').notNull(),
    runId: uuid('run_id').notNull(),
    key: text('key').notNull(),
    value: text('value').notNull(),
    at: at('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.key] }), index('logged_params_run_idx').on(t.runId), index('logged_params_key_value_idx').on(t.key, t.value)],
);

/**
 * Files a run logged (MLflow's log_artifact, an external run's upload) at a path under its task: the bytes live in the
 * object store by digest; a path logged again points to the new bytes. Two executions of one attempt (a redelivered
 * task message run again) keep their files apart by `execution` until the attempt's result is recorded, which keeps
 * only the files of the execution whose result it was (server/tracking/artifacts.ts).
 */
export const runArtifacts = pgTable(
  'run_artifacts',
  {
    taskId: uuid('task_id').notNull(),
    runId: uuid('run_id').notNull(),
    /** Relative, `/`-separated, no `.` or `..` segments. */
    path: text('path').notNull(),
    /**
     * The execution of the task's attempt whose host logged the file (its number, protocol 4), or -1 for a file logged
     * by no known execution (an MLflow client, inside the module or outside Atelier).
     */
    execution: integer('execution').notNull().default(-1),
    digest: text('digest').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    at: at('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.path, t.execution] }), index('run_artifacts_run_idx').on(t.runId)],
);

/**
 * What a run (an MLflow run: its task) says it read: MLflow's dataset inputs (`mlflow.log_input`, autolog's training
 * and evaluation sets), each dataset once per run by name and digest with the tags of its first logging (a `context`
 * such as `training`), as MLflow's server keeps them; and MLflow 3's model inputs (a logged model the run used).
 */
export const runInputs = pgTable(
  'run_inputs',
  {
    taskId: uuid('task_id').notNull(),
    runId: uuid('run_id').notNull(),
    /** `dataset`: name, digest, source type and source set; `model`: modelId set. */
    kind: text('kind').$type<'dataset' | 'model'>().notNull(),
    /** The dataset's name and digest, or the logged model's id in `name` with an empty digest. */
    name: text('name').notNull(),
    digest: text('digest').notNull().default(''),
    sourceType: text('source_type'),
    source: text('source'),
    schema: text('schema'),
    profile: text('profile'),
    tags: jsonb('tags').$type<{ key: string; value: string }[]>().notNull().default([]),
    at: at('at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.kind, t.name, t.digest] }), index('run_inputs_run_idx').on(t.runId)],
);

export type Experiment = typeof experiments.$inferSelect;
export type RunTag = typeof runTags.$inferSelect;
export type MetricPoint = typeof metricPoints.$inferSelect;
export type MetricSummary = typeof metricSummaries.$inferSelect;
export type LoggedParam = typeof loggedParams.$inferSelect;
export type RunArtifact = typeof runArtifacts.$inferSelect;
export type RunInput = typeof runInputs.$inferSelect;

// The period figures' hourly rollups (costs, cache savings): what the tasks that ended in each hour add up to, kept
// by triggers on `tasks` in the same transaction as the task's own row (migration 0063; 0064 and 0071 as they are), so
// a read of whole hours from here and of the period's open edge from `tasks` equals a read of the tasks alone in every
// snapshot, late commits included. A row is a change: a trigger inserts one row per key for each statement that
// ends (or un-ends) tasks, and the sweep folds a key's rows into one (server/runs/fold-figures.ts).
// test/db/rollup-triggers.test.ts checks both rollups against a recompute over `tasks` after every kind of change.
import { sql } from 'drizzle-orm';
import { bigint, boolean, index, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { domains } from '../../vocabulary';
import { at } from './columns';

/**
 * By hour (UTC, `finished_at` rounded down), workflow, domain and module version: the tasks that executed (the cost
 * figures' count, execution ms and execution ms × GPUs) and the looked-up tasks that ended (cache hits, misses and
 * the ms hits saved). No foreign keys: rows are sums, read joined to the workflow and module they name.
 */
export const taskFiguresHourly = pgTable(
  'task_figures_hourly',
  {
    hour: at('hour').notNull(),
    workflowId: uuid('workflow_id').notNull(),
    domain: text('domain', { enum: domains }).notNull(),
    moduleVersionId: uuid('module_version_id'),
    executed: bigint('executed', { mode: 'number' }).notNull(),
    executionMs: bigint('execution_ms', { mode: 'number' }).notNull(),
    gpuMs: bigint('gpu_ms', { mode: 'number' }).notNull(),
    hits: bigint('hits', { mode: 'number' }).notNull(),
    misses: bigint('misses', { mode: 'number' }).notNull(),
    savedMs: bigint('saved_ms', { mode: 'number' }).notNull(),
    /** True for a key's folded sum; false for a change a trigger added since the last fold. */
    folded: boolean('folded').notNull().default(false),
  },
  (t) => [index('task_figures_hourly_hour_idx').on(t.hour), index('task_figures_hourly_unfolded_idx').on(t.hour).where(sql`not folded`)],
);

/**
 * The cost figures by model input: for each model a task took as an input (its `models`), the same three figures.
 * Models a task registered are read from `model_versions` (few), since a registration can come after the task ended.
 */
export const taskModelCostsHourly = pgTable(
  'task_model_costs_hourly',
  {
    hour: at('hour').notNull(),
    workflowId: uuid('workflow_id').notNull(),
    model: text('model'),
    executed: bigint('executed', { mode: 'number' }).notNull(),
    executionMs: bigint('execution_ms', { mode: 'number' }).notNull(),
    gpuMs: bigint('gpu_ms', { mode: 'number' }).notNull(),
    folded: boolean('folded').notNull().default(false),
  },
  (t) => [index('task_model_costs_hourly_hour_idx').on(t.hour), index('task_model_costs_hourly_unfolded_idx').on(t.hour).where(sql`not folded`)],
);

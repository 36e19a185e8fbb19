// startRun's own statements, built once (server/db/prepared.ts): every run sends them, and drizzle would build their
// text anew each time (the runs insert names ~30 columns, the workflow read two whole rows).
import { and, eq, sql } from 'drizzle-orm';
import type { PgInsertValue } from 'drizzle-orm/pg-core';
import type { Tx } from '../db/client';
import { builtOnce } from '../db/prepared';
import { type Run, runs } from '../db/tables/runs';
import { experiments } from '../db/tables/tracking';
import { workflows, workflowVersions } from '../db/tables/workflows';

/**
 * The workflow (by id or by name) with the version wanted, its latest unless named, and its own experiment (at most
 * one: experiments_workflow_key; none before its first run): one statement per way of asking.
 */
const workflowReads = [false, true].map((byId) =>
  [false, true].map((latest) =>
    builtOnce<{ ref: string; version: number }>()((tx) =>
      tx
        .select({ workflow: workflows, version: workflowVersions, experiment: experiments })
        .from(workflows)
        .leftJoin(
          workflowVersions,
          and(
            eq(workflowVersions.workflowId, workflows.id),
            eq(workflowVersions.version, latest ? workflows.latestVersion : sql`${sql.placeholder('version')}::int`),
          ),
        )
        .leftJoin(experiments, eq(experiments.workflowId, workflows.id))
        .where(byId ? eq(workflows.id, sql.placeholder('ref')) : eq(workflows.name, sql.placeholder('ref'))),
    ),
  ),
);

export const workflowWithVersion = (tx: Tx, ref: string, byId: boolean, version: number | undefined) =>
  workflowReads[Number(byId)]![Number(version === undefined)]!(tx, { ref, version: version ?? 0 });

/** The columns startRun writes: every one, every time (the others take their defaults). */
const STARTED = [
  'id',
  'workflowId',
  'workflowVersionId',
  'experimentId',
  'status',
  'parameters',
  'trigger',
  'sourceRunId',
  'parentRunId',
  'parentTaskId',
  'idempotencyKey',
  'admitted',
  'maxParallelTasks',
  'domain',
  'refreshCache',
  'cacheNamespace',
  'priority',
  'timeoutMs',
  'createdBy',
  'createdAt',
  'message',
] as const;

type NewRun = typeof runs.$inferInsert;
export type StartedRun = { [K in (typeof STARTED)[number] | 'scopes' | 'deadlineAt']-?: Exclude<NewRun[K], undefined> };

/**
 * The run's insert, returning its row. `parameters` and `createdAt` go through their columns' encoders (never null);
 * `scopes` and `deadlineAt`, often null (which their columns' encoders refuse), are encoded here and cast in the statement.
 */
export const insertRun = (tx: Tx, values: StartedRun) =>
  insertStarted(tx, {
    ...values,
    scopes: values.scopes === null ? null : (runs.scopes.mapToDriverValue(values.scopes) as string),
    deadlineAt: values.deadlineAt?.toISOString() ?? null,
  });

const insertStarted = builtOnce<Omit<StartedRun, 'scopes' | 'deadlineAt'> & { scopes: string | null; deadlineAt: string | null }>()((tx) =>
  tx
    .insert(runs)
    .values({
      ...Object.fromEntries(STARTED.map((column) => [column, sql.placeholder(column)])),
      scopes: sql`${sql.placeholder('scopes')}::text[]`,
      // Null while the run waits for admission, which the timestamp column's encoder refuses: encoded above, cast here.
      deadlineAt: sql`${sql.placeholder('deadlineAt')}::timestamptz`,
    } as PgInsertValue<typeof runs>)
    .returning(),
);

/**
 * The row `insertRun` stores for `values`, as a select reads it back: the columns startRun does not write hold their
 * defaults. startRun dispatches on it rather than waiting for the insert's answer.
 */
export const startedRow = (values: StartedRun): Run => ({
  ...values,
  name: null,
  note: null,
  noteBy: null,
  noteAt: null,
  deletedAt: null,
  startedAt: null,
  finishedAt: null,
  eventSeq: 0,
});

// What the recorder reads of the tasks a batch of executor events names: the few columns that judge each report and
// apply it, not the ~50 of a whole task row (drizzle maps a row column by column, and the driver parses each one). A
// failure, whose retry is decided from the whole row, reads that row when it comes (rarely). The two reads of every
// batch (the runs it moves, locked, and its tasks) are built once (server/db/prepared.ts).
import { and, eq, sql } from 'drizzle-orm';
import { arrayLiteral, arrayOf } from '../db/arrays';
import type { Db, Tx } from '../db/client';
import { builtOnce } from '../db/prepared';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { taskExecutions } from '../db/tables/task-executions';
import type { TaskStatus } from '../vocabulary';

const COLUMNS = {
  id: tasks.id,
  runId: tasks.runId,
  node: tasks.node,
  status: tasks.status,
  attempt: tasks.attempt,
  cacheKey: tasks.cacheKey,
  hotCluster: tasks.hotCluster,
  mapParent: tasks.mapParent,
  dataAccess: tasks.dataAccess,
  moduleVersionId: tasks.moduleVersionId,
};

/**
 * A task as the recorder reads it, with its current attempt's key (task_executions, null before the attempt's first
 * claim; absent on a row read whole): the key that attempt's reports must carry (report-checks.ts). `othersEnded`, read
 * for a batch that reports one task's result (`recordedTasks`' `ending`): when no other task of its run is open, the
 * statuses they ended in (none for a one-task run), else null; absent when not read.
 */
export type RecordedTask = Pick<Task, keyof typeof COLUMNS> & { attemptKey?: string | null; othersEnded?: TaskStatus[] | null };

/** The tasks with their current attempt's key: one more index lookup per task, in the same statement. */
const withKey = (tx: Db | Tx) =>
  tx
    .select({ ...COLUMNS, attemptKey: taskExecutions.key })
    .from(tasks)
    .leftJoin(taskExecutions, and(eq(taskExecutions.taskId, tasks.id), eq(taskExecutions.attempt, tasks.attempt)));

/**
 * The recorder's columns of the tasks `ids`, those that exist; with `ending` (a batch with a result) and one id, also
 * whether the task is its run's last open one (`othersEnded`): sent behind the run's lock, so read under it, and only
 * this transaction can open a task of the run again. Its run's end then needs no counting statement (settle.ts).
 */
export const recordedTasks = (tx: Tx, ids: readonly string[], ending = false): Promise<RecordedTask[]> =>
  ids.length !== 1 ? tasksAmong(tx, { ids: arrayLiteral(ids) }) : ending ? lastById(tx, { id: ids[0]! }).then(withOthersEnded) : taskById(tx, { id: ids[0]! });

// One id (a chain edge, a run's one task) by a form of its own: Postgres plans `= any($1)` anew on every call (its
// generic plan guesses ten ids, costed above a custom plan for the one given), `= $1` once per connection.
const taskById = builtOnce<{ id: string }>()((tx) => withKey(tx).where(sql`${tasks.id} = ${sql.placeholder('id')}::uuid`));

// The other tasks' statuses only when none is open (an index probe on tasks_run_open_idx first): a wide run's recordings
// never aggregate its tasks while any is open.
const others = sql`(tasks.run_id = o.run_id and o.id <> tasks.id)`;
const lastById = builtOnce<{ id: string }>()((tx) =>
  tx
    .select({
      ...COLUMNS,
      attemptKey: taskExecutions.key,
      othersEnded: sql<TaskStatus[] | null>`case when exists (select 1 from tasks o where ${others}
          and o.status in ('PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING')) then null
        else (select coalesce(json_agg(distinct o.status), '[]'::json) from tasks o where ${others}) end`.as('others_ended'),
    })
    .from(tasks)
    .leftJoin(taskExecutions, and(eq(taskExecutions.taskId, tasks.id), eq(taskExecutions.attempt, tasks.attempt)))
    .where(sql`${tasks.id} = ${sql.placeholder('id')}::uuid`),
);

/** JSON the driver left as text (PGlite and postgres-js differ) parsed, in place. */
function withOthersEnded(rows: RecordedTask[]): RecordedTask[] {
  for (const r of rows) {
    const value: unknown = r.othersEnded;
    if (typeof value === 'string') r.othersEnded = JSON.parse(value) as TaskStatus[];
  }
  return rows;
}

const tasksAmong = builtOnce<{ ids: string }>()((tx) => withKey(tx).where(sql`${tasks.id} = any(${sql.placeholder('ids')}::uuid[])`));

/** The runs `ids` (valid uuids), locked for update, in id order. */
export const lockRuns = (tx: Tx, ids: readonly string[]): Promise<Run[]> =>
  ids.length === 1 ? runLocked(tx, { id: ids[0]! }) : runsLocked(tx, { ids: arrayLiteral([...ids].sort()) });

/** One run, as taskById reads one task. */
const runLocked = builtOnce<{ id: string }>()((tx) =>
  tx
    .select()
    .from(runs)
    .where(sql`${runs.id} = ${sql.placeholder('id')}::uuid`)
    .for('update'),
);

const runsLocked = builtOnce<{ ids: string }>()((tx) =>
  tx
    .select()
    .from(runs)
    .where(sql`${runs.id} = any(${sql.placeholder('ids')}::uuid[])`)
    .orderBy(runs.id)
    .for('update'),
);

/** The whole rows of the tasks `ids`, by id: for the results that end or retry an attempt other than by success. */
export async function wholeTasks(tx: Tx, ids: readonly string[]): Promise<Map<string, Task>> {
  if (!ids.length) return new Map();
  const rows = await tx
    .select()
    .from(tasks)
    .where(sql`${tasks.id} = any(${arrayOf(ids, 'uuid')})`);
  return new Map(rows.map((t) => [t.id, t]));
}

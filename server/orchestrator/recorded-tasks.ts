// What the recorder reads of the tasks a batch of executor events names: the few columns that judge each report and
// apply it, not the ~50 of a whole task row (drizzle maps a row column by column, and the driver parses each one). A
// failure, whose retry is decided from the whole row, reads that row when it comes (rarely). The two reads of every
// batch (the runs it moves, locked, and its tasks) are built once (server/db/prepared.ts).
import { and, eq, getTableColumns, type SQL, sql } from 'drizzle-orm';
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
export type RecordedTask = Pick<Task, keyof typeof COLUMNS> & {
  attemptKey?: string | null;
  othersEnded?: TaskStatus[] | null;
  /** Read with `othersEnded`: what a success of this task would count into (edge-dispatch.ts), absent when not read. */
  edge?: DownstreamRead;
};

/**
 * The run's PENDING tasks downstream of a task, whole (at most DOWNSTREAM_READ; `more` when there are others), and
 * whether the run has a READY task: read under the run's lock with the task, so its success's dispatch can be decided
 * before the counting statement answers (edge-dispatch.ts).
 */
export interface DownstreamRead {
  downstream: Task[];
  /** The outputs of the downstream tasks' other upstreams, by node, where this task is the last of them to end. */
  upstreamOutputs: Map<string, Record<string, unknown>>;
  more: boolean;
  readyInRun: boolean;
}

/** How many downstream tasks the read returns whole: a wider fan-out is dispatched after the counting statement answers. */
export const DOWNSTREAM_READ = 8;

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
 * `downstream`: the node keys of the tasks that wait on that one task, where known (run-edges.ts): its PENDING
 * children are then read by key; unknown, by a scan of the run's PENDING tasks.
 */
export const recordedTasks = (tx: Tx, ids: readonly string[], ending = false, downstream?: readonly string[]): Promise<RecordedTask[]> =>
  ids.length !== 1
    ? tasksAmong(tx, { ids: arrayLiteral(ids) })
    : ending
      ? lastRead(tx, ids[0]!, downstream).then(withOthersEnded)
      : taskById(tx, { id: ids[0]! });

// One id (a chain edge, a run's one task) by a form of its own: Postgres plans `= any($1)` anew on every call (its
// generic plan guesses ten ids, costed above a custom plan for the one given), `= $1` once per connection.
const taskById = builtOnce<{ id: string }>()((tx) => withKey(tx).where(sql`${tasks.id} = ${sql.placeholder('id')}::uuid`));

// The other tasks' statuses only when none is open (an index probe on tasks_run_open_idx first): a wide run's recordings
// never aggregate its tasks while any is open.
const others = sql`(tasks.run_id = o.run_id and o.id <> tasks.id)`;
/** `children`: the run's tasks `d` that may wait on this one (the PENDING ones among them that do are read). */
const lastBy = <V extends { id: string }>(children: SQL) =>
  builtOnce<V>()((tx) =>
    tx
      .select({
        ...COLUMNS,
        attemptKey: taskExecutions.key,
        othersEnded: sql<TaskStatus[] | null>`case when exists (select 1 from tasks o where ${others}
          and o.status in ('PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING')) then null
        else (select coalesce(json_agg(distinct o.status), '[]'::json) from tasks o where ${others}) end`.as('others_ended'),
        // A task this success may make READY (its last upstream to end) comes with its other upstreams' outputs, for its
        // message: read for that one only, so a wide join's edges do not each read all of its upstreams. Each by its key,
        // apart (`offset 0`): as `u.node = any(d.depends_on)`, or joined, Postgres checked the names on every task of the run.
        downstream: sql<unknown>`(select json_agg(d) from (select d.*, case when d.upstream_done + 1 >= cardinality(d.depends_on) then
            (select json_object_agg(u.node, coalesce(u.outputs, '{}'::jsonb)) from unnest(d.depends_on) as up(node)
              cross join lateral (select u.node, u.outputs from tasks u where u.run_id = d.run_id and u.node = up.node offset 0) u
              where up.node <> tasks.node) end as upstream_outputs
          from ${children} where d.run_id = tasks.run_id and d.status = 'PENDING'
          and tasks.node = any(d.depends_on) order by d.node limit ${DOWNSTREAM_READ + 1}) d)`.as('downstream'),
        // The run's first waiting task in status order from the back ('READY' sorts after 'PENDING'): one descent of
        // tasks_run_waiting_idx (run_id, status), the only path with that order short of reading all the run's tasks. As
        // `exists (… status = 'READY')` Postgres expected a READY task soon on any path and walked every READY task of
        // every run (tasks_open_idx), or the table, to find none in this one (bench/peers/ready-probe-plan.ts).
        readyInRun: sql<boolean>`coalesce((select r.status from tasks r where r.run_id = tasks.run_id and r.status in ('PENDING', 'READY')
          order by r.status desc limit 1) = 'READY', false)`.as('ready_in_run'),
      })
      .from(tasks)
      .leftJoin(taskExecutions, and(eq(taskExecutions.taskId, tasks.id), eq(taskExecutions.attempt, tasks.attempt)))
      .where(sql`${tasks.id} = ${sql.placeholder('id')}::uuid`),
  );
// The children unknown: every PENDING task of the run, on tasks_run_waiting_idx, checked for this one in `depends_on`.
const lastByScan = lastBy<{ id: string }>(sql`tasks d`);
// Known (run-edges.ts): none, one (a chain's edge: `= $1`, planned once per connection, as taskById), or a few, by
// tasks_run_node_key; their status and `depends_on` checked after, as the scan checks them. Apart (`offset 0`): with
// the status beside the key Postgres took tasks_run_waiting_idx and checked the key on each of the run's PENDING tasks.
const byKey = (key: SQL) => sql`(select * from tasks d where d.run_id = tasks.run_id and ${key} offset 0) d`;
const lastOfLeaf = lastBy<{ id: string }>(byKey(sql`false`));
const lastByKey = lastBy<{ id: string; node: string }>(byKey(sql`d.node = ${sql.placeholder('node')}::text`));
const lastByKeys = lastBy<{ id: string; nodes: string }>(byKey(sql`d.node = any(${sql.placeholder('nodes')}::text[])`));

function lastRead(tx: Tx, id: string, downstream: readonly string[] | undefined) {
  if (!downstream) return lastByScan(tx, { id });
  if (!downstream.length) return lastOfLeaf(tx, { id });
  return downstream.length === 1 ? lastByKey(tx, { id, node: downstream[0]! }) : lastByKeys(tx, { id, nodes: arrayLiteral(downstream) });
}

/** JSON the driver left as text (PGlite and postgres-js differ) parsed, in place; the downstream rows as tasks. */
function withOthersEnded(rows: (RecordedTask & { downstream?: unknown; readyInRun?: boolean })[]): RecordedTask[] {
  for (const r of rows) {
    const value: unknown = r.othersEnded;
    if (typeof value === 'string') r.othersEnded = JSON.parse(value) as TaskStatus[];
    const down = (typeof r.downstream === 'string' ? JSON.parse(r.downstream) : (r.downstream ?? [])) as Record<string, unknown>[];
    const upstreamOutputs = new Map<string, Record<string, unknown>>();
    for (const d of down)
      for (const [node, outputs] of Object.entries((d.upstream_outputs ?? {}) as Record<string, Record<string, unknown>>)) upstreamOutputs.set(node, outputs);
    r.edge = {
      downstream: down.slice(0, DOWNSTREAM_READ).map(taskFromRow),
      upstreamOutputs,
      more: down.length > DOWNSTREAM_READ,
      readyInRun: r.readyInRun === true,
    };
    delete r.downstream;
    delete r.readyInRun;
  }
  return rows;
}

/** A row of `tasks` by its column names (as the driver or json_agg gives it), as drizzle maps a select's. */
const taskColumns = Object.entries(getTableColumns(tasks));
export function taskFromRow(row: Record<string, unknown>): Task {
  const task: Record<string, unknown> = {};
  for (const [key, column] of taskColumns) {
    const value = row[column.name];
    task[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return task as Task;
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

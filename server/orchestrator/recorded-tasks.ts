// What the recorder reads of the tasks a batch of executor events names: the few columns that judge each report and
// apply it, not the ~50 of a whole task row (drizzle maps a row column by column, and the driver parses each one). A
// failure, whose retry is decided from the whole row, reads that row when it comes (rarely). The two reads of every
// batch (the runs it moves, locked, and its tasks) are built once (server/db/prepared.ts).
import { sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../../plugins/protocol';
import { arrayLiteral, arrayOf, jsonRows } from '../db/arrays';
import { queryRows, type Tx } from '../db/client';
import { builtOnce } from '../db/prepared';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { seqBlock } from './attempts';

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

/** A task as the recorder reads it. */
export type RecordedTask = Pick<Task, keyof typeof COLUMNS>;

/** The recorder's columns of the tasks `ids`, those that exist. */
export const recordedTasks = (tx: Tx, ids: readonly string[]): Promise<RecordedTask[]> =>
  ids.length === 1 ? taskById(tx, { id: ids[0]! }) : tasksAmong(tx, { ids: arrayLiteral(ids) });

// One id (a chain edge, a run's one task) by a form of its own: Postgres plans `= any($1)` anew on every call (its
// generic plan guesses ten ids, costed above a custom plan for the one given), `= $1` once per connection.
const taskById = builtOnce<{ id: string }>()((tx) =>
  tx
    .select(COLUMNS)
    .from(tasks)
    .where(sql`${tasks.id} = ${sql.placeholder('id')}::uuid`),
);

const tasksAmong = builtOnce<{ ids: string }>()((tx) =>
  tx
    .select(COLUMNS)
    .from(tasks)
    .where(sql`${tasks.id} = any(${sql.placeholder('ids')}::uuid[])`),
);

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

/**
 * For attempts that have ended, the sequence block of the execution whose result ended them (if one did), and the
 * start that result's row carries (`taskId:attempt:seq`).
 */
export async function resultBlocksOf(tx: Tx, reports: ExecutorEvent[]): Promise<{ blocks: Map<string, number>; startCarried: Set<string> }> {
  const blocks = new Map<string, number>();
  const startCarried = new Set<string>();
  const pairs = [...new Map(reports.map((e) => [`${e.taskId}:${e.attempt}`, { task_id: e.taskId, attempt: e.attempt }])).values()];
  if (!pairs.length) return { blocks, startCarried };
  const rows = await queryRows<{ task_id: string; attempt: number; seq: string | number; started: string | number | null }>(
    tx,
    sql`select e.task_id, e.attempt, e.seq, e.payload -> 'started' ->> 'seq' as started from task_events e
        join ${jsonRows(pairs)} as v(task_id uuid, attempt int) on e.task_id = v.task_id and e.attempt = v.attempt
        where e.kind = 'result'`,
  );
  for (const r of rows) {
    blocks.set(`${r.task_id}:${r.attempt}`, seqBlock(Number(r.seq)));
    if (r.started !== null) startCarried.add(`${r.task_id}:${r.attempt}:${Number(r.started)}`);
  }
  return { blocks, startCarried };
}

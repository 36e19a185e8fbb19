// Reads of runs and tasks for the API: by id, per run (tasks, child runs), per task (attempt events, metrics,
// log lines), and the run list with its filter and keyset pages. Batched reads take every key at once (no N+1).
import { and, asc, desc, eq, getTableColumns, gte, inArray, lt, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { beyondCursor, cursorTime, type TimeCursor } from '../db/keyset';
import { builtOnce } from '../db/prepared';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { type TaskEvent, taskEvents } from '../db/tables/task-events';
import { notFound } from '../errors';
import type { Domain, RunStatus, Trigger } from '../vocabulary';

export const runsByIds = (db: Db, ids: string[]): Promise<Run[]> => db.select().from(runs).where(inArray(runs.id, ids));

export async function runById(db: Db, id: string): Promise<Run | null> {
  const [run] = await db.select().from(runs).where(eq(runs.id, id));
  return run ?? null;
}

/** The run, or NOT_FOUND. */
export async function findRun(db: Db, id: string): Promise<Run> {
  const run = await runById(db, id);
  if (!run) throw notFound(`No run ${id}; \`atelier run list\` shows the recent ones.`);
  return run;
}

/** What watching a run's events needs of it: who may (its domain) and where its events stand; null: no such run. */
export async function runToWatch(db: Db, id: string): Promise<Pick<Run, 'domain' | 'status' | 'message' | 'eventSeq' | 'deadlineAt'> | null> {
  const [row] = await watchedRun(db, { id });
  return row ?? null;
}

const watchedRun = builtOnce<{ id: string }>()((db) =>
  db
    .select({ domain: runs.domain, status: runs.status, message: runs.message, eventSeq: runs.eventSeq, deadlineAt: runs.deadlineAt })
    .from(runs)
    .where(eq(runs.id, sql.placeholder('id'))),
);

/** A run's domain, or null: asked by `allRunEvents` for each run it sees first (built once, server/db/prepared.ts). */
export async function runDomainOf(db: Db, id: string): Promise<Domain | null> {
  const [row] = await domainOfRun(db, { id });
  return row?.domain ?? null;
}

const domainOfRun = builtOnce<{ id: string }>()((db) =>
  db
    .select({ domain: runs.domain })
    .from(runs)
    .where(eq(runs.id, sql.placeholder('id'))),
);

export async function taskById(db: Db, id: string): Promise<Task | null> {
  const [task] = await db.select().from(tasks).where(eq(tasks.id, id));
  return task ?? null;
}

/** The tasks of each run, by node name. */
export const tasksOfRuns = (db: Db, runIds: string[]): Promise<Task[]> => db.select().from(tasks).where(inArray(tasks.runId, runIds)).orderBy(asc(tasks.node));

/** Runs started by workflow nodes of each run, oldest first. */
export const childRunsOf = (db: Db, runIds: string[]): Promise<Run[]> =>
  db.select().from(runs).where(inArray(runs.parentRunId, runIds)).orderBy(asc(runs.createdAt));

/** Start and result events of tasks, oldest first: what a task's attempts are built from. */
export const attemptEventsOf = (db: Db, taskIds: string[]): Promise<TaskEvent[]> =>
  db
    .select()
    .from(taskEvents)
    .where(and(inArray(taskEvents.taskId, taskIds), inArray(taskEvents.kind, ['started', 'result'])))
    .orderBy(asc(taskEvents.attempt), asc(taskEvents.seq));

export interface LogLine {
  seq: number;
  stream: string;
  line: string;
  at: Date;
}

/** The last `limit` log lines of one attempt of a task, oldest first. */
export async function logLinesOf(db: Db, taskId: string, attempt: number, limit: number): Promise<LogLine[]> {
  const rows = await db
    .select()
    .from(taskEvents)
    .where(and(eq(taskEvents.taskId, taskId), eq(taskEvents.attempt, attempt), eq(taskEvents.kind, 'log')))
    .orderBy(asc(taskEvents.seq));
  const lines: LogLine[] = [];
  for (const row of rows) {
    const payload = row.payload as { stream: string; lines: string[] };
    for (const line of payload.lines) lines.push({ seq: row.seq, stream: payload.stream, line, at: row.at });
  }
  return lines.slice(-limit);
}

/** A run list's filter with names already resolved to ids. */
export interface RunFilter {
  workflowId?: string;
  createdBy?: string;
  status?: RunStatus[] | null;
  trigger?: Trigger[] | null;
  domain?: Domain[] | null;
  since?: Date | null;
  until?: Date | null;
}

/** One page of the run list, newest first (oldest first when `inverted`, for a page before a cursor), each run with its
 * cursor's time (server/db/keyset.ts). */
export function runsPage(
  db: Db,
  filter: RunFilter,
  page: { after?: TimeCursor; before?: TimeCursor; limit: number; inverted: boolean },
): Promise<(Run & { cursorAt: string })[]> {
  const conditions: (SQL | undefined)[] = [
    filter.workflowId ? eq(runs.workflowId, filter.workflowId) : undefined,
    filter.status?.length ? inArray(runs.status, filter.status) : undefined,
    filter.trigger?.length ? inArray(runs.trigger, filter.trigger) : undefined,
    filter.createdBy ? eq(runs.createdBy, filter.createdBy) : undefined,
    filter.domain?.length ? inArray(runs.domain, filter.domain) : undefined,
    filter.since ? gte(runs.createdAt, filter.since) : undefined,
    filter.until ? lt(runs.createdAt, filter.until) : undefined,
    page.after ? beyondCursor(runs.createdAt, runs.id, page.after, 'older') : undefined,
    page.before ? beyondCursor(runs.createdAt, runs.id, page.before, 'newer') : undefined,
  ];
  return db
    .select({ ...getTableColumns(runs), cursorAt: cursorTime(runs.createdAt) })
    .from(runs)
    .where(and(...conditions))
    .orderBy(...(page.inverted ? [asc(runs.createdAt), asc(runs.id)] : [desc(runs.createdAt), desc(runs.id)]))
    .limit(page.limit);
}

// Files a tracked task logged (MLflow's log_artifact): bytes in the object store by digest, a row per (task, path).
// Paths are relative and `/`-separated; `..`, `.`, empty segments, backslashes and absolute paths are refused.
import type { Readable } from 'node:stream';
import { and, asc, desc, eq, inArray, like, type SQL, sql } from 'drizzle-orm';
import type { ObjectStore } from '../artifacts/store';
import { jsonRows, oneOrAny } from '../db/arrays';
import type { Db, Tx } from '../db/client';
import type { Task } from '../db/tables/runs';
import { runArtifacts } from '../db/tables/tracking';
import { badInput, notFound } from '../errors';
import { assertMayWriteFiles, type Caller, findTracked, type Tracked } from './access';
import { sourcesOf } from './queries';

/** A checked relative artifact path ('' for the root when `root` is allowed). */
export function artifactPath(raw: string, options: { root?: boolean } = {}): string {
  const p = raw.replace(/\/+$/, '');
  if (!p && options.root) return '';
  if (!p || p.startsWith('/') || p.includes('\\') || p.includes('\0') || /^[A-Za-z]:/.test(p) || p.split('/').some((s) => s === '' || s === '.' || s === '..'))
    throw badInput(`Artifact path "${raw}" is not a relative path: use "/"-separated names without ".", ".." or empty segments.`);
  if (p.length > 1000) throw badInput('An artifact path is at most 1000 characters.');
  return p;
}

/** Refuses a file the caller may not put there (its path, the task, the right to write its files): before its bytes are read. */
export async function assertMayPutArtifact(db: Db, caller: Caller, taskId: string, rawPath: string): Promise<void> {
  artifactPath(rawPath);
  assertMayWriteFiles(caller, await findTracked(db, caller, taskId));
}

/** The header with which a host names the execution of the attempt whose files it logs (its number, protocol 4). */
export const EXECUTION_HEADER = 'x-atelier-execution';

/** The execution a request's header names: a task's own token's alone (-1 for none, or any other caller). */
export function executionOf(caller: Caller, header: string | string[] | undefined): number {
  if (header === undefined || !caller.task) return -1;
  const n = Number(header);
  if (typeof header !== 'string' || !/^\d{1,7}$/.test(header) || n >= 2 ** 20)
    throw badInput(`${EXECUTION_HEADER} must be the execution's number (a whole number from 0 to ${2 ** 20 - 1}), as the claim's answer gave it.`);
  return n;
}

/**
 * Stores a file at a path of the task's folder. `execution`: the execution of the attempt that logged it (-1 for none
 * known): two executions of one attempt each keep their own until its result keeps one's (keepResultFiles).
 */
export async function putArtifact(db: Db, store: ObjectStore, caller: Caller, taskId: string, rawPath: string, bytes: Buffer, execution = -1): Promise<void> {
  const path = artifactPath(rawPath);
  // Checked before the bytes are stored, and again in the transaction that records them.
  await assertMayPutArtifact(db, caller, taskId, path);
  const digest = await store.put(bytes);
  await db.transaction(async (tx) => {
    // The task's row is locked: a file logged after its result's recording is refused there (the attempt has ended),
    // and one logged before is seen by it.
    const tracked = await findTracked(tx, caller, taskId, { lock: true });
    assertMayWriteFiles(caller, tracked);
    await tx
      .insert(runArtifacts)
      .values({ taskId, runId: tracked.run.id, path, execution, digest, size: bytes.length })
      .onConflictDoUpdate({ target: [runArtifacts.taskId, runArtifacts.path, runArtifacts.execution], set: { digest, size: bytes.length, at: new Date() } });
  });
}

/**
 * A data-modifying CTE (`with ... `, to go before the statement that records the tasks' successes, in its text) that
 * keeps in each task's folder only the files of the execution whose result succeeded (`block`, the execution number
 * of its events: SEQ_BLOCK): another execution's files go, and so does a file logged by no known execution (-1: an
 * MLflow client inside the module, which ran before its host logged what it left) at a path the winner's host logged.
 * The id list beside the join leads the planner to the key, not to a scan of every task's files (db/arrays.ts); one id
 * as `= $1`, so that the statement's generic plan is kept rather than each call planned (oneOrAny).
 */
export const keepResultFiles = (winners: { id: string; block: number }[]): SQL => sql`
  with other_executions_files as (
    delete from run_artifacts a using ${jsonRows(winners)} as w(id uuid, block int)
    where a.task_id = w.id and ${oneOrAny(
      'a.task_id',
      winners.map((w) => w.id),
      'uuid',
    )} and a.execution <> w.block
      and (a.execution >= 0 or exists (select 1 from run_artifacts o where o.task_id = a.task_id and o.path = a.path and o.execution = w.block)))
  `;

/**
 * Forgets the files the tasks' ended attempts logged, as their next attempts are made ready: a task's folder holds one
 * attempt's files, so a retry's listing (and a model registered from it) never carries a failed attempt's. Called
 * with the tasks RETRYING in a committed transaction: their ended attempts' tokens log nothing more (assertMayLog).
 */
export async function clearAttemptFiles(tx: Tx, taskIds: string[]): Promise<void> {
  await tx.delete(runArtifacts).where(inArray(runArtifacts.taskId, taskIds));
}

/**
 * The task whose files a task shows: itself, or, when it did not execute (served from cache, reused by a rerun), the
 * task that produced its result, whose succeeding attempt's files they are.
 */
export async function filesTaskOf(db: Db, task: Task): Promise<string> {
  if (!task.cacheSourceTaskId && !task.reusedFromTaskId) return task.id;
  return (await sourcesOf(db, [task.id])).get(task.id)?.id ?? task.id;
}

export async function getArtifact(db: Db, store: ObjectStore, caller: Caller, taskId: string, rawPath: string): Promise<{ size: number; body: Readable }> {
  const path = artifactPath(rawPath);
  const { task } = await findTracked(db, caller, taskId);
  const [row] = await db
    .select()
    .from(runArtifacts)
    .where(and(eq(runArtifacts.taskId, await filesTaskOf(db, task)), eq(runArtifacts.path, path)))
    // Two executions of a running attempt may each have logged one: the latest (its result keeps one execution's).
    .orderBy(desc(runArtifacts.at))
    .limit(1);
  if (!row) throw notFound(`Run ${taskId} has no artifact "${path}"; artifacts/list lists its artifacts.`);
  return store.stream(row.digest);
}

export interface ArtifactEntry {
  /** Relative to the listed directory. */
  path: string;
  isDir: boolean;
  size: number | null;
}

/** The files and directories directly under `dir` ('' for the root). */
export async function listArtifacts(db: Db, caller: Caller, taskId: string, rawDir: string): Promise<{ tracked: Tracked; entries: ArtifactEntry[] }> {
  const dir = artifactPath(rawDir, { root: true });
  const tracked = await findTracked(db, caller, taskId);
  const prefix = dir ? `${dir}/` : '';
  const escaped = prefix.replace(/[\\%_]/g, (c) => `\\${c}`);
  const rows = await db
    .select({ path: runArtifacts.path, size: runArtifacts.size })
    .from(runArtifacts)
    .where(and(eq(runArtifacts.taskId, await filesTaskOf(db, tracked.task)), like(runArtifacts.path, `${escaped}%`)))
    .orderBy(asc(runArtifacts.path));
  return { tracked, entries: entriesUnder(rows, prefix) };
}

/** `prefix` with LIKE's wildcards escaped, for `like(column, escaped + '%')`. */
export const likePrefix = (prefix: string) => prefix.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The files and directories directly under `prefix` (a directory path ending in `/`, or '') of these sorted rows. */
export function entriesUnder(rows: { path: string; size: number }[], prefix: string): ArtifactEntry[] {
  const entries = new Map<string, ArtifactEntry>();
  for (const row of rows) {
    const rest = row.path.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash < 0) entries.set(rest, { path: rest, isDir: false, size: row.size });
    else if (!entries.has(rest.slice(0, slash))) entries.set(rest.slice(0, slash), { path: rest.slice(0, slash), isDir: true, size: null });
  }
  return [...entries.values()];
}

// Who may read and log into a tracked task (an MLflow run: an external run's one task, or a module task logging
// from inside). What a run logged is run data: a caller that may not read the run's domain's run data is answered
// exactly as if the run did not exist. Writes need more: the run's creator or an admin (with `start` on runs of
// that domain), or the task's own token (MLFLOW_TRACKING_TOKEN inside the task) while its attempt runs. Every
// tracking read (search, compare, MLflow routes) starts from the domains a caller may read run data of.
import { subject } from '@casl/ability';
import { eq } from 'drizzle-orm';
import { type AppAbility, isAdmin } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { isUuid } from '../db/uuid';
import { AtelierError, badInput, forbidden } from '../errors';
import { type Domain, domains } from '../vocabulary';

export interface Caller {
  identity: Identity;
  ability: AppAbility;
  /** Set for a task's own token: it reaches that task (and attempt) only. */
  task: { id: string; attempt: number } | null;
}

export interface Tracked {
  run: Run;
  task: Task;
}

/** The one answer for a run that is missing or that the caller may not read. */
export const noRun = (id: string) =>
  new AtelierError('NOT_FOUND', `No run ${id} that you may read: check the run id (an MLflow run_id is the Atelier task id).`);

/** The domains where the ability reads a run's data fields (its role, grants and token scopes all count). */
export const runDataDomains = (ability: AppAbility): Domain[] => domains.filter((domain) => ability.can('read', subject('Run', { domain }), 'parameters'));

/** Domains whose run data the caller may read (search is limited to them); a task's own token searches nothing. */
export function readableDataDomains(caller: Caller): Domain[] {
  if (caller.task) return [];
  return runDataDomains(caller.ability);
}

/** Whether the caller may read what the run logged. */
export function mayRead(caller: Caller, tracked: Tracked): boolean {
  if (caller.task) return caller.task.id === tracked.task.id;
  return caller.ability.can('read', subject('Run', { ...tracked.run }), 'parameters');
}

/** The task (kind external or module) and its run, when the caller may read it; NOT_FOUND otherwise. */
export async function findTracked(db: Db | Tx, caller: Caller, taskId: string, options: { lock?: boolean } = {}): Promise<Tracked> {
  if (!isUuid(taskId)) throw noRun(taskId);
  const query = db.select().from(tasks).where(eq(tasks.id, taskId));
  const [seen] = await query;
  if (!seen || (seen.kind !== 'external' && seen.kind !== 'module')) throw noRun(taskId);
  // Locking: the run's row before its task's, as the orchestrator takes them (a cancel, a result: the run, then its
  // tasks) and as the live events this write stores need it (their numbers are the run's). Task first deadlocked with
  // a cancel of the run. A task never moves to another run, so the unlocked read names the right one.
  const runQuery = db.select().from(runs).where(eq(runs.id, seen.runId));
  const [run] = options.lock ? await runQuery.for('no key update') : await runQuery;
  const task = options.lock ? ((await query.for('update'))[0] ?? seen) : seen;
  if (!run) throw noRun(taskId);
  const tracked = { run, task };
  if (!mayRead(caller, tracked)) throw noRun(taskId);
  return tracked;
}

/**
 * Refuses a caller that may change nothing over MLflow (a viewer's token, one scoped to reading): not a task's own
 * token, and neither logs runs (start:Run) nor changes the registry (publish:Namespace). Asked from the token alone,
 * before a write's body is read; each write checks its own rights on what it names afterwards.
 */
export function assertMayWriteSomething(caller: Caller): void {
  if (caller.task || caller.ability.can('start', 'Run') || caller.ability.can('publish', 'Namespace')) return;
  throw forbidden(
    'This token may change nothing over the MLflow API (a viewer’s, or one scoped to reading): log with a member’s token, or one with start:Run (runs, experiments) or publish:Namespace (the model registry).',
  );
}

/** Refuses a write the caller may not make (after `findTracked`: the run is readable, so saying why leaks nothing). */
export function assertMayLog(caller: Caller, tracked: Tracked, options: { deleted?: boolean } = {}): void {
  const { run, task } = tracked;
  if (caller.task) {
    if (caller.task.id !== task.id || caller.task.attempt !== task.attempt || (task.status !== 'RUNNING' && task.status !== 'QUEUED'))
      throw forbidden(`This task token may log into task ${caller.task.id} only while that attempt runs.`);
  } else {
    const mine = isAdmin(caller.ability) || (run.createdBy !== null && run.createdBy === caller.identity.id);
    if (!mine || !caller.ability.can('start', subject('Run', { domain: run.domain })))
      throw forbidden(`Only the run's creator (or an admin) may log into run ${task.id}, with a token that may start runs (start:Run).`);
  }
  if (run.deletedAt && !options.deleted) throw badInput(`Run ${task.id} is deleted: restore it (runs/restore) before logging into it.`);
}

/**
 * Refuses files a caller may not put into the task: `assertMayLog`, and a task that ran module code takes files (its
 * artifacts, a model logged from it) from its own token only. A model version registered from them carries that
 * task's lineage (its module, inputs, the columns it read, its cache key), so they must be what the module wrote; a
 * person adding or replacing one after the fact (its creator, an admin) would pass off their bytes as the module's.
 * Metrics and tags stay open to the run's creator (an evaluation logged into a finished run).
 */
export function assertMayWriteFiles(caller: Caller, tracked: Tracked, options: { deleted?: boolean } = {}): void {
  assertMayLog(caller, tracked, options);
  if (!caller.task && tracked.task.kind === 'module')
    throw forbidden(
      `Task ${tracked.task.id} ran module code: its files are what its module wrote (ATELIER_ARTIFACTS_DIR, or MLflow from inside it), which a model registered from it vouches for. Log your files into a run of your own (runs/create, mlflow.start_run() without a run id).`,
    );
}

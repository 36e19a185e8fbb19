// Runs logged from outside a workflow (a notebook, a script, an MLflow client): trigger EXTERNAL, in the
// experimentation domain, with one task of kind `external` (node `main`) that holds what was logged. The orchestrator
// never dispatches, sweeps or settles such a task (it looks at module tasks only): the run ends when its client says.
import { subject } from '@casl/ability';
import { eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { type Experiment, experiments, runTags } from '../db/tables/tracking';
import { isUuid } from '../db/uuid';
import { badInput, conflict, forbidden, notFound } from '../errors';
import { assertOwns, ownerOf } from '../teams/ownership';
import type { RunStatus } from '../vocabulary';
import { assertMayLog, type Caller, findTracked, type Tracked } from './access';
import { assertMayWriteExperiments, checkExperimentTags, experimentName } from './experiments';
import { type LiveFeed, statusEvents, withLiveEvents } from './live';
import { checkParams, checkTags, logParams, setTags } from './logging';

/** MLflow's default experiment ("0"): created by name on first use. */
export const DEFAULT_EXPERIMENT = 'Default';

export interface StartExternalRun {
  /** An experiment id or name; default: the Default experiment. A name that does not exist yet is created. */
  experiment?: string | null;
  name?: string | null;
  tags?: Record<string, string>;
  parameters?: Record<string, string>;
  startedAt?: Date;
}

/**
 * The experiment by id or name. `keyShare` (a run about to be made in it): its row is read FOR KEY SHARE, as the run's
 * foreign key takes it anyway, so a delete or rename in flight (which holds the row FOR UPDATE) is waited for and its
 * outcome read, and a later one waits for the run's transaction: a run never lands in an experiment deleted meanwhile.
 */
export async function findExperiment(db: Db | Tx, ref: string, options: { keyShare?: boolean } = {}): Promise<Experiment | null> {
  const locked = <Q extends { for(strength: 'key share'): Q }>(query: Q) => (options.keyShare ? query.for('key share') : query);
  const byId = isUuid(ref) ? await locked(db.select().from(experiments).where(eq(experiments.id, ref)).$dynamic()) : [];
  if (byId[0]) return byId[0];
  const [byName] = await locked(
    db
      .select()
      .from(experiments)
      .where(eq(experiments.name, ref === '0' ? DEFAULT_EXPERIMENT : ref))
      .$dynamic(),
  );
  return byName ?? null;
}

/** Creates a named experiment; CONFLICT when the name is taken. */
export async function createExperiment(db: Db | Tx, caller: Caller, input: { name: string; tags?: Record<string, string> }): Promise<Experiment> {
  const name = experimentName(input.name);
  checkExperimentTags(Object.entries(input.tags ?? {}).map(([key, value]) => ({ key, value })));
  assertMayWriteExperiments(caller);
  const [made] = await db
    .insert(experiments)
    .values({ name, createdBy: caller.identity.id, tags: input.tags ?? {} })
    .onConflictDoNothing()
    .returning();
  if (!made) throw conflict(`An experiment named "${name}" already exists: use it (get-by-name), or pick another name.`);
  return made;
}

/**
 * The experiment a new run goes into. A run in an experiment is part of what its owners read there (its best run, its
 * comparisons, a workflow's history), so, as for changing it (experiment-changes.ts), only its team's writing members,
 * its creator when it has no team, and admins add runs to it; Default, where runs that name none go, is everyone's.
 */
async function experimentFor(tx: Tx, caller: Caller, ref: string | null | undefined): Promise<Experiment> {
  if (ref && ref !== '0') {
    const found = await findExperiment(tx, ref, { keyShare: true });
    if (!found) throw notFound(`No experiment ${ref}: create it first (experiments/create), or name an existing one.`);
    if (found.name !== DEFAULT_EXPERIMENT) await assertOwns(tx, ownerOf(caller.identity, caller.ability), found, `Experiment "${found.name}"`, 'log runs into');
    if (found.deletedAt) throw badInput(`Experiment ${found.name} is deleted: restore it or log into another one.`);
    return found;
  }
  await tx.insert(experiments).values({ name: DEFAULT_EXPERIMENT, createdBy: caller.identity.id }).onConflictDoNothing();
  return (await findExperiment(tx, DEFAULT_EXPERIMENT))!;
}

/** Opens an external run in an experiment, RUNNING, with its tags and parameters; returns it with its one task. */
export async function startExternalRun(db: Db, feed: LiveFeed, caller: Caller, input: StartExternalRun): Promise<Tracked> {
  if (caller.task) throw forbidden('A task token logs into its own task only; it may not open runs.');
  if (!caller.ability.can('start', subject('Run', { domain: 'experimentation' })))
    throw forbidden('Opening a run needs a role that may start runs in the experimentation domain (a member, or a token with start:Run).');
  const tags = input.tags ?? {};
  const parameters = input.parameters ?? {};
  checkTags(Object.entries(tags).map(([key, value]) => ({ key, value })));
  checkParams(Object.entries(parameters).map(([key, value]) => ({ key, value })));
  const name = input.name ?? tags['mlflow.runName'] ?? null;
  if (name !== null && name.length > 250) throw badInput('A run name is at most 250 characters.');
  const at = input.startedAt ?? new Date();
  return withLiveEvents(db, feed, async (tx, emit) => {
    const experiment = await experimentFor(tx, caller, input.experiment);
    const [run] = await tx
      .insert(runs)
      .values({
        experimentId: experiment.id,
        name,
        status: 'RUNNING',
        trigger: 'EXTERNAL',
        domain: 'experimentation',
        parameters,
        createdBy: caller.identity.id,
        startedAt: at,
      })
      .returning();
    const [task] = await tx
      .insert(tasks)
      .values({
        runId: run!.id,
        node: 'main',
        kind: 'external',
        status: 'RUNNING',
        attempt: 1,
        timeoutMs: 0,
        pool: 'external',
        executor: 'external',
        startedAt: at,
      })
      .returning();
    const tracked = { run: run!, task: task! };
    await logParams(
      tx,
      tracked,
      Object.entries(parameters).map(([key, value]) => ({ key, value })),
    );
    await setTags(
      tx,
      caller,
      tracked,
      Object.entries(tags).map(([key, value]) => ({ key, value })),
    );
    emit(...statusEvents(tracked));
    return tracked;
  });
}

/** MLflow's run statuses and what each is here. */
export const endStatuses = { FINISHED: 'SUCCEEDED', FAILED: 'FAILED', KILLED: 'CANCELLED' } as const satisfies Record<string, RunStatus>;
export type EndStatus = keyof typeof endStatuses;

/**
 * Updates an external run: its name, and its status (ending it with FINISHED/FAILED/KILLED, or RUNNING again).
 * A module task's status is the orchestrator's: for one, only the name of its run changes.
 */
export async function updateTrackedRun(
  db: Db,
  feed: LiveFeed,
  caller: Caller,
  taskId: string,
  input: { status?: string | null; endedAt?: Date | null; name?: string | null },
): Promise<Tracked> {
  if (input.status && input.status !== 'RUNNING' && input.status !== 'SCHEDULED' && !(input.status in endStatuses))
    throw badInput(`status must be one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED (got "${input.status}").`);
  if (input.name && input.name.length > 250) throw badInput('A run name is at most 250 characters.');
  return withLiveEvents(db, feed, async (tx, emit) => {
    const tracked = await findTracked(tx, caller, taskId, { lock: true });
    assertMayLog(caller, tracked);
    let { run, task } = tracked;
    if (input.name) [run] = (await tx.update(runs).set({ name: input.name }).where(eq(runs.id, run.id)).returning()) as [Run];
    if (task.kind === 'external' && input.status && input.status !== 'SCHEDULED') {
      const ended = input.status !== 'RUNNING';
      const status: RunStatus = ended ? endStatuses[input.status as EndStatus] : 'RUNNING';
      const finishedAt = ended ? (input.endedAt ?? new Date()) : null;
      [task] = (await tx.update(tasks).set({ status, finishedAt }).where(eq(tasks.id, task.id)).returning()) as [Task];
      [run] = (await tx.update(runs).set({ status, finishedAt }).where(eq(runs.id, run.id)).returning()) as [Run];
      emit(...statusEvents({ run, task }));
    }
    return { run, task };
  });
}

/** Soft-deletes (or restores) the run of a tracked task: hidden from searches, restorable. */
export async function setRunDeleted(db: Db, caller: Caller, taskId: string, deleted: boolean): Promise<Tracked> {
  return db.transaction(async (tx) => {
    const tracked = await findTracked(tx, caller, taskId, { lock: true });
    assertMayLog(caller, tracked, { deleted: true });
    if (caller.task) throw forbidden('A task token may not delete or restore runs.');
    const [run] = await tx
      .update(runs)
      .set({ deletedAt: deleted ? sql`coalesce(${runs.deletedAt}, now())` : null })
      .where(eq(runs.id, tracked.run.id))
      .returning();
    return { run: run!, task: tracked.task };
  });
}

/** The tags of runs, by run id. */
export async function tagsOfRun(db: Db | Tx, runId: string): Promise<Record<string, string>> {
  const rows = await db.select().from(runTags).where(eq(runTags.runId, runId));
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** The task an Atelier run logs into from outside: an external run's one task. NOT_FOUND for a run the caller may not read. */
export async function externalTaskOf(db: Db | Tx, caller: Caller, runId: string): Promise<string> {
  const found = isUuid(runId) ? await db.select().from(tasks).where(eq(tasks.runId, runId)) : [];
  const task = found.find((t) => t.kind === 'external') ?? found[0];
  if (!task) throw notFound(`No run ${runId} that you may read; \`atelier run list\` shows the recent ones.`);
  const tracked = await findTracked(db, caller, task.id).catch(() => {
    throw notFound(`No run ${runId} that you may read; \`atelier run list\` shows the recent ones.`);
  });
  if (tracked.task.kind !== 'external')
    throw badInput(`Run ${runId} is a workflow run: its tasks log from inside (MLflow's API with the task's MLFLOW_RUN_ID), not through these mutations.`);
  return task.id;
}

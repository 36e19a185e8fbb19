// Experiments: a workflow's own (made with its first run, named after it) and named ones (made by a caller, e.g. an
// MLflow client or a notebook). Every run belongs to exactly one.
import { subject } from '@casl/ability';
import { and, asc, desc, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { builtOnce } from '../db/prepared';
import { runs, tasks } from '../db/tables/runs';
import { type Experiment, experiments } from '../db/tables/tracking';
import { badInput, conflict, forbidden } from '../errors';
import type { Caller } from './access';
import { checkKey, type KeyValue } from './logging';

/** A workflow's experiment, read where the workflow's read did not join it (clones, reruns, nested runs): built once. */
const experimentOfWorkflow = builtOnce<{ workflowId: string }>()((db) =>
  db
    .select()
    .from(experiments)
    .where(eq(experiments.workflowId, sql.placeholder('workflowId'))),
);

/** The workflow's own experiment, made on first use; named after the workflow (suffixed if a named one took that). */
export async function workflowExperiment(
  db: Db | Tx,
  workflow: { id: string; name: string; teamId: string | null; createdBy: string | null },
  /** The workflow's experiment as already read (startRun's read of the workflow joins it), null if none; absent: read now. */
  read?: Experiment | null,
): Promise<Experiment> {
  const found = read !== undefined ? read : (await experimentOfWorkflow(db, { workflowId: workflow.id }))[0];
  if (found) return found;
  for (const name of [workflow.name, `${workflow.name} (workflow)`, `${workflow.name} (workflow ${workflow.id.slice(0, 8)})`]) {
    const [made] = await db
      .insert(experiments)
      .values({ name, workflowId: workflow.id, teamId: workflow.teamId, createdBy: workflow.createdBy })
      .onConflictDoNothing()
      .returning();
    if (made) return made;
    // Another start made it meanwhile: that one is ours.
    const [raced] = await experimentOfWorkflow(db, { workflowId: workflow.id });
    if (raced) return raced;
  }
  throw new Error(`no free experiment name for workflow ${workflow.name}`);
}

/**
 * The role making or changing an experiment needs (before ownership, for a change): one that may log runs, as naming
 * a new experiment in a run does; never a task's token. A viewer or a token scoped to reading made them over MLflow.
 */
export function assertMayWriteExperiments(caller: Caller): void {
  if (caller.task) throw forbidden('A task token may not make or change experiments.');
  if (!caller.ability.can('start', subject('Run', { domain: 'experimentation' })))
    throw forbidden('Making or changing an experiment needs a role that may log runs (a member, or a token with start:Run).');
}

/**
 * Reading experiments over MLflow, as the `experiments` query does: a role that reads them and, for a scoped token, a
 * scope that names them (a CI token that publishes modules listed every experiment). A task's own token reads its
 * run's experiment alone (`taskExperimentId`): GraphQL gives it nothing, and other teams' experiments (their names,
 * tags, who made them) are not its task's business.
 */
export function assertMayReadExperiments(caller: Caller): void {
  if (caller.task || caller.ability.can('read', 'Experiment')) return;
  throw forbidden('Reading experiments needs a role that reads them and, for a scoped token, the scope read:Experiment.');
}

/** The one experiment a task's own token reads (its run's), or undefined for any other caller (it reads them all). */
export async function taskExperimentId(db: Db | Tx, caller: Caller): Promise<string | null | undefined> {
  if (!caller.task) return undefined;
  const [row] = await db.select({ experimentId: runs.experimentId }).from(tasks).innerJoin(runs, eq(runs.id, tasks.runId)).where(eq(tasks.id, caller.task.id));
  return row?.experimentId ?? null;
}

/** MLflow's limits on an experiment's name and tags (mlflow/utils/validation.py). */
export const EXPERIMENT_LIMITS = { name: 500, tagValue: 5000, tagsPerRequest: 100 } as const;

/** An experiment's name as MLflow takes it: trimmed, 1 to 500 characters. */
export function experimentName(raw: unknown): string {
  const name = typeof raw === 'string' ? raw.trim() : '';
  if (!name || name.length > EXPERIMENT_LIMITS.name) throw badInput(`An experiment name must be 1 to ${EXPERIMENT_LIMITS.name} characters.`);
  return name;
}

/** Experiment tags within MLflow's limits (keys as run tags' keys, values up to 5,000 characters). */
export function checkExperimentTags(tags: readonly KeyValue[]): void {
  if (tags.length > EXPERIMENT_LIMITS.tagsPerRequest)
    throw badInput(`At most ${EXPERIMENT_LIMITS.tagsPerRequest} experiment tags at once (got ${tags.length}).`);
  tags.forEach(({ key, value }, i) => {
    checkKey('tags', key, i);
    if (typeof value !== 'string') throw badInput(`tags[${i}] "${key}": its value must be a string.`);
    if (value.length > EXPERIMENT_LIMITS.tagValue)
      throw badInput(`tags[${i}] "${key}": its value is ${value.length} characters; at most ${EXPERIMENT_LIMITS.tagValue}.`);
  });
}

/** The longest experiment name accepted (MLflow has no limit; a name is a label, not a document). */
export const MAX_EXPERIMENT_NAME = 200;

/**
 * The experiment named `name`, made on first use: any caller who may start a run may name a new one (it is a label
 * that groups runs; it holds no data of its own), recorded as its creator. A deleted one is not reused silently.
 */
export async function namedExperiment(db: Db | Tx, name: string, createdBy: string | null): Promise<Experiment> {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > MAX_EXPERIMENT_NAME)
    throw badInput(`experiment must be a name of 1 to ${MAX_EXPERIMENT_NAME} characters; got ${trimmed.length}.`, [
      { path: 'experiment', message: 'bad length' },
    ]);
  const found = await experimentByName(db, trimmed);
  if (found?.deletedAt) throw conflict(`Experiment "${trimmed}" is deleted; restore it or name another.`);
  if (found) return found;
  const [made] = await db.insert(experiments).values({ name: trimmed, createdBy }).onConflictDoNothing().returning();
  if (made) return made;
  const raced = await experimentByName(db, trimmed);
  if (!raced) throw conflict(`Experiment "${trimmed}" could not be made; try again.`);
  return raced;
}

/**
 * The experiment named `name`, for a run about to be made in it: read FOR KEY SHARE (as the run's foreign key takes
 * it anyway), so a delete or rename in flight is waited for and its outcome read, and a later one waits for the run.
 */
export async function experimentByName(db: Db | Tx, name: string): Promise<Experiment | null> {
  const [found] = await db.select().from(experiments).where(eq(experiments.name, name)).for('key share');
  return found ?? null;
}

export const experimentsByIds = (db: Db, ids: string[]): Promise<Experiment[]> => db.select().from(experiments).where(inArray(experiments.id, ids));

/** One page of experiments by name (deleted ones too with `deleted`); `after` is the name of the last one of the previous page. */
export function experimentsPage(db: Db, page: { after?: string; before?: string; limit: number; inverted: boolean; deleted?: boolean }): Promise<Experiment[]> {
  return db
    .select()
    .from(experiments)
    .where(
      and(
        page.deleted ? undefined : isNull(experiments.deletedAt),
        page.after !== undefined ? gt(experiments.name, page.after) : undefined,
        page.before !== undefined ? lt(experiments.name, page.before) : undefined,
      ),
    )
    .orderBy(page.inverted ? desc(experiments.name) : asc(experiments.name))
    .limit(page.limit);
}

/** How many runs each experiment groups (deleted runs left out), by experiment id. */
export async function runCounts(db: Db, ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await db
    .select({ id: runs.experimentId, count: sql<number>`count(*)::int` })
    .from(runs)
    .where(and(inArray(runs.experimentId, [...ids]), isNull(runs.deletedAt)))
    .groupBy(runs.experimentId);
  return new Map(rows.map((r) => [r.id!, r.count]));
}

// MLflow 3's logged models: created in an experiment (from a source run, or outside any run), given files in their
// own artifact space while PENDING, then finalized READY (their files are final from then on) or FAILED. Who may
// read one follows its source run (tracking's access rules: a run the caller may not read makes its models missing
// too); one logged outside a run is run data of its domain, written by its creator. A model the caller may not read
// is answered exactly like a missing one. Its metrics are its source run's.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { subject } from '@casl/ability';
import { and, asc, eq, inArray, like, sql } from 'drizzle-orm';
import type { ObjectStore } from '../artifacts/store';
import { isAdmin } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { type LoggedModel, type LoggedModelStatus, loggedModelArtifacts, loggedModels } from '../db/tables/logged-models';
import { modelVersions, registeredModels } from '../db/tables/registry';
import { metricPoints, metricSummaries } from '../db/tables/tracking';
import { isUuid } from '../db/uuid';
import { AtelierError, badInput, conflict, forbidden, notFound } from '../errors';
import type { ModelFile } from '../vocabulary';
import { assertMayLog, assertMayWriteFiles, type Caller, findTracked, type Tracked } from './access';
import { type ArtifactEntry, artifactPath, entriesUnder, likePrefix } from './artifacts';
import { findExperiment } from './external-runs';
import { checkParams, checkTags, type KeyValue, type MetricInput } from './logging';
import { jsonFloat } from './mlflow';

const idRe = /^m-[0-9a-f]{32}$/;

/** The one answer for a logged model that is missing, deleted, or that the caller may not read. */
export const noModel = (id: string) =>
  new AtelierError('NOT_FOUND', `No logged model ${id} that you may read: check the model id (the m-… of its models:/ URI).`);

export interface Found {
  model: LoggedModel;
  /** Its source run, when it has one. */
  tracked: Tracked | null;
}

export const artifactUriOf = (m: Pick<LoggedModel, 'id' | 'experimentId'>) => `mlflow-artifacts:/${m.experimentId}/models/${m.id}/artifacts`;

/** The logged model, when the caller may read it; NOT_FOUND otherwise. */
export async function findLoggedModel(db: Db | Tx, caller: Caller, id: string, options: { lock?: boolean; experimentId?: string } = {}): Promise<Found> {
  if (!idRe.test(id)) throw noModel(id);
  const query = db.select().from(loggedModels).where(eq(loggedModels.id, id));
  const [model] = options.lock ? await query.for('update') : await query;
  if (!model || model.deletedAt || (options.experimentId !== undefined && options.experimentId !== model.experimentId)) throw noModel(id);
  if (!model.taskId) {
    if (caller.task || !caller.ability.can('read', subject('Run', { domain: model.domain }), 'parameters')) throw noModel(id);
    return { model, tracked: null };
  }
  try {
    return { model, tracked: await findTracked(db, caller, model.taskId) };
  } catch (error) {
    if (error instanceof AtelierError && error.code === 'NOT_FOUND') throw noModel(id);
    throw error;
  }
}

/** Refuses a write the caller may not make: as to its source run, or (logged outside a run) its creator's or an admin's. */
/** `files`: a write of the model's files, which a model logged from a module's task takes from that task only. */
function assertMayWrite(caller: Caller, { model, tracked }: Found, options: { files?: boolean } = {}): void {
  if (tracked) {
    if (options.files) assertMayWriteFiles(caller, tracked);
    else assertMayLog(caller, tracked);
    return;
  }
  if (caller.task) throw forbidden(`A task token writes only the models its own run logged; ${model.id} was logged outside a run.`);
  const mine = isAdmin(caller.ability) || (model.createdBy !== null && model.createdBy === caller.identity.id);
  if (!mine || !caller.ability.can('start', subject('Run', { domain: model.domain })))
    throw forbidden(`Only the creator of logged model ${model.id} (or an admin) may change it, with a token that may start runs (start:Run).`);
}

export interface CreateInput {
  experimentId: string;
  name?: string;
  modelType?: string;
  sourceRunId?: string;
  params: KeyValue[];
  tags: KeyValue[];
}

export async function createLoggedModel(db: Db, caller: Caller, input: CreateInput): Promise<LoggedModel> {
  checkParams(input.params);
  checkTags(input.tags);
  if (input.name && input.name.length > 250) throw badInput('A logged model name is at most 250 characters.');
  if (input.modelType && input.modelType.length > 100) throw badInput('model_type is at most 100 characters (e.g. Classifier, LLM, Agent).');
  const experiment = await findExperiment(db, input.experimentId);
  if (!experiment) throw notFound(`No experiment ${input.experimentId}: create it first (experiments/create), or name an existing one.`);
  if (experiment.deletedAt) throw badInput(`Experiment ${experiment.name} is deleted: restore it or log the model into another one.`);
  let tracked: Tracked | null = null;
  if (input.sourceRunId) {
    tracked = await findTracked(db, caller, input.sourceRunId);
    assertMayLog(caller, tracked);
    if (tracked.run.experimentId !== experiment.id)
      throw badInput(
        `Run ${input.sourceRunId} is in experiment ${tracked.run.experimentId}, not ${experiment.id}: log the model into its run's experiment (or leave source_run_id out).`,
      );
  } else {
    if (caller.task) throw forbidden('A task token logs models from its own run: pass source_run_id (MLflow does so inside the run).');
    if (!caller.ability.can('start', subject('Run', { domain: 'experimentation' })))
      throw forbidden('Logging a model needs a role that may start runs in the experimentation domain (a member, or a token with start:Run).');
  }
  const hex = randomBytes(16).toString('hex');
  const [made] = await db.transaction(async (tx) => {
    // The experiment held FOR KEY SHARE until the model is in: a delete under way is waited for, and refuses it.
    if ((await findExperiment(tx, experiment.id, { keyShare: true }))?.deletedAt)
      throw badInput(`Experiment ${experiment.name} is deleted: restore it or log the model into another one.`);
    return tx
      .insert(loggedModels)
      .values({
        id: `m-${hex}`,
        experimentId: experiment.id,
        name: input.name || `model-${hex.slice(0, 8)}`,
        taskId: tracked?.task.id ?? null,
        runId: tracked?.run.id ?? null,
        domain: tracked?.run.domain ?? 'experimentation',
        modelType: input.modelType || null,
        params: Object.fromEntries(input.params.map((p) => [p.key, p.value])),
        tags: Object.fromEntries(input.tags.map((t) => [t.key, t.value])),
        createdBy: caller.identity.id,
      })
      .returning();
  });
  return made!;
}

/** Changes a model in a transaction holding its row, after the caller's right to write it is checked. */
async function change(db: Db, caller: Caller, id: string, work: (tx: Tx, found: Found) => Promise<Partial<LoggedModel> | null>): Promise<LoggedModel> {
  return db.transaction(async (tx) => {
    const found = await findLoggedModel(tx, caller, id, { lock: true });
    assertMayWrite(caller, found);
    const set = await work(tx, found);
    if (!set) return found.model;
    const [updated] = await tx
      .update(loggedModels)
      .set({ ...set, updatedAt: new Date() })
      .where(eq(loggedModels.id, id))
      .returning();
    return updated!;
  });
}

const finalStatuses: Record<string, LoggedModelStatus> = {
  LOGGED_MODEL_READY: 'READY',
  READY: 'READY',
  LOGGED_MODEL_UPLOAD_FAILED: 'FAILED',
  UPLOAD_FAILED: 'FAILED',
  FAILED: 'FAILED',
};

/** PENDING → READY (its files are final) or FAILED; once only. */
export async function finalizeLoggedModel(db: Db, caller: Caller, id: string, status: string): Promise<LoggedModel> {
  const to = finalStatuses[status.toUpperCase()];
  if (!to) throw badInput(`status must be LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED (got "${status}").`);
  return change(db, caller, id, async (_tx, { model }) => {
    if (model.status !== 'PENDING')
      throw conflict(`Logged model ${id} is already ${model.status}: a model is finalized once (its files are final); log a new model to change them.`);
    return { status: to };
  });
}

/** MLflow's runs/outputs: the run output the model at `step` (only a model logged from that run: its source run). */
export async function logModelOutput(db: Db, caller: Caller, runId: string, id: string, step: number): Promise<void> {
  await change(db, caller, id, async (_tx, { model }) => {
    if (model.taskId !== runId)
      throw badInput(
        `Logged model ${id} was not logged from run ${runId}: Atelier links a logged model to its source run only (create it with source_run_id).`,
      );
    return { outputStep: step };
  });
}

export async function deleteLoggedModel(db: Db, caller: Caller, id: string): Promise<void> {
  await change(db, caller, id, async () => ({ deletedAt: new Date() }));
}

export async function setLoggedModelTags(db: Db, caller: Caller, id: string, tags: KeyValue[]): Promise<LoggedModel> {
  checkTags(tags);
  return change(db, caller, id, async (_tx, { model }) => ({ tags: { ...model.tags, ...Object.fromEntries(tags.map((t) => [t.key, t.value])) } }));
}

export async function deleteLoggedModelTag(db: Db, caller: Caller, id: string, key: string): Promise<void> {
  await change(db, caller, id, async (_tx, { model }) => {
    if (!Object.hasOwn(model.tags, key)) throw notFound(`Logged model ${id} has no tag "${key}"; logged-models/get shows its tags.`);
    const { [key]: _gone, ...tags } = model.tags;
    return { tags };
  });
}

/** Params are immutable: the same value again is fine, another value is refused (as on runs). */
export async function logLoggedModelParams(db: Db, caller: Caller, id: string, params: KeyValue[]): Promise<void> {
  checkParams(params);
  await change(db, caller, id, async (_tx, { model }) => {
    for (const p of params)
      if (Object.hasOwn(model.params, p.key) && model.params[p.key] !== p.value)
        throw badInput(`Param "${p.key}" of logged model ${id} is already "${model.params[p.key]}": params are immutable (log a new model).`);
    return { params: { ...model.params, ...Object.fromEntries(params.map((p) => [p.key, p.value])) } };
  });
}

// ---- files ----

/** A model, and the experiment a path to its files names (checked against its own). */
export interface ModelAt {
  id: string;
  experimentId?: string;
}

/** `experimentId`: the experiment its artifact_uri names (another one answers as a missing model). */
/** Refuses a file of a logged model the caller may not write, or whose files are final. */
function checkPut(caller: Caller, found: Found): void {
  assertMayWrite(caller, found, { files: true });
  if (found.model.status !== 'PENDING')
    throw conflict(`Logged model ${found.model.id} is ${found.model.status}: its files are final once finalized; log a new model to change them.`);
}

/** Refuses a file the caller may not put into the logged model (its path, the model, its state): before its bytes are read. */
export async function assertMayPutModelArtifact(db: Db, caller: Caller, at: ModelAt, rawPath: string): Promise<void> {
  artifactPath(rawPath);
  checkPut(caller, await findLoggedModel(db, caller, at.id, { experimentId: at.experimentId }));
}

export async function putModelArtifact(db: Db, store: ObjectStore, caller: Caller, at: ModelAt, rawPath: string, bytes: Buffer): Promise<void> {
  const { id } = at;
  const path = artifactPath(rawPath);
  const check = (found: Found) => checkPut(caller, found);
  // Checked before the bytes are stored, and again in the transaction that records them.
  await assertMayPutModelArtifact(db, caller, at, path);
  const digest = await store.put(bytes);
  await db.transaction(async (tx) => {
    check(await findLoggedModel(tx, caller, id, { lock: true }));
    await tx
      .insert(loggedModelArtifacts)
      .values({ modelId: id, path, digest, size: bytes.length })
      .onConflictDoUpdate({ target: [loggedModelArtifacts.modelId, loggedModelArtifacts.path], set: { digest, size: bytes.length, at: new Date() } });
    await tx.update(loggedModels).set({ updatedAt: new Date() }).where(eq(loggedModels.id, id));
  });
}

export async function getModelArtifact(db: Db, store: ObjectStore, caller: Caller, at: ModelAt, rawPath: string): Promise<{ size: number; body: Readable }> {
  const path = artifactPath(rawPath);
  const { id, experimentId } = at;
  await findLoggedModel(db, caller, id, { experimentId });
  const [row] = await db
    .select()
    .from(loggedModelArtifacts)
    .where(and(eq(loggedModelArtifacts.modelId, id), eq(loggedModelArtifacts.path, path)));
  if (!row) throw notFound(`Logged model ${id} has no file "${path}"; logged-models/list-artifacts lists its files.`);
  return store.stream(row.digest);
}

/** The files and directories directly under `dir` ('' for the root). */
export async function listModelArtifacts(db: Db, caller: Caller, at: ModelAt, rawDir: string): Promise<{ found: Found; entries: ArtifactEntry[] }> {
  const dir = artifactPath(rawDir, { root: true });
  const { id, experimentId } = at;
  const found = await findLoggedModel(db, caller, id, { experimentId });
  const prefix = dir ? `${dir}/` : '';
  const rows = await db
    .select({ path: loggedModelArtifacts.path, size: loggedModelArtifacts.size })
    .from(loggedModelArtifacts)
    .where(and(eq(loggedModelArtifacts.modelId, id), like(loggedModelArtifacts.path, `${likePrefix(prefix)}%`)))
    .orderBy(asc(loggedModelArtifacts.path));
  return { found, entries: entriesUnder(rows, prefix) };
}

/** Every file of a model, sorted by path (what a version registered from it holds). */
export async function loggedModelFiles(db: Db | Tx, id: string): Promise<ModelFile[]> {
  const rows = await db.select().from(loggedModelArtifacts).where(eq(loggedModelArtifacts.modelId, id)).orderBy(asc(loggedModelArtifacts.path));
  return rows.map((r) => ({ path: r.path, digest: r.digest, size: r.size }));
}

// ---- MLflow's view ----

const statusJson: Record<LoggedModelStatus, string> = { PENDING: 'LOGGED_MODEL_PENDING', READY: 'LOGGED_MODEL_READY', FAILED: 'LOGGED_MODEL_UPLOAD_FAILED' };
const pairs = (o: Record<string, string>) =>
  Object.entries(o)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => ({ key, value }));

/** MLflow `LoggedModel` objects of these (readable) models, in order: metrics are the source run's latest values. */
export async function loggedModelsJson(db: Db, models: LoggedModel[]) {
  if (!models.length) return [];
  const taskIds = models.flatMap((m) => (m.taskId ? [m.taskId] : []));
  const [metrics, registrations] = await Promise.all([
    taskIds.length ? db.select().from(metricSummaries).where(inArray(metricSummaries.taskId, taskIds)) : [],
    db
      .select({
        modelId: sql<string>`${modelVersions.metadata}->'mlflow'->>'model_id'`,
        namespace: registeredModels.namespace,
        name: registeredModels.name,
        version: modelVersions.version,
      })
      .from(modelVersions)
      .innerJoin(registeredModels, eq(registeredModels.id, modelVersions.modelId))
      .where(
        inArray(
          sql`${modelVersions.metadata}->'mlflow'->>'model_id'`,
          models.map((m) => m.id),
        ),
      )
      .orderBy(asc(modelVersions.createdAt)),
  ]);
  return models.map((m) => ({
    info: {
      model_id: m.id,
      experiment_id: m.experimentId,
      name: m.name,
      creation_timestamp_ms: m.createdAt.getTime(),
      last_updated_timestamp_ms: m.updatedAt.getTime(),
      artifact_uri: artifactUriOf(m),
      status: statusJson[m.status],
      ...(m.modelType ? { model_type: m.modelType } : {}),
      ...(m.taskId ? { source_run_id: m.taskId } : {}),
      ...(m.statusMessage ? { status_message: m.statusMessage } : {}),
      tags: pairs(m.tags),
      registrations: registrations.filter((r) => r.modelId === m.id).map((r) => ({ name: `${r.namespace}/${r.name}`, version: String(r.version) })),
    },
    data: {
      params: pairs(m.params),
      metrics: metrics
        .filter((s) => s.taskId === m.taskId)
        .map((s) => ({ key: s.name, value: jsonFloat(s.last), timestamp: s.lastAt.getTime(), step: s.lastStep, run_id: s.taskId, model_id: m.id })),
    },
  }));
}

/**
 * log_model links the run's metrics of its step to the model by logging them again with a `model_id`: those copies of
 * points the run already holds are left out (a model's metrics are its source run's), anything new is kept.
 */
export async function withoutModelCopies<M extends MetricInput>(db: Db, taskId: string, metrics: (M & { modelId?: string })[]): Promise<M[]> {
  const linked = metrics.filter((m) => m.modelId);
  // Not a run id: the batch is refused as a missing run where it is logged.
  if (!linked.length || !isUuid(taskId)) return metrics;
  const held = await db
    .select({ name: metricPoints.name, step: metricPoints.step, value: metricPoints.value, at: metricPoints.at })
    .from(metricPoints)
    .where(and(eq(metricPoints.taskId, taskId), inArray(metricPoints.name, [...new Set(linked.map((m) => m.key))])));
  // `${NaN}` is "NaN": a NaN point matches its copy too.
  const keyOf = (name: string, step: number, value: number, at: number) => `${name}|${step}|${value}|${at}`;
  const have = new Set(held.map((h) => keyOf(h.name, h.step, h.value, h.at.getTime())));
  return metrics.filter((m) => !m.modelId || !have.has(keyOf(m.key, m.step ?? 0, m.value, m.timestamp ?? -1)));
}

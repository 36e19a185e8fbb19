// What an MLflow run says it read (runs/log-inputs): datasets (`mlflow.log_input`, autolog's training and evaluation
// sets) and, from MLflow 3, logged models. Checked against MLflow's limits before anything is written (a request with
// one bad item writes nothing), kept once per run by dataset name and digest (or model), the tags of the first
// logging kept, as MLflow's server does; read back in the run's `inputs`.
import { and, asc, eq, getTableColumns, inArray, sql } from 'drizzle-orm';
import { type Db, retryingTransaction } from '../db/client';
import { type RunInput, runInputs } from '../db/tables/tracking';
import { badInput } from '../errors';
import { assertMayLog, type Caller, findTracked } from './access';
import { findLoggedModel } from './logged-models';

/** MLflow's limits on a dataset input (mlflow/utils/validation.py; the source type is a 36-character column there). */
export const INPUT_LIMITS = {
  datasetsPerRequest: 1000,
  modelsPerRequest: 1000,
  name: 500,
  digest: 36,
  sourceType: 36,
  source: 65_535,
  schema: 1_048_575,
  profile: 16_777_215,
  tagKey: 255,
  tagValue: 500,
  /** Atelier's, not MLflow's: what one task keeps in all (a run's inputs are read back whole, by runs/get and search). */
  perTask: 1000,
  bytesPerTask: 32 * 1024 * 1024,
} as const;

/** A dataset input as the API shows it: without its schema and profile, which may be megabytes and are shown nowhere. */
export type DeclaredDataset = Omit<RunInput, 'schema' | 'profile'>;
/** The columns of a `DeclaredDataset`. */
export const declaredColumns = (() => {
  const { schema: _schema, profile: _profile, ...shown } = getTableColumns(runInputs);
  return shown;
})();

const textBytes = (r: { source: string; schema: string | null; profile: string | null }) =>
  Buffer.byteLength(r.source) + Buffer.byteLength(r.schema ?? '') + Buffer.byteLength(r.profile ?? '');

export interface DatasetInput {
  tags: { key: string; value: string }[];
  dataset: { name: string; digest: string; source_type: string; source: string; schema?: string; profile?: string };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function text(where: string, field: string, value: unknown, max: number, required: boolean): string | undefined {
  if (value === undefined || value === null || value === '') {
    if (required) throw badInput(`${where}: ${field} is required (a non-empty string).`);
    return undefined;
  }
  if (typeof value !== 'string') throw badInput(`${where}: ${field} must be a string.`);
  if (value.length > max) throw badInput(`${where}: ${field} is ${value.length} characters long; MLflow's limit is ${max}.`);
  return value;
}

/** The request's `datasets`, checked; throws INVALID_PARAMETER_VALUE naming the first bad item. */
export function datasetInputsOf(raw: unknown): DatasetInput[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw badInput('datasets must be a list of dataset inputs ({ dataset: {...}, tags: [...] }).');
  if (raw.length > INPUT_LIMITS.datasetsPerRequest)
    throw badInput(`A log-inputs request takes at most ${INPUT_LIMITS.datasetsPerRequest} datasets (got ${raw.length}): send them in several.`);
  return raw.map((item, i) => {
    const where = `datasets[${i}]`;
    if (!isObject(item) || !isObject(item.dataset)) throw badInput(`${where}: a dataset input is { dataset: { name, digest, source_type, source }, tags }.`);
    const d = item.dataset;
    const dataset: DatasetInput['dataset'] = {
      name: text(where, 'dataset.name', d.name, INPUT_LIMITS.name, true)!,
      digest: text(where, 'dataset.digest', d.digest, INPUT_LIMITS.digest, true)!,
      source_type: text(where, 'dataset.source_type', d.source_type, INPUT_LIMITS.sourceType, true)!,
      source: text(where, 'dataset.source', d.source, INPUT_LIMITS.source, true)!,
    };
    const schema = text(where, 'dataset.schema', d.schema, INPUT_LIMITS.schema, false);
    const profile = text(where, 'dataset.profile', d.profile, INPUT_LIMITS.profile, false);
    if (schema !== undefined) dataset.schema = schema;
    if (profile !== undefined) dataset.profile = profile;
    const rawTags = item.tags ?? [];
    if (!Array.isArray(rawTags)) throw badInput(`${where}: tags must be a list of { key, value }.`);
    const tags = rawTags.map((tag, j) => {
      if (!isObject(tag)) throw badInput(`${where}.tags[${j}] must be { key, value }.`);
      return {
        key: text(`${where}.tags[${j}]`, 'key', tag.key, INPUT_LIMITS.tagKey, true)!,
        value: text(`${where}.tags[${j}]`, 'value', tag.value, INPUT_LIMITS.tagValue, true)!,
      };
    });
    return { tags, dataset };
  });
}

/** The request's `models` (MLflow 3: `[{ model_id }]`), checked. */
export function modelInputsOf(raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw badInput('models must be a list of model inputs ({ model_id }).');
  if (raw.length > INPUT_LIMITS.modelsPerRequest)
    throw badInput(`A log-inputs request takes at most ${INPUT_LIMITS.modelsPerRequest} models (got ${raw.length}): send them in several.`);
  return raw.map((item, i) => {
    if (!isObject(item)) throw badInput(`models[${i}] must be { model_id }.`);
    return text(`models[${i}]`, 'model_id', item.model_id, 200, true)!;
  });
}

/** Records a run's inputs: every logged model must be one the caller may read; what the run already has is kept as it was. */
export async function logInputs(db: Db, caller: Caller, taskId: string, datasets: DatasetInput[], models: string[]): Promise<void> {
  if (!datasets.length && !models.length) return;
  // Before the transaction: a model the caller may not read is refused as not found, and nothing is written.
  for (const id of new Set(models)) await findLoggedModel(db, caller, id);
  await retryingTransaction(db, async (tx) => {
    const tracked = await findTracked(tx, caller, taskId, { lock: true });
    assertMayLog(caller, tracked);
    const { task } = tracked;
    const rows = [
      ...datasets.map(({ dataset, tags }) => ({
        taskId: task.id,
        runId: task.runId,
        kind: 'dataset' as const,
        name: dataset.name,
        digest: dataset.digest,
        sourceType: dataset.source_type,
        source: dataset.source,
        schema: dataset.schema ?? null,
        profile: dataset.profile ?? null,
        tags,
      })),
      ...[...new Set(models)].map((id) => ({ taskId: task.id, runId: task.runId, kind: 'model' as const, name: id, digest: '', tags: [] })),
    ];
    // What the task has already is kept as it was (and a dataset twice in one request: the first one), so only the
    // rest counts against what one task keeps.
    const kept = await tx
      .select({
        kind: runInputs.kind,
        name: runInputs.name,
        digest: runInputs.digest,
        bytes: sql<number>`coalesce(octet_length(${runInputs.source}), 0) + coalesce(octet_length(${runInputs.schema}), 0) + coalesce(octet_length(${runInputs.profile}), 0)`,
      })
      .from(runInputs)
      .where(eq(runInputs.taskId, task.id));
    const seen = new Set(kept.map((r) => `${r.kind}\u0000${r.name}\u0000${r.digest}`));
    const fresh = rows.filter((r) => {
      const key = `${r.kind}\u0000${r.name}\u0000${r.digest}`;
      return !seen.has(key) && seen.add(key);
    });
    if (!fresh.length) return;
    const count = kept.length + fresh.length;
    if (count > INPUT_LIMITS.perTask)
      throw badInput(
        `A run keeps at most ${INPUT_LIMITS.perTask} inputs (datasets and models); run ${task.id} has ${kept.length}, and this request adds ${fresh.length}.`,
      );
    const bytes = kept.reduce((sum, r) => sum + Number(r.bytes), 0) + fresh.reduce((sum, r) => sum + (r.kind === 'dataset' ? textBytes(r) : 0), 0);
    if (bytes > INPUT_LIMITS.bytesPerTask)
      throw badInput(
        `A run keeps at most ${INPUT_LIMITS.bytesPerTask / 1024 / 1024} MiB of input sources, schemas and profiles; with this request run ${task.id} would have ${(bytes / 1024 / 1024).toFixed(1)} MiB.`,
      );
    await tx.insert(runInputs).values(fresh).onConflictDoNothing();
  });
}

/** Rows by task id, in their order (tasks with none left out). */
function byTask<T extends { taskId: string }>(rows: T[]): Map<string, T[]> {
  const found = new Map<string, T[]>();
  for (const row of rows) {
    const list = found.get(row.taskId);
    if (list) list.push(row);
    else found.set(row.taskId, [row]);
  }
  return found;
}

const inputsOf = (taskIds: readonly string[], kind?: RunInput['kind']) =>
  and(inArray(runInputs.taskId, [...taskIds]), kind ? eq(runInputs.kind, kind) : undefined);
const inOrder = [asc(runInputs.at), asc(runInputs.name)];

/** Each task's declared dataset inputs (without schema and profile), in the order logged, by task id. */
export async function declaredDatasetsOf(db: Db, taskIds: readonly string[]): Promise<Map<string, DeclaredDataset[]>> {
  if (!taskIds.length) return new Map();
  return byTask(
    await db
      .select(declaredColumns)
      .from(runInputs)
      .where(inputsOf(taskIds, 'dataset'))
      .orderBy(...inOrder),
  );
}

/** MLflow's `RunInputs` of each task, by task id (tasks with none left out). */
export async function runInputsOf(db: Db, taskIds: string[]): Promise<Map<string, RunInputsJson>> {
  if (!taskIds.length) return new Map();
  const rows = byTask(
    await db
      .select()
      .from(runInputs)
      .where(inputsOf(taskIds))
      .orderBy(...inOrder),
  );
  return new Map([...rows].map(([id, inputs]) => [id, inputsJson(inputs)]));
}

export type RunInputsJson = ReturnType<typeof inputsJson>;

function inputsJson(inputs: RunInput[]) {
  const datasets = inputs.filter((i) => i.kind === 'dataset');
  const models = inputs.filter((i) => i.kind === 'model');
  return {
    ...(datasets.length
      ? {
          dataset_inputs: datasets.map((d) => ({
            tags: d.tags,
            dataset: {
              name: d.name,
              digest: d.digest,
              source_type: d.sourceType ?? '',
              source: d.source ?? '',
              ...(d.schema !== null ? { schema: d.schema } : {}),
              ...(d.profile !== null ? { profile: d.profile } : {}),
            },
          })),
        }
      : {}),
    ...(models.length ? { model_inputs: models.map((m) => ({ model_id: m.name })) } : {}),
  };
}

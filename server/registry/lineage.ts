// A version's lineage and label, both ways. Forward: the producing task and run, the module versions of the run,
// the dataset versions and columns read (recorded at registration, through upstream tasks), the run's parameters,
// metrics, the task's cache key, and the datasets its MLflow client declared. Backward: the model versions a dataset version flowed into. The label is the
// join of the CURRENT labels of every column read, so raising a source column raises every model derived from it.
import { and, asc, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { datasetVersions } from '../db/tables/governance';
import { type ModelVersion, modelVersionInputs, modelVersionParents, modelVersions, registeredModels } from '../db/tables/registry';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { loggedParams, type MetricSummary, metricSummaries, runInputs } from '../db/tables/tracking';
import { type ColumnRead, columnsRead } from '../governance/model-labels';
import { type DeclaredDataset, declaredColumns } from '../tracking/inputs';

export interface Lineage {
  version: ModelVersion;
  task: Task;
  run: Run;
  moduleVersionIds: string[];
  datasets: { datasetId: string; dataset: string; version: number; digest: string | null; producedByTaskId: string | null; columns: ColumnRead[] }[];
  parameters: Record<string, unknown>;
  loggedParams: Record<string, string>;
  metrics: MetricSummary[];
  cacheKey: string | null;
  /** The model versions read upstream (a base model, a batch task's pinned model), as `namespace/name@VERSION`. */
  models: { ref: string; versionId: string; port: string; taskId: string }[];
  /** Datasets the run's MLflow client said its tasks read (runs/log-inputs): declared by the client, not governed lineage. */
  loggedDatasets: DeclaredDataset[];
}

/**
 * Everything a version came from, in a few indexed queries (no walk at read time: the walk ran at registration).
 * `columns`: the version's columns read when the caller already has them (GraphQL's `label` loads the same rows).
 */
export async function lineageOf(db: Db | Tx, version: ModelVersion, columns?: Promise<ColumnRead[]>): Promise<Lineage> {
  const [[task], [run], modules, read, params, metrics, versions, parents, inputs] = await Promise.all([
    db.select().from(tasks).where(eq(tasks.id, version.taskId)),
    db.select().from(runs).where(eq(runs.id, version.runId)),
    db
      .selectDistinct({ id: tasks.moduleVersionId })
      .from(tasks)
      .where(and(eq(tasks.runId, version.runId), isNotNull(tasks.moduleVersionId))),
    columns ?? columnsRead(db, [version.id]).then((byVersion) => byVersion.get(version.id) ?? []),
    db.select().from(loggedParams).where(eq(loggedParams.runId, version.runId)),
    db.select().from(metricSummaries).where(eq(metricSummaries.runId, version.runId)),
    db
      .select({ datasetId: datasetVersions.datasetId, version: datasetVersions.version, digest: datasetVersions.digest, by: datasetVersions.producedByTaskId })
      .from(datasetVersions)
      .where(
        inArray(
          sql`(${datasetVersions.datasetId}, ${datasetVersions.version})`,
          sql`(select distinct dataset_id, dataset_version from model_version_inputs where model_version_id = ${version.id})`,
        ),
      ),
    db
      .select({ p: modelVersionParents, namespace: registeredModels.namespace, name: registeredModels.name, version: modelVersions.version })
      .from(modelVersionParents)
      .innerJoin(modelVersions, eq(modelVersions.id, modelVersionParents.parentVersionId))
      .innerJoin(registeredModels, eq(registeredModels.id, modelVersions.modelId))
      .where(eq(modelVersionParents.modelVersionId, version.id))
      .orderBy(asc(registeredModels.namespace), asc(registeredModels.name), asc(modelVersions.version)),
    db
      .select(declaredColumns)
      .from(runInputs)
      .where(and(eq(runInputs.runId, version.runId), eq(runInputs.kind, 'dataset')))
      .orderBy(asc(runInputs.at), asc(runInputs.name)),
  ]);
  const found = new Map(versions.map((v) => [`${v.datasetId}|${v.version}`, v]));
  const groups = new Map<string, Lineage['datasets'][number]>();
  for (const c of read) {
    const key = `${c.datasetId}|${c.version}`;
    let group = groups.get(key);
    if (!group) {
      const v = found.get(key);
      groups.set(
        key,
        (group = { datasetId: c.datasetId, dataset: c.dataset, version: c.version, digest: v?.digest ?? null, producedByTaskId: v?.by ?? null, columns: [] }),
      );
    }
    group.columns.push(c);
  }
  return {
    version,
    task: task!,
    run: run!,
    moduleVersionIds: modules.map((m) => m.id!),
    datasets: [...groups.values()],
    parameters: { ...run!.parameters, ...task!.parameters },
    loggedParams: Object.fromEntries(params.map((p) => [p.key, p.value])),
    metrics: metrics.sort((a, b) => (a.taskId === version.taskId ? -1 : 0) - (b.taskId === version.taskId ? -1 : 0) || a.name.localeCompare(b.name)),
    cacheKey: version.cacheKey,
    models: parents.map((r) => ({ ref: `${r.namespace}/${r.name}@${r.version}`, versionId: r.p.parentVersionId, port: r.p.port, taskId: r.p.taskId })),
    // The producing task's first.
    loggedDatasets: inputs.sort((a, b) => (a.taskId === version.taskId ? -1 : 0) - (b.taskId === version.taskId ? -1 : 0)),
  };
}

/** The model versions a dataset (one version of it, or any) flowed into. */
export async function modelVersionsFromDataset(db: Db | Tx, datasetId: string, datasetVersion?: number): Promise<ModelVersion[]> {
  const ids = db
    .selectDistinct({ id: modelVersionInputs.modelVersionId })
    .from(modelVersionInputs)
    .where(
      datasetVersion === undefined
        ? eq(modelVersionInputs.datasetId, datasetId)
        : and(eq(modelVersionInputs.datasetId, datasetId), eq(modelVersionInputs.datasetVersion, datasetVersion)),
    );
  return db.select().from(modelVersions).where(inArray(modelVersions.id, ids)).orderBy(asc(modelVersions.createdAt));
}

/** A version's value of each metric: the producing task's own, else the run's (an evaluation task's). */
export function metricValues(version: ModelVersion, metrics: MetricSummary[]): Map<string, number> {
  const values = new Map<string, number>();
  for (const m of metrics) if (m.taskId === version.taskId) values.set(m.name, m.last);
  for (const m of metrics) if (!values.has(m.name)) values.set(m.name, m.last);
  return values;
}

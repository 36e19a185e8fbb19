// A version's lineage and label, both ways. Forward: the producing task and run, the module versions of the run,
// the dataset versions and columns read (recorded at registration, through upstream tasks), the run's parameters,
// metrics and the task's cache key. Backward: the model versions a dataset version flowed into. The label is the
// join of the CURRENT labels of every column read, so raising a source column raises every model derived from it.
import { and, asc, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { columnLabels, datasets, datasetVersions } from '../db/tables/governance';
import { type ModelVersion, modelVersionInputs, modelVersions } from '../db/tables/registry';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import { loggedParams, type MetricSummary, metricSummaries } from '../db/tables/tracking';
import { formatLabel, join, labelOf, PUBLIC_LABEL } from '../governance/labels';
import type { Domain, Label } from '../vocabulary';
import { type Level, levels } from '../vocabulary';

export interface ColumnRead {
  dataset: string;
  datasetId: string;
  version: number;
  column: string;
  label: Label;
}

/** The columns each version read, with their current labels. */
export async function columnsRead(db: Db | Tx, versionIds: readonly string[]): Promise<Map<string, ColumnRead[]>> {
  const rows = versionIds.length
    ? await db
        .select({
          versionId: modelVersionInputs.modelVersionId,
          datasetId: modelVersionInputs.datasetId,
          namespace: datasets.namespace,
          name: datasets.name,
          version: modelVersionInputs.datasetVersion,
          column: modelVersionInputs.column,
          level: columnLabels.level,
          categories: columnLabels.categories,
        })
        .from(modelVersionInputs)
        .innerJoin(datasets, eq(datasets.id, modelVersionInputs.datasetId))
        .leftJoin(columnLabels, and(eq(columnLabels.datasetId, modelVersionInputs.datasetId), eq(columnLabels.column, modelVersionInputs.column)))
        .where(inArray(modelVersionInputs.modelVersionId, [...versionIds]))
        .orderBy(asc(datasets.namespace), asc(datasets.name), asc(modelVersionInputs.datasetVersion), asc(modelVersionInputs.column))
    : [];
  const byVersion = new Map<string, ColumnRead[]>(versionIds.map((id) => [id, []]));
  // Columns share their dataset's name and, mostly, a handful of labels: one string and one label object each.
  const names = new Map<string, string>();
  const labels = new Map<string, Label>();
  for (const r of rows) {
    let dataset = names.get(r.datasetId);
    if (dataset === undefined) names.set(r.datasetId, (dataset = `${r.namespace}/${r.name}`));
    const labelKey = r.level === null ? '' : `${r.level}|${(r.categories ?? []).join(',')}`;
    let label = labels.get(labelKey);
    if (!label) labels.set(labelKey, (label = labelOf(r.level === null ? undefined : { level: r.level, categories: r.categories ?? [] })));
    byVersion.get(r.versionId)!.push({ dataset, datasetId: r.datasetId, version: r.version, column: r.column, label });
  }
  return byVersion;
}

/** The join of the labels of the columns read; PUBLIC (the bottom) when the version read no declared dataset. */
export const labelOfColumns = (columns: ColumnRead[]): Label => [...new Set(columns.map((c) => c.label))].reduce(join, PUBLIC_LABEL);

/**
 * What a model's label may be to sit behind an alias of a domain: a model serves what it learned, so it is held to
 * the domain's ceiling and never carries a denied category (production models carry no PII); UNCLASSIFIED never.
 */
export const modelPolicies: Record<Domain, { ceiling: Level; deniedCategories: string[] }> = {
  experimentation: { ceiling: 'CONFIDENTIAL', deniedCategories: ['PII'] },
  adhoc: { ceiling: 'CONFIDENTIAL', deniedCategories: ['PII'] },
  production: { ceiling: 'RESTRICTED', deniedCategories: ['PII'] },
};

/** Null when a version that read `columns` may be aliased in `domain`; else why not, naming the columns. */
export function labelDenial(domain: Domain, columns: ColumnRead[]): string | null {
  const policy = modelPolicies[domain];
  const above = (c: ColumnRead) => c.label.level === 'UNCLASSIFIED' || levels.indexOf(c.label.level as Level) > levels.indexOf(policy.ceiling);
  const offending = columns.filter((c) => above(c) || c.label.categories.some((cat) => policy.deniedCategories.includes(cat)));
  if (!offending.length) return null;
  const named = offending
    .slice(0, 20)
    .map((c) => `${c.dataset}.${c.column} (${formatLabel(c.label)})`)
    .join(', ');
  const more = offending.length > 20 ? ` and ${offending.length - 20} more` : '';
  const denied = policy.deniedCategories.length ? ` and no ${policy.deniedCategories.join(', ')}` : '';
  return `Its label is ${formatLabel(labelOfColumns(columns))}: ${domain} models may carry at most ${policy.ceiling}${denied}, and it was trained on ${named}${more}. Train it without those columns (or have them reclassified).`;
}

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
}

/**
 * Everything a version came from, in a few indexed queries (no walk at read time: the walk ran at registration).
 * `columns`: the version's columns read when the caller already has them (GraphQL's `label` loads the same rows).
 */
export async function lineageOf(db: Db | Tx, version: ModelVersion, columns?: Promise<ColumnRead[]>): Promise<Lineage> {
  const [[task], [run], modules, read, params, metrics, versions] = await Promise.all([
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

// A model version's label: the join of the CURRENT labels of every dataset column it read (recorded at registration
// in model_version_inputs, through upstream tasks and the model versions they read), and what that label allows. It
// lives with governance, not the registry, because runs read models too: a task pinned to a model version reads what
// the model learned (server/governance/model-reads.ts), so the orchestrator needs it and the registry sits above that.
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { columnLabels, datasets } from '../db/tables/governance';
import { modelVersionInputs } from '../db/tables/registry';
import type { Domain, Label } from '../vocabulary';
import { type Level, levels } from '../vocabulary';
import { formatLabel, join, labelOf, PUBLIC_LABEL } from './labels';

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

// What observations and monitors are about: a model version (`ns/name@3`), an alias (`ns/name@champion`, followed
// as it moves), a dataset (`ns/name`) or a workflow (`name`). Resolving one gives its owning team (the namespace's
// team; a workflow's own team, or its creator when it has none) and its domain, which decide who writes and reads it;
// and the columns of its data (a dataset's, or the columns a model version's lineage read), which the preview rule
// governs when a series is grouped by a dimension of the same name.
import { and, desc, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { datasets, datasetVersions } from '../db/tables/governance';
import type { Monitor, TargetKind } from '../db/tables/monitoring';
import { modelAliases, modelVersions, registeredModels } from '../db/tables/registry';
import { namespaces } from '../db/tables/teams';
import { workflows } from '../db/tables/workflows';
import { labelsOf } from '../governance/datasets';
import { columnsRead } from '../governance/model-labels';
import { type Domain, type Label, versionNumber } from '../vocabulary';

export interface TargetRef {
  kind: TargetKind;
  ref: string;
}

export interface Target {
  kind: TargetKind;
  /** The model version, the model (ALIAS), the dataset or the workflow. */
  id: string;
  alias: string | null;
  /** MODEL_VERSION: itself; ALIAS: the version it points at now. */
  versionId: string | null;
  /** The namespace's team (models, datasets) or the workflow's team; null: none. */
  teamId: string | null;
  /** Who owns it when no team does (a workflow's creator). */
  createdBy: string | null;
  /** Whose run-data policy its observations follow. */
  domain: Domain;
  /** Its name as the API writes it (`ml/churn@3`). */
  ref: string;
  /** For a namespaced target: the namespace (writers of it write observations). */
  namespace: string | null;
}

const splitAt = (ref: string): [string, string] | null => {
  const at = ref.lastIndexOf('@');
  return at > 0 && at < ref.length - 1 ? [ref.slice(0, at), ref.slice(at + 1)] : null;
};
const splitName = (full: string): [string, string] | null => {
  const slash = full.indexOf('/');
  return slash > 0 && slash < full.length - 1 ? [full.slice(0, slash), full.slice(slash + 1)] : null;
};

/** What a reference should look like, for errors. */
export const refShape: Record<TargetKind, string> = {
  MODEL_VERSION: 'namespace/model@VERSION (a number)',
  ALIAS: 'namespace/model@ALIAS',
  DATASET: 'namespace/dataset',
  WORKFLOW: 'the workflow name',
};

async function teamOfNamespace(db: Db | Tx, namespace: string): Promise<string | null> {
  const [ns] = await db.select({ teamId: namespaces.teamId }).from(namespaces).where(eq(namespaces.name, namespace));
  return ns?.teamId ?? null;
}

/** The target a reference names, or null when there is none (or the reference is malformed). */
export async function resolveTarget(db: Db | Tx, target: TargetRef): Promise<Target | null> {
  if (typeof target.ref !== 'string' || target.ref.length > 300) return null;
  switch (target.kind) {
    case 'MODEL_VERSION':
    case 'ALIAS': {
      const parts = splitAt(target.ref);
      const name = parts && splitName(parts[0]);
      if (!parts || !name) return null;
      const numeric = /^\d+$/.test(parts[1]);
      if (numeric !== (target.kind === 'MODEL_VERSION')) return null;
      const [model] = await db
        .select()
        .from(registeredModels)
        .where(and(eq(registeredModels.namespace, name[0]), eq(registeredModels.name, name[1])));
      if (!model) return null;
      const base = { teamId: await teamOfNamespace(db, model.namespace), createdBy: model.createdBy, namespace: model.namespace };
      if (numeric) {
        if (versionNumber(parts[1]) === null) return null;
        const [version] = await db
          .select()
          .from(modelVersions)
          .where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.version, Number(parts[1]))));
        if (!version) return null;
        const ref = `${model.namespace}/${model.name}@${version.version}`;
        return { ...base, kind: 'MODEL_VERSION', id: version.id, alias: null, versionId: version.id, domain: version.domain, ref };
      }
      const [alias] = await db
        .select()
        .from(modelAliases)
        .where(and(eq(modelAliases.modelId, model.id), eq(modelAliases.alias, parts[1])));
      if (!alias) return null;
      const ref = `${model.namespace}/${model.name}@${alias.alias}`;
      return { ...base, kind: 'ALIAS', id: model.id, alias: alias.alias, versionId: alias.versionId, domain: alias.domain, ref };
    }
    case 'DATASET': {
      const name = splitName(target.ref);
      if (!name) return null;
      const [dataset] = await db
        .select()
        .from(datasets)
        .where(and(eq(datasets.namespace, name[0]), eq(datasets.name, name[1])));
      if (!dataset) return null;
      const teamId = await teamOfNamespace(db, dataset.namespace);
      const ref = `${dataset.namespace}/${dataset.name}`;
      return {
        kind: 'DATASET',
        id: dataset.id,
        alias: null,
        versionId: null,
        teamId,
        createdBy: dataset.createdBy,
        domain: dataset.domain,
        ref,
        namespace: dataset.namespace,
      };
    }
    case 'WORKFLOW': {
      const [workflow] = await db.select().from(workflows).where(eq(workflows.name, target.ref));
      if (!workflow) return null;
      const { id, teamId, createdBy, domain, name } = workflow;
      return { kind: 'WORKFLOW', id, alias: null, versionId: null, teamId, createdBy, domain, ref: name, namespace: null };
    }
    default:
      return null;
  }
}

/** A stored target (kind, id, alias) as a target again, with its name; null when it is gone. */
export async function targetOf(db: Db | Tx, stored: { targetKind: TargetKind; targetId: string; alias: string | null }): Promise<Target | null> {
  const { targetKind: kind, targetId: id } = stored;
  if (kind === 'DATASET') {
    const [d] = await db.select({ namespace: datasets.namespace, name: datasets.name }).from(datasets).where(eq(datasets.id, id));
    return d ? resolveTarget(db, { kind, ref: `${d.namespace}/${d.name}` }) : null;
  }
  if (kind === 'WORKFLOW') {
    const [w] = await db.select({ name: workflows.name }).from(workflows).where(eq(workflows.id, id));
    return w ? resolveTarget(db, { kind, ref: w.name }) : null;
  }
  const [m] =
    kind === 'ALIAS'
      ? await db.select({ namespace: registeredModels.namespace, name: registeredModels.name }).from(registeredModels).where(eq(registeredModels.id, id))
      : await db
          .select({ namespace: registeredModels.namespace, name: registeredModels.name, version: modelVersions.version })
          .from(modelVersions)
          .innerJoin(registeredModels, eq(registeredModels.id, modelVersions.modelId))
          .where(eq(modelVersions.id, id));
  if (!m) return null;
  const selector = kind === 'ALIAS' ? stored.alias : (m as { version?: number }).version;
  return resolveTarget(db, { kind, ref: `${m.namespace}/${m.name}@${selector}` });
}

/** The columns of the target's data with their labels: a dataset's (latest version), a model version's lineage. */
export async function columnsOfTarget(db: Db | Tx, target: Target): Promise<{ column: string; label: Label }[]> {
  if (target.kind === 'DATASET') {
    const [latest] = await db
      .select({ columns: datasetVersions.columns })
      .from(datasetVersions)
      .where(eq(datasetVersions.datasetId, target.id))
      .orderBy(desc(datasetVersions.version))
      .limit(1);
    const labels = await labelsOf(
      db,
      target.id,
      (latest?.columns ?? []).map((c) => c.name),
    );
    return [...labels].map(([column, label]) => ({ column, label }));
  }
  // A column name read from two datasets appears twice: both must be readable.
  if (target.versionId) return ((await columnsRead(db, [target.versionId])).get(target.versionId) ?? []).map((c) => ({ column: c.column, label: c.label }));
  return [];
}

/** The model version a monitor watches: its MODEL_VERSION target, or the version its ALIAS target points at now. */
export async function monitoredVersionId(db: Db | Tx, monitor: Pick<Monitor, 'targetKind' | 'targetId' | 'alias'>): Promise<string | null> {
  if (monitor.targetKind === 'MODEL_VERSION') return monitor.targetId;
  if (monitor.targetKind !== 'ALIAS' || !monitor.alias) return null;
  const [alias] = await db
    .select({ versionId: modelAliases.versionId })
    .from(modelAliases)
    .where(and(eq(modelAliases.modelId, monitor.targetId), eq(modelAliases.alias, monitor.alias)));
  return alias?.versionId ?? null;
}

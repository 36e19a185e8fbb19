// Data policy in the execution layer: what a run's domain may read (its ceiling and allowed source domains)
// and write (its allowed sink domains), decided per task from the datasets its module declares. A task is
// handed only the columns it may read; a task that needs more is refused before it reaches an executor,
// naming the columns and the rule. Deny overrides allow, and no rule means deny: an UNCLASSIFIED column is
// above every ceiling. When a task succeeds, its output datasets get a new version whose column labels are
// computed from the inputs' labels through the manifest's lineage.
import { AbilityBuilder, createMongoAbility, type ForcedSubject, type MongoAbility, subject } from '@casl/ability';
import { and, desc, eq, inArray, or } from 'drizzle-orm';
import { digestOf } from '../artifacts/digest';
import type { Tx } from '../db/client';
import { columnLabels, type Dataset, datasets, datasetVersions } from '../db/tables/governance';
import { datasetVersionSignal } from '../signals/sources';
import type { DataDenial, ModuleManifest, TaskDataAccess } from '../vocabulary';
import { type Domain, type Label, type Level, levels } from '../vocabulary';
import type { CatalogCeiling } from './catalog';
import { labelOf, recordComputedLabels } from './datasets';
import { formatLabel, join, joinAll, propagate } from './labels';

/** The access key of the dataset a map's items read by partition (server/governance/task-access.ts). */
export const PARTITIONS_PORT = '@partitions';

export interface DomainPolicy {
  /** The highest level a run of the domain may read. */
  readCeiling: Level;
  /** Categories it may never read, whatever the level. */
  deniedCategories: string[];
  /** Domains whose datasets it may read. */
  sources: Domain[];
  /** Domains whose datasets it may write. */
  sinks: Domain[];
}

/**
 * The three boundaries. Experimentation reads widely but writes only its own datasets; ad hoc analysis never
 * sees PII; production reads and writes production data only, so it never consumes experimental outputs.
 */
export const domainPolicies: Record<Domain, DomainPolicy> = {
  experimentation: { readCeiling: 'CONFIDENTIAL', deniedCategories: ['PII'], sources: ['experimentation', 'adhoc', 'production'], sinks: ['experimentation'] },
  adhoc: { readCeiling: 'CONFIDENTIAL', deniedCategories: ['PII'], sources: ['adhoc', 'production'], sinks: ['adhoc'] },
  production: { readCeiling: 'RESTRICTED', deniedCategories: [], sources: ['production'], sinks: ['production'] },
};

/**
 * The data ability of a run in a domain, as CASL rules with explicit fields: which columns it may read (up to the
 * ceiling, never a denied category, never an UNCLASSIFIED column) and which datasets it may read from and write
 * to. The `cannot` rules come last, so deny overrides allow; a column matching no rule is denied.
 */
export type DataAbility = MongoAbility<
  ['read' | 'write', 'Dataset' | 'DatasetColumn' | (Label & ForcedSubject<'DatasetColumn'>) | ({ domain: Domain } & ForcedSubject<'Dataset'>)]
>;

function defineDataAbility(domain: Domain): DataAbility {
  const policy = domainPolicies[domain];
  const { can, cannot, build } = new AbilityBuilder<DataAbility>(createMongoAbility);
  can('read', 'Dataset', ['rows'], { domain: { $in: policy.sources } });
  can('write', 'Dataset', ['rows'], { domain: { $in: policy.sinks } });
  can('read', 'DatasetColumn', ['values'], { level: { $in: levels.slice(0, levels.indexOf(policy.readCeiling) + 1) } });
  if (policy.deniedCategories.length)
    cannot('read', 'DatasetColumn', ['values'], { categories: { $in: policy.deniedCategories } }).because(
      `${domain} runs may not read ${policy.deniedCategories.join(', ')}`,
    );
  cannot('read', 'DatasetColumn', ['values'], { level: 'UNCLASSIFIED' }).because('an UNCLASSIFIED column is treated as the most restricted: classify it first');
  return build();
}

/** One data ability per domain: the policies are fixed, so the abilities are built once. */
export const dataAbilities: Record<Domain, DataAbility> = Object.fromEntries(
  Object.keys(domainPolicies).map((d) => [d, defineDataAbility(d as Domain)]),
) as Record<Domain, DataAbility>;

const denials = {
  experimentation: new Map<string, string | null>(),
  adhoc: new Map<string, string | null>(),
  production: new Map<string, string | null>(),
} satisfies Record<Domain, Map<string, string | null>>;

/** Null when a run of `domain` may read a column with `label`; otherwise the rule that denies it. */
export function readDenial(domain: Domain, label: Label): string | null {
  // Labels come from a small lattice, and the abilities never change: each decision is made once.
  const decided = denials[domain];
  const key = label.categories.length ? `${label.level}|${label.categories.join(',')}` : label.level;
  let denial = decided.get(key);
  if (denial === undefined) {
    if (decided.size > 10_000) decided.clear();
    decided.set(key, (denial = decideRead(domain, label)));
  }
  return denial;
}

function decideRead(domain: Domain, label: Label): string | null {
  const column = subject('DatasetColumn', { level: label.level, categories: label.categories });
  const matching = dataAbilities[domain].rulesFor('read', 'DatasetColumn', 'values').filter((rule) => rule.matchesConditions(column));
  const deny = matching.find((rule) => rule.inverted);
  const allow = matching.find((rule) => !rule.inverted);
  // Deny overrides allow and no rule means deny; the reason given is the most fundamental one.
  if (label.level === 'UNCLASSIFIED' && deny) return deny.reason!;
  if (!allow) return `${domain} runs read at most ${domainPolicies[domain].readCeiling}`;
  return deny ? deny.reason! : null;
}

/** Null when a run of `domain` may read (or write) a dataset of `owner`'s domain; otherwise the rule that denies it. */
export function datasetDenial(domain: Domain, action: 'read' | 'write', owner: Domain): string | null {
  if (dataAbilities[domain].can(action, subject('Dataset', { domain: owner }), 'rows')) return null;
  const policy = domainPolicies[domain];
  return action === 'read'
    ? `${domain} runs may read only ${policy.sources.join(', ')} data`
    : `${domain} runs may write only ${policy.sinks.join(', ')} datasets`;
}

export const hasDataPorts = (manifest: ModuleManifest) => Boolean(manifest.inputs?.some((p) => p.dataset) || manifest.outputs?.some((p) => p.dataset));

const splitName = (full: string) => {
  const slash = full.indexOf('/');
  return { namespace: full.slice(0, slash), name: full.slice(slash + 1) };
};

/** Decides what a run of `domain` may do with the datasets a module declares: access, or the first denial. */
export async function decideDataAccess(tx: Tx, domain: Domain, manifest: ModuleManifest): Promise<{ access: TaskDataAccess } | { denied: DataDenial }> {
  const inputPorts = (manifest.inputs ?? []).filter((p) => p.dataset);
  const outputPorts = (manifest.outputs ?? []).filter((p) => p.dataset);
  const names = [...new Set([...inputPorts, ...outputPorts].map((p) => p.dataset!))];
  const rows = names.length
    ? await tx
        .select()
        .from(datasets)
        .where(or(...names.map((n) => and(eq(datasets.namespace, splitName(n).namespace), eq(datasets.name, splitName(n).name)))))
    : [];
  const byName = new Map<string, Dataset>(rows.map((d) => [`${d.namespace}/${d.name}`, d]));
  const access: TaskDataAccess = { inputs: {}, outputs: {} };

  for (const port of inputPorts) {
    const dataset = byName.get(port.dataset!);
    if (!dataset)
      return {
        denied: {
          rule: 'a task reads only registered datasets',
          message: `input "${port.name}" reads ${port.dataset}, which is not a registered dataset`,
          subjects: [port.dataset!],
        },
      };
    const sourceDenial = datasetDenial(domain, 'read', dataset.domain);
    if (sourceDenial) {
      return { denied: { rule: sourceDenial, message: `input "${port.name}" reads ${port.dataset}, a ${dataset.domain} dataset`, subjects: [port.dataset!] } };
    }
    const [version] = await tx.select().from(datasetVersions).where(eq(datasetVersions.datasetId, dataset.id)).orderBy(desc(datasetVersions.version)).limit(1);
    const available = new Set(version!.columns.map((c) => c.name));
    const wanted = port.columns?.length ? port.columns.map((c) => c.name) : [...available];
    const missing = wanted.filter((c) => !available.has(c));
    if (missing.length)
      return {
        denied: {
          rule: 'a task reads only columns its dataset has',
          message: `${port.dataset} has no column ${missing.join(', ')}`,
          subjects: missing.map((c) => `${port.dataset}.${c}`),
        },
      };
    const labelRows = await tx
      .select()
      .from(columnLabels)
      .where(and(eq(columnLabels.datasetId, dataset.id), inArray(columnLabels.column, wanted)));
    const labels = Object.fromEntries(wanted.map((c) => [c, labelOf(labelRows.find((r) => r.column === c))]));
    const refused = wanted.map((c) => ({ column: c, rule: readDenial(domain, labels[c]!) })).filter((r) => r.rule);
    if (refused.length) {
      return {
        denied: {
          rule: refused[0]!.rule!,
          message: `input "${port.name}" needs ${refused.map((r) => `${port.dataset}.${r.column} (${formatLabel(labels[r.column]!)})`).join(', ')}, which a ${domain} run may not read: ${[...new Set(refused.map((r) => r.rule))].join('; ')}`,
          subjects: refused.map((r) => `${port.dataset}.${r.column}`),
        },
      };
    }
    access.inputs[port.name] = { dataset: port.dataset!, version: version!.version, digest: version!.digest, columns: wanted, labels };
  }

  // Each written column's label is the join of its sources' labels: a source that is not a column of a dataset
  // this task reads has no label to join, so the write could not be labelled and is refused before it runs.
  for (const port of outputPorts) {
    for (const column of port.columns ?? []) {
      for (const source of column.from ?? []) {
        const dot = source.indexOf('.');
        const input = access.inputs[source.slice(0, dot)];
        if (input && source.slice(dot + 1) in input.labels) continue;
        return {
          denied: {
            rule: 'the labels of a written column must be computable from its lineage',
            message: `output "${port.name}" column "${column.name}" derives from ${source}, ${input ? `a column ${input.dataset} does not have` : 'an input that reads no registered dataset'}, so its label cannot be computed; declare the source as a dataset column or drop it from "from"`,
            subjects: [`${port.dataset}.${column.name}`],
          },
        };
      }
    }
  }

  for (const port of outputPorts) {
    const dataset = byName.get(port.dataset!);
    // A new output dataset is created in the run's own domain, which every domain may write.
    const sinkDenial = dataset ? datasetDenial(domain, 'write', dataset.domain) : null;
    if (dataset && sinkDenial) {
      return { denied: { rule: sinkDenial, message: `output "${port.name}" writes ${port.dataset}, a ${dataset.domain} dataset`, subjects: [port.dataset!] } };
    }
    access.outputs[port.name] = { dataset: port.dataset! };
  }
  return { access };
}

const digestOfValue = (value: unknown) => (typeof value === 'string' && /^sha256:[0-9a-f]{64}$/.test(value) ? value : digestOf(value));

/**
 * A succeeded task's output datasets: a new version each (its digest the output's value when that is a
 * content digest, else the digest of the value), with labels computed from the inputs through the lineage.
 */
export async function recordDatasetWrites(
  tx: Tx,
  writes: { taskId: string; domain: Domain; createdBy: string | null; manifest: ModuleManifest; access: TaskDataAccess; outputs: Record<string, unknown> }[],
  catalog: CatalogCeiling,
): Promise<void> {
  // Datasets locked in name order, whichever task and port writes each: two transactions writing the same two datasets
  // (tasks of two runs recorded at once) take them in one order, never in a circle.
  const written = writes
    .flatMap((w) => (w.manifest.outputs ?? []).filter((p) => p.dataset && w.access.outputs[p.name]).map((port) => ({ w, port })))
    .sort((a, b) => (a.port.dataset! < b.port.dataset! ? -1 : a.port.dataset! > b.port.dataset! ? 1 : 0));
  for (const { w, port } of written) {
    const inputs = new Map(Object.entries(w.access.inputs).map(([p, input]) => [p, new Map(Object.entries(input.labels))]));
    // What the task read without declaring a column's lineage (its pinned models, the partitions a map handed it:
    // server/governance/task-access.ts) joins into every column it wrote: predictions are never less restricted than
    // what the model learned or the rows they were made from.
    const implicit = [...Object.values(w.access.models ?? {}).map((m) => m.label), ...Object.values(w.access.inputs[PARTITIONS_PORT]?.labels ?? {})];
    const learned = implicit.length ? joinAll(implicit) : null;
    const { namespace, name } = splitName(port.dataset!);
    await tx
      .insert(datasets)
      .values({ namespace, name, domain: w.domain, createdBy: w.createdBy, description: `written by task ${w.taskId}` })
      .onConflictDoNothing();
    const [dataset] = await tx
      .select()
      .from(datasets)
      .where(and(eq(datasets.namespace, namespace), eq(datasets.name, name)))
      .for('update');
    const [last] = await tx
      .select({ version: datasetVersions.version })
      .from(datasetVersions)
      .where(eq(datasetVersions.datasetId, dataset!.id))
      .orderBy(desc(datasetVersions.version))
      .limit(1);
    const columns = (port.columns ?? []).map((c) => ({ name: c.name, type: c.type ?? 'unknown' }));
    const version = (last?.version ?? 0) + 1;
    const digest = digestOfValue(w.outputs[port.name]);
    await tx.insert(datasetVersions).values({ datasetId: dataset!.id, version, columns, digest, producedByTaskId: w.taskId, createdBy: w.createdBy });
    await datasetVersionSignal(tx, { datasetId: dataset!.id, namespace, name, version, digest, producedByTaskId: w.taskId });
    const labels = propagate(port.columns ?? [], inputs);
    if (learned) for (const [column, label] of labels) labels.set(column, join(label, learned));
    await recordComputedLabels(tx, dataset!.id, labels, catalog);
  }
}

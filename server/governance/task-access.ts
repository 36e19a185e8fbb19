// What a task reads beyond the datasets its module declares (server/governance/policy.ts), and so what the data
// policy must also decide: the model versions it is pinned to and the dataset partitions a map hands it.
//
// A task pinned to a model version (batch inference's `models:`) reads what that model learned. So the run's data
// policy applies to the model as to the columns it was trained on: each column's CURRENT label must be readable in
// the run's domain, and the version must come from a domain the run may read data from, unless a second person
// approved it for production (an approved promotion is how a model trained in experimentation crosses the boundary,
// as it is for deployments). What the task writes then carries the model's label (server/governance/policy.ts):
// predictions are a function of the training data, so they are never less restricted than it.
//
// A map over a dataset's partitions (`map: { over: { partitionsOf } }`) hands each item a partition's rows, every
// column of them: the task reads that dataset version as if it declared it, under the same column rules, kept in its
// access as the input PARTITIONS_PORT so the dispatch-time re-check and the output labels see it like any other.
import { and, eq, inArray } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { columnLabels, datasetVersions } from '../db/tables/governance';
import { modelPromotions, modelVersions } from '../db/tables/registry';
import type { DataDenial, Domain, ModelInput, ModuleManifest, TaskDataAccess } from '../vocabulary';
import { findDataset, labelOf } from './datasets';
import { formatLabel } from './labels';
import { columnsRead, labelOfColumns } from './model-labels';
import { datasetDenial, decideDataAccess, hasDataPorts, PARTITIONS_PORT, readDenial } from './policy';

export { PARTITIONS_PORT };

export type ModelReads = NonNullable<TaskDataAccess['models']>;

/** What a run of `domain` may know of the models a task takes, by port, or the first refusal. */
export async function decideModelReads(tx: Tx, domain: Domain, models: Record<string, ModelInput>): Promise<{ models: ModelReads } | { denied: DataDenial }> {
  const ids = [...new Set(Object.values(models).map((m) => m.versionId))];
  const [found, approved, columns] = await Promise.all([
    tx.select({ id: modelVersions.id, domain: modelVersions.domain }).from(modelVersions).where(inArray(modelVersions.id, ids)),
    tx
      .selectDistinct({ id: modelPromotions.versionId })
      .from(modelPromotions)
      .where(and(inArray(modelPromotions.versionId, ids), eq(modelPromotions.state, 'APPROVED'))),
    columnsRead(tx, ids),
  ]);
  const domainOf = new Map(found.map((v) => [v.id, v.domain]));
  const isApproved = new Set(approved.map((a) => a.id));
  const reads: ModelReads = {};
  for (const [port, input] of Object.entries(models)) {
    const ref = `${input.model}/${input.version}`;
    const trainedIn = domainOf.get(input.versionId);
    if (!trainedIn)
      return {
        denied: { rule: 'a model input must be a registered version', message: `model input "${port}" names ${ref}, which no longer exists`, subjects: [ref] },
      };
    const boundary = datasetDenial(domain, 'read', trainedIn);
    if (boundary && !isApproved.has(input.versionId))
      return {
        denied: {
          rule: `${boundary}, or model versions with an approved promotion`,
          message: `model input "${port}" is ${ref}, trained in ${trainedIn} and not approved: promote it (\`npx atelier model promote ${input.model}@${input.version} ALIAS\`, approved by a second person) or use a version trained in ${domain}`,
          subjects: [ref],
        },
      };
    const read = columns.get(input.versionId) ?? [];
    const refused = read.map((c) => ({ c, rule: readDenial(domain, c.label) })).filter((r) => r.rule);
    if (refused.length)
      return {
        denied: {
          rule: refused[0]!.rule!,
          message: `model input "${port}" is ${ref}, which learned from ${refused
            .slice(0, 10)
            .map(({ c }) => `${c.dataset}.${c.column} (${formatLabel(c.label)})`)
            .join(', ')}${refused.length > 10 ? ` and ${refused.length - 10} more` : ''}; ${domain} runs may not read what those columns hold`,
          subjects: refused.map(({ c }) => `${c.dataset}.${c.column}`),
        },
      };
    reads[port] = { model: input.model, version: input.version, versionId: input.versionId, label: labelOfColumns(read) };
  }
  return { models: reads };
}

/** What a run of `domain` may read of a dataset version whose partitions a map hands its items, or the refusal. */
async function decidePartitionRead(
  tx: Tx,
  domain: Domain,
  read: { dataset: string; version: number },
): Promise<{ input: TaskDataAccess['inputs'][string] } | { denied: DataDenial }> {
  const dataset = await findDataset(tx, read.dataset);
  const boundary = datasetDenial(domain, 'read', dataset.domain);
  if (boundary)
    return { denied: { rule: boundary, message: `the map reads the partitions of ${read.dataset}, a ${dataset.domain} dataset`, subjects: [read.dataset] } };
  const [[version], labelRows] = await Promise.all([
    tx
      .select()
      .from(datasetVersions)
      .where(and(eq(datasetVersions.datasetId, dataset.id), eq(datasetVersions.version, read.version))),
    tx.select().from(columnLabels).where(eq(columnLabels.datasetId, dataset.id)),
  ]);
  if (!version)
    return {
      denied: { rule: 'a map reads partitions of an existing version', message: `${read.dataset} has no version ${read.version}`, subjects: [read.dataset] },
    };
  const columns = version.columns.map((c) => c.name);
  const labels = Object.fromEntries(columns.map((c) => [c, labelOf(labelRows.find((r) => r.column === c))]));
  const refused = columns.map((c) => ({ c, rule: readDenial(domain, labels[c]!) })).filter((r) => r.rule);
  if (refused.length)
    return {
      denied: {
        rule: refused[0]!.rule!,
        message: `the map reads the partitions of ${read.dataset} version ${read.version}, every column of them, and ${refused
          .map(({ c }) => `${read.dataset}.${c} (${formatLabel(labels[c]!)})`)
          .join(', ')} may not be read by ${domain} runs`,
        subjects: refused.map(({ c }) => `${read.dataset}.${c}`),
      },
    };
  return { input: { dataset: read.dataset, version: read.version, digest: version.digest, columns, labels } };
}

/** What a task reads implicitly: its pinned models and the dataset version a map over partitions hands it. */
export interface ImplicitReads {
  models?: Record<string, ModelInput> | null;
  partitions?: { dataset: string; version: number } | null;
}

/** The partitions a task reads, from what its access recorded when the run started (for the re-check at dispatch). */
export function partitionsRead(access: TaskDataAccess | null | undefined): ImplicitReads['partitions'] {
  const input = access?.inputs[PARTITIONS_PORT];
  return input ? { dataset: input.dataset, version: input.version } : null;
}

/** Everything a task may touch: the datasets its module declares and the model versions it is pinned to, or the first refusal. */
export async function decideTaskAccess(
  tx: Tx,
  domain: Domain,
  manifest: ModuleManifest,
  implicit: ImplicitReads,
): Promise<{ access: TaskDataAccess } | { denied: DataDenial }> {
  const decided = hasDataPorts(manifest) ? await decideDataAccess(tx, domain, manifest) : { access: { inputs: {}, outputs: {} } };
  if ('denied' in decided) return decided;
  const access: TaskDataAccess = decided.access;
  if (implicit.partitions) {
    const read = await decidePartitionRead(tx, domain, implicit.partitions);
    if ('denied' in read) return read;
    access.inputs[PARTITIONS_PORT] = read.input;
  }
  if (implicit.models && Object.keys(implicit.models).length) {
    const read = await decideModelReads(tx, domain, implicit.models);
    if ('denied' in read) return read;
    access.models = read.models;
  }
  return { access };
}

/** Whether a task needs a data decision at all (it declares datasets, reads a model or maps over partitions). */
export const touchesData = (manifest: ModuleManifest, implicit: ImplicitReads) =>
  hasDataPorts(manifest) || Boolean(implicit.partitions) || Boolean(implicit.models && Object.keys(implicit.models).length);

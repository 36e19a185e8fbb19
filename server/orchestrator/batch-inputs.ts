// Batch inference's inputs, resolved once when a run starts: a task's model inputs (`ns/model@alias` or
// `ns/model/3`) pinned to one version, and a map over a dataset's partitions (`map: { over: { partitionsOf:
// "ns/dataset" } }`, or "ns/dataset/3") turned into the list of that version's partitions. Reruns and clones take
// the source tasks' pins, never the moving alias, but checked again: whoever restarts a run must be able to read them.
// A model the run may not read (as whom it acts for: server/orchestrator/run-actor.ts) answers as one that does not exist.
import { subject } from '@casl/ability';
import { and, eq, inArray } from 'drizzle-orm';
import type { AppAbility } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { datasetVersions } from '../db/tables/governance';
import { type ModelVersion, modelAliases, modelVersions, registeredModels } from '../db/tables/registry';
import type { Task } from '../db/tables/runs';
import { badInput, notFound } from '../errors';
import { findDataset, latestVersion } from '../governance/datasets';
import { datasetDenial } from '../governance/policy';
import { type Domain, type ModelInput, partitionsSource, type TaskSpec, versionNumber } from '../vocabulary';

export { partitionsSource };

/**
 * The model and version `ns/model/3` (or `ns/model@3`, as the registry writes a version: no alias is a number) or
 * `ns/model@alias` names now, or null. Read from the tables here: the registry sits below the orchestrator and
 * imports it (registry/from-tasks.ts), so not the other way round.
 */
async function modelVersionOf(tx: Tx, ref: string) {
  const match = /^([^/@]+)\/([^/@]+)(?:\/(\d+)|@(\d+)|@(.+))$/.exec(ref);
  if (!match) return null;
  const [, namespace, name, path, at, alias] = match;
  const number = path ?? at;
  if (number !== undefined && versionNumber(number) === null) return null; // past any version: none
  const [model] = await tx
    .select()
    .from(registeredModels)
    .where(and(eq(registeredModels.namespace, namespace!), eq(registeredModels.name, name!)));
  if (!model) return null;
  const [version] = number
    ? await tx
        .select()
        .from(modelVersions)
        .where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.version, Number(number))))
    : await tx
        .select({ v: modelVersions })
        .from(modelAliases)
        .innerJoin(modelVersions, eq(modelVersions.id, modelAliases.versionId))
        .where(and(eq(modelAliases.modelId, model.id), eq(modelAliases.alias, alias!)))
        .then((rows) => rows.map((r) => r.v));
  return version ? { model, version } : null;
}

/**
 * Each task's model inputs by port, pinned now (or taken from `pinned`, a source run's tasks by node). `readers`: the
 * abilities the run reads with (server/orchestrator/run-actor.ts `readersOf`), asked only when a task takes a model;
 * every one must read a version, kept pins included. None: the platform itself.
 */
export async function resolveModelInputs(
  tx: Tx,
  specTasks: TaskSpec[],
  readers: () => Promise<AppAbility[]>,
  pinned?: Map<string, Record<string, ModelInput>>,
): Promise<Map<string, Record<string, ModelInput>>> {
  const resolved = new Map<string, Record<string, ModelInput>>();
  const wanted = specTasks.filter((t) => t.models && Object.keys(t.models).length);
  if (!wanted.length) return resolved;
  const abilities = await readers();
  const readable = (version: ModelVersion) => abilities.every((a) => a.can('read', subject('ModelVersion', { ...version }), 'lineage'));
  const kept = new Map(wanted.flatMap((t) => (pinned?.has(t.name) ? [[t.name, pinned.get(t.name)!] as const] : [])));
  await checkKeptModels(tx, kept, abilities);
  for (const task of wanted) {
    const keptPorts = kept.get(task.name);
    if (keptPorts) {
      resolved.set(task.name, keptPorts);
      continue;
    }
    const ports: Record<string, ModelInput> = {};
    for (const [port, ref] of Object.entries(task.models!)) {
      const unknown = modelRefusal(task.name, port, ref);
      const found = await modelVersionOf(tx, ref);
      if (!found) throw unknown;
      if (!readable(found.version)) throw unknown;
      const { model, version } = found;
      ports[port] = {
        ref,
        model: `${model.namespace}/${model.name}`,
        version: version.version,
        versionId: version.id,
        digest: version.digest,
        files: version.files,
      };
    }
    resolved.set(task.name, ports);
  }
  return resolved;
}

/** The same for a model that does not exist and for one the run may not read. */
const modelRefusal = (node: string, port: string, ref: string) =>
  notFound(
    `Node "${node}" takes model ${ref} as "${port}": there is no such model version you may read; \`atelier model show NS/NAME\` lists its versions and aliases.`,
  );

/**
 * Refuses (as a missing one) a kept model input, by node and port, whose version not every one of `abilities` may
 * read: a clone's or rerun's pins are checked for whoever restarts it, at the start and by `viewerCan` alike. A
 * version deleted since is left to the data policy's check, which names it as gone.
 */
export async function checkKeptModels(tx: Tx | Db, kept: Map<string, Record<string, ModelInput>>, abilities: AppAbility[]): Promise<void> {
  const ids = [...new Set([...kept.values()].flatMap((ports) => Object.values(ports).map((m) => m.versionId)))];
  if (!abilities.length || !ids.length) return;
  const versions = new Map((await tx.select().from(modelVersions).where(inArray(modelVersions.id, ids))).map((v) => [v.id, v]));
  for (const [node, ports] of kept)
    for (const [port, input] of Object.entries(ports)) {
      const version = versions.get(input.versionId);
      if (version && !abilities.every((a) => a.can('read', subject('ModelVersion', { ...version }), 'lineage'))) throw modelRefusal(node, port, input.ref);
    }
}

/** One item per partition of the dataset version named (its latest when no version is), pinned now. */
export async function partitionItems(tx: Tx, node: string, source: string, domain: Domain): Promise<Record<string, unknown>[]> {
  const match = /^([^/@]+\/[^/@]+?)(?:\/(\d+))?$/.exec(source);
  if (!match) throw badInput(`Node "${node}" maps over partitionsOf "${source}": name a dataset as namespace/name or namespace/name/VERSION.`);
  const dataset = await findDataset(tx, match[1]!);
  const denial = datasetDenial(domain, 'read', dataset.domain);
  if (denial) throw badInput(`Node "${node}" maps over the partitions of ${match[1]}, which ${domain} runs may not read: ${denial}.`);
  if (match[2] && versionNumber(match[2]) === null)
    throw notFound(`Node "${node}" maps over ${source}: the dataset has no such version; \`atelier dataset show NAME\` lists its versions.`);
  const [version] = match[2]
    ? await tx
        .select()
        .from(datasetVersions)
        .where(and(eq(datasetVersions.datasetId, dataset.id), eq(datasetVersions.version, Number(match[2]))))
    : [await latestVersion(tx, dataset.id)];
  if (!version) throw notFound(`Node "${node}" maps over ${source}: the dataset has no such version; \`atelier dataset show NAME\` lists its versions.`);
  if (!version.partitions.length)
    throw badInput(`Node "${node}" maps over the partitions of ${match[1]} version ${version.version}, which lists none; add a version with partitions.`);
  return version.partitions.map((p) => ({ dataset: match[1]!, version: version.version, partition: p.name, digest: p.digest }));
}

/** A source run's model pins by node, for its reruns and clones. */
export const pinnedModels = (sourceTasks: Task[]) => new Map(sourceTasks.filter((t) => t.models && !t.mapParent).map((t) => [t.node, t.models!] as const));

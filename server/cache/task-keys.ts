// The cache keys of a batch of a run's module tasks, read from what they will receive: the pinned module version,
// their (wired) parameters, their upstreams' outputs and the dataset versions they read. Shared by dispatch and by explain, so both see one key.
import { and, eq, inArray } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { type ModuleVersion, modules, moduleVersions } from '../db/tables/modules';
import { type Run, type Task, tasks } from '../db/tables/runs';
import type { KeyComponents } from '../vocabulary';
import { cacheable, cacheKey, cacheScope, keyComponents } from './key';

export interface TaskKey {
  key: string;
  components: KeyComponents;
  version: ModuleVersion;
  /** `namespace/name` of the module. */
  module: string;
}

/** Where taskKeys gets module versions and upstream outputs from, when the caller holds them already (dispatch). */
export interface KeyLookups {
  versions(ids: string[]): Promise<Map<string, { version: ModuleVersion; namespace: string; name: string }>>;
  outputs(tasks: Task[]): Promise<Map<string, Record<string, unknown>>>;
}

/** Keys of the cacheable tasks among `batch` (module tasks whose module did not opt out), by task id. */
export async function taskKeys(
  tx: Tx | Db,
  run: Pick<Run, 'id' | 'domain' | 'cacheNamespace'>,
  batch: Task[],
  lookups?: KeyLookups,
): Promise<Map<string, TaskKey>> {
  const moduleTasks = batch.filter((t) => t.kind === 'module' && t.moduleVersionId);
  if (!moduleTasks.length) return new Map();
  const versionIds = [...new Set(moduleTasks.map((t) => t.moduleVersionId!))];
  const versions = lookups
    ? await lookups.versions(versionIds)
    : new Map(
        (
          await tx
            .select({ version: moduleVersions, namespace: modules.namespace, name: modules.name })
            .from(moduleVersions)
            .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
            .where(inArray(moduleVersions.id, versionIds))
        ).map((r) => [r.version.id, r]),
      );
  const keyed = moduleTasks.filter((t) => cacheable(versions.get(t.moduleVersionId!)!.version.manifest));
  const upstream = [...new Set(keyed.flatMap((t) => t.dependsOn))];
  const outputs = new Map<string, Record<string, unknown>>();
  if (lookups && keyed.length) for (const [node, o] of await lookups.outputs(keyed)) outputs.set(node, o);
  else if (upstream.length) {
    const rows = await tx
      .select({ node: tasks.node, outputs: tasks.outputs })
      .from(tasks)
      .where(and(eq(tasks.runId, run.id), inArray(tasks.node, upstream)));
    for (const row of rows) outputs.set(row.node, row.outputs ?? {});
  }
  const keys = new Map<string, TaskKey>();
  const seen = new WeakMap<object, string>();
  for (const task of keyed) {
    const { version, namespace, name } = versions.get(task.moduleVersionId!)!;
    const input = {
      digest: version.digest,
      manifest: version.manifest,
      parameters: task.parameters,
      inputs: {
        ...Object.fromEntries(task.dependsOn.map((d) => [d, outputs.get(d) ?? {}])),
        // Each dataset read, by the content digest of the version read and the columns handed over.
        ...Object.fromEntries(Object.entries(task.dataAccess?.inputs ?? {}).map(([port, i]) => [`dataset:${port}`, { digest: i.digest, columns: i.columns }])),
        // a model input by its pinned version's content, never by the alias that named it
        ...Object.fromEntries(Object.entries(task.models ?? {}).map(([port, m]) => [`model:${port}`, { digest: m.digest }])),
      },
      scope: cacheScope(run),
    };
    const components = keyComponents(input, seen);
    keys.set(task.id, { key: cacheKey(components), components, version, module: `${namespace}/${name}` });
  }
  return keys;
}

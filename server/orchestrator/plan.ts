// Planning a run: resolve every task's module reference to a pinned version, check its parameters against the
// module's schema, and decide its executor, pool and limits. Pure with respect to the run: nothing is written.
import { and, eq, inArray, or } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { moduleTags, moduleVersions, modules, type ModuleVersion } from '../db/tables/modules';
import type { TriggerRule } from '../db/tables/runs';
import { AtelierError, type ErrorDetail } from '../errors';
import { checkParameters } from '../modules/manifest';
import { substituteParameters, type TaskSpec, type WorkflowSpec } from './spec';

export interface PlannedTask {
  node: string;
  moduleRef: string;
  version: ModuleVersion & { namespace: string; name: string };
  parameters: Record<string, unknown>;
  dependsOn: string[];
  maxAttempts: number;
  retryDelayMs: number;
  triggerRule: TriggerRule;
  timeoutMs: number;
  executor: string;
  pool: string;
  settings: Record<string, unknown>;
}

export interface PlanDefaults {
  timeoutMs: number;
  executor: string;
}

export function parseModuleRef(ref: string): { namespace: string; name: string; selector: string } {
  const [path, selector = 'latest'] = ref.split('@') as [string, string | undefined];
  const [namespace, name] = path.split('/') as [string, string];
  return { namespace, name, selector };
}

/** Resolves `ns/name@tag|version` references: one query per distinct module, whatever the node count. */
export async function resolveModuleRefs(tx: Tx, refs: Iterable<string>): Promise<Map<string, PlannedTask['version'] | string>> {
  const byModule = new Map<string, Set<string>>();
  for (const ref of refs) {
    const { namespace, name, selector } = parseModuleRef(ref);
    const key = `${namespace}/${name}`;
    if (!byModule.has(key)) byModule.set(key, new Set());
    byModule.get(key)!.add(selector);
  }
  const resolved = new Map<string, PlannedTask['version'] | string>();
  for (const [key, selectors] of byModule) {
    const [namespace, name] = key.split('/') as [string, string];
    const [mod] = await tx.select().from(modules).where(and(eq(modules.namespace, namespace), eq(modules.name, name)));
    if (!mod) {
      for (const s of selectors) resolved.set(`${key}@${s}`, `unknown module ${key}; publish it first with \`npx atelier module push DIR\``);
      continue;
    }
    const wanted = [...selectors];
    const tagRows = await tx
      .select({ tag: moduleTags.tag, version: moduleVersions })
      .from(moduleTags)
      .innerJoin(moduleVersions, eq(moduleVersions.id, moduleTags.versionId))
      .where(and(eq(moduleTags.moduleId, mod.id), inArray(moduleTags.tag, wanted)));
    const versionRows = await tx
      .select()
      .from(moduleVersions)
      .where(and(eq(moduleVersions.moduleId, mod.id), or(inArray(moduleVersions.version, wanted))));
    for (const selector of selectors) {
      const version = tagRows.find((r) => r.tag === selector)?.version ?? versionRows.find((v) => v.version === selector);
      resolved.set(
        `${key}@${selector}`,
        version ? { ...version, namespace, name } : `module ${key} has no tag or version "${selector}"`,
      );
    }
  }
  return resolved;
}

export interface PlanOptions {
  /** Versions to reuse by node (clone and rerun keep what the source run pinned). */
  pinned?: Map<string, string>;
  /** Module references that replace the spec's for some nodes (a rerun swapping a version). */
  overrides?: Map<string, string>;
}

/** Plans every task of a spec for the given run parameters; throws INVALID_WORKFLOW naming each bad node. */
export async function planRun(tx: Tx, spec: WorkflowSpec, runParameters: Record<string, unknown>, defaults: PlanDefaults, options: PlanOptions = {}): Promise<PlannedTask[]> {
  const refOf = (module: string) => (module.includes('@') ? module : `${module}@latest`);
  const pinnedIds = [...new Set(spec.tasks.filter((t) => !options.overrides?.has(t.name)).map((t) => options.pinned?.get(t.name)).filter((id): id is string => !!id))];
  const pinnedVersions = new Map<string, PlannedTask['version']>();
  if (pinnedIds.length) {
    const rows = await tx
      .select({ version: moduleVersions, namespace: modules.namespace, name: modules.name })
      .from(moduleVersions)
      .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
      .where(inArray(moduleVersions.id, pinnedIds));
    for (const r of rows) pinnedVersions.set(r.version.id, { ...r.version, namespace: r.namespace, name: r.name });
  }
  const refFor = (task: TaskSpec) => refOf(options.overrides?.get(task.name) ?? task.module);
  const toResolve = spec.tasks.filter((t) => options.overrides?.has(t.name) || !options.pinned?.get(t.name));
  const resolved = await resolveModuleRefs(tx, new Set(toResolve.map(refFor)));
  const details: ErrorDetail[] = [];
  const planned: PlannedTask[] = [];
  for (const task of spec.tasks) {
    const moduleRef = refFor(task);
    const pinnedId = options.overrides?.has(task.name) ? undefined : options.pinned?.get(task.name);
    const version = pinnedId ? (pinnedVersions.get(pinnedId) ?? `pinned version ${pinnedId} no longer exists`) : resolved.get(moduleRef)!;
    if (typeof version === 'string') {
      details.push({ path: `tasks.${task.name}.module`, message: version });
      continue;
    }
    const parameters = substituteParameters(task.name, task.parameters ?? {}, runParameters);
    const problems = checkParameters(version.digest, version.manifest, parameters);
    for (const p of problems) details.push({ path: `tasks.${task.name}.${p.path}`, message: `${p.message} (schema of ${moduleRef})` });
    const manifest = version.manifest;
    const executor = task.executor ?? manifest.resources?.executor ?? defaults.executor;
    planned.push({
      node: task.name,
      moduleRef,
      version,
      parameters,
      dependsOn: task.dependsOn ?? [],
      maxAttempts: 1 + (task.retries ?? 0),
      retryDelayMs: Math.round((task.retryDelaySeconds ?? 1) * 1000),
      triggerRule: task.trigger ?? 'all_succeeded',
      timeoutMs: Math.round((task.timeoutSeconds ?? manifest.timeoutSeconds ?? defaults.timeoutMs / 1000) * 1000),
      executor,
      pool: task.pool ?? manifest.resources?.pool ?? executor,
      settings: task.settings ?? {},
    });
  }
  if (details.length) {
    throw new AtelierError('INVALID_WORKFLOW', `The workflow cannot run: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
  }
  return planned;
}

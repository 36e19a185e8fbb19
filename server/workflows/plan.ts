// Planning a run: resolve every task's module reference to a pinned version, check its parameters against the
// module's schema, and decide its executor, pool and limits. Pure with respect to the run: nothing is written.
import { and, eq, inArray, ne } from 'drizzle-orm';
import { DEFAULT_GPU_POOL, type GpuRouting, gpuPoolFor, knownHosts } from '../compute/routing';
import { DEFAULT_HOST_STALE_MS } from '../config/defaults';
import type { Tx } from '../db/client';
import { type HotCluster, hotClusters } from '../db/tables/executors';
import { type ModuleVersion, modules, moduleVersions } from '../db/tables/modules';
import { workflows, workflowVersions } from '../db/tables/workflows';
import { AtelierError, type ErrorDetail } from '../errors';
import { checkParameters } from '../modules/manifest';
import { partitionsSource, type TaskKind, type TaskSpec, type TriggerRule, type WorkflowSpec } from '../vocabulary';
import { type ModuleReads, resolveModuleRefs } from './module-refs';
import { outputRef, resolveRunParameters, runParameterPaths, substituteParameters, UNRESOLVED } from './spec';

export interface PlannedTask {
  node: string;
  kind: TaskKind;
  moduleRef: string | null;
  /** The pinned module version; null for a `workflow` node. */
  version: (ModuleVersion & { namespace: string; name: string }) | null;
  workflowRef: string | null;
  childWorkflowVersionId: string | null;
  mapOver: unknown;
  mapAs: string | null;
  parameters: Record<string, unknown>;
  dependsOn: string[];
  maxAttempts: number;
  retryDelayMs: number;
  triggerRule: TriggerRule;
  /** The spec's `when`, decided at dispatch; null for none. */
  condition: string | null;
  timeoutMs: number;
  executor: string;
  pool: string;
  settings: Record<string, unknown>;
  /** GPUs from the module's manifest; 0 for none. */
  gpus: number;
  hotCluster: string | null;
}

export interface PlanDefaults {
  timeoutMs: number;
  executor: string;
  /** Where GPU tasks that name no pool go (compute/routing.ts); without it they go to the `gpu` pool. */
  gpuRouting?: GpuRouting;
  /** A host silent for longer is not counted as live when routing. */
  hostStaleMs?: number;
}

export interface PlanOptions {
  /** Versions to reuse by node (clone and rerun keep what the source run pinned). */
  pinned?: Map<string, string>;
  /** Module references that replace the spec's for some nodes (a rerun swapping a version). */
  overrides?: Map<string, string>;
  /** Nested workflow versions being planned above this one, to catch cycles across nesting. */
  stack?: string[];
  /** A spec that stands for the latest version of its workflow (the one being created). */
  candidate?: WorkflowSpec;
  /** Set when planning a nested workflow: problems are handed to the parent plan instead of thrown. */
  nested?: boolean;
  /** Checking a spec before any run: parameters without values yet are not checked against schemas. */
  partial?: boolean;
  /**
   * The run parameters are the spec's own defaults (a spec being created): a value that does not fit is the
   * workflow's fault. Otherwise they are a caller's (a run start, a schedule's), and a fault only in them is theirs.
   */
  specDefaults?: boolean;
  /** The hot cluster of module nodes that name none (startRun's `hotCluster`). */
  hotCluster?: string;
  /** Module reads sent ahead for this spec's references (startRun's), used if they are the ones it resolves; told which it resolved. */
  modules?: ModuleReads;
  /** Filled with every live hot cluster a task would run on, nested workflows' included (whoever starts decides). */
  clustersUsed?: Map<string, HotCluster>;
}

const MAX_NESTING = 10;

/** Plans every task of a spec for the given run parameters; throws INVALID_WORKFLOW naming each bad node. */
export async function planRun(
  tx: Tx,
  spec: WorkflowSpec,
  runParameters: Record<string, unknown>,
  defaults: PlanDefaults,
  options: PlanOptions = {},
): Promise<PlannedTask[]> {
  const refOf = (module: string) => (module.includes('@') ? module : `${module}@latest`);
  const pinnedIds = [
    ...new Set(
      spec.tasks
        .filter((t) => !options.overrides?.has(t.name))
        .map((t) => options.pinned?.get(t.name))
        .filter((id): id is string => !!id),
    ),
  ];
  const pinnedVersions = new Map<string, PlannedTask['version']>();
  if (pinnedIds.length) {
    const rows = await tx
      .select({ version: moduleVersions, namespace: modules.namespace, name: modules.name })
      .from(moduleVersions)
      .innerJoin(modules, eq(modules.id, moduleVersions.moduleId))
      .where(inArray(moduleVersions.id, pinnedIds));
    for (const r of rows) pinnedVersions.set(r.version.id, { ...r.version, namespace: r.namespace, name: r.name });
  }
  const refFor = (task: TaskSpec) => refOf(options.overrides?.get(task.name) ?? task.module!);
  const toResolve = spec.tasks.filter((t) => t.module && (options.overrides?.has(t.name) || !options.pinned?.get(t.name)));
  const resolved = await resolveModuleRefs(tx, new Set(toResolve.map(refFor)), options.modules);
  const details: ErrorDetail[] = [];
  const planned: PlannedTask[] = [];
  const clusterOf = (task: TaskSpec) => task.hotCluster ?? options.hotCluster;
  const clusterNames = [...new Set(spec.tasks.map(clusterOf).filter((n): n is string => !!n))];
  const clusters = new Map(
    (clusterNames.length
      ? await tx
          .select()
          .from(hotClusters)
          .where(and(inArray(hotClusters.name, clusterNames), ne(hotClusters.state, 'ENDED')))
      : []
    ).map((c) => [c.name, c]),
  );
  // Loaded only when a GPU task needs routing: most runs never read it.
  let hosts: Awaited<ReturnType<typeof knownHosts>> | undefined;
  for (const task of spec.tasks) {
    const common = {
      node: task.name,
      dependsOn: task.dependsOn ?? [],
      maxAttempts: 1 + (task.retries ?? 0),
      retryDelayMs: Math.round((task.retryDelaySeconds ?? 1) * 1000),
      triggerRule: task.trigger ?? ('all_succeeded' as const),
      condition: task.when ?? null,
      timeoutMs: Math.round((task.timeoutSeconds ?? defaults.timeoutMs / 1000) * 1000),
      settings: task.settings ?? {},
    };
    if (task.workflow) {
      const child = await planChildWorkflow(
        tx,
        task.name,
        task.workflow,
        substituteParameters(task.name, task.parameters ?? {}, runParameters, { partial: options.partial }),
        defaults,
        options,
        details,
      );
      if (child) {
        planned.push({
          ...common,
          kind: 'workflow',
          moduleRef: null,
          version: null,
          workflowRef: task.workflow,
          childWorkflowVersionId: child.id,
          mapOver: null,
          mapAs: null,
          parameters: child.parameters,
          executor: 'control-plane',
          pool: 'control-plane',
          gpus: 0,
          hotCluster: null,
        });
      }
      continue;
    }
    const moduleRef = refFor(task);
    const pinnedId = options.overrides?.has(task.name) ? undefined : options.pinned?.get(task.name);
    const version = pinnedId ? (pinnedVersions.get(pinnedId) ?? `pinned version ${pinnedId} no longer exists`) : resolved.get(moduleRef)!;
    if (typeof version === 'string') {
      details.push({ path: `tasks.${task.name}.module`, message: version });
      continue;
    }
    const parameters = substituteParameters(task.name, task.parameters ?? {}, runParameters, { partial: options.partial });
    // Parameters wired from upstream outputs are checked when those outputs exist (at dispatch).
    const unresolved = UNRESOLVED in parameters || JSON.stringify(parameters).includes('${outputs.');
    const manifest = version.manifest;
    let mapOver: unknown = null;
    if (task.map) {
      const substituted = substituteParameters(task.name, { over: task.map.over }, runParameters, { partial: options.partial });
      const over = outputRef(task.map.over) ? task.map.over : substituted.over;
      mapOver = over;
      // A dataset's partitions are listed when the run starts (orchestrator/batch-inputs.ts).
      if (!outputRef(over) && !partitionsSource(over) && !(UNRESOLVED in substituted) && !unresolved) {
        if (!Array.isArray(over))
          details.push({
            path: `tasks.${task.name}.map.over`,
            // The value's type, never the value: it may be a run parameter (data), and this error can land in public
            // places (a schedule's fire, a nested run's node).
            message: `must be a list, "\${params.NAME}" holding a list, "\${outputs.NODE.NAME}" or { partitionsOf: "ns/dataset" }; got ${over === null ? 'null' : typeof over}`,
          });
        else {
          // Check the first few items against the module's schema now rather than failing at run time.
          for (const [i, item] of over.slice(0, 100).entries()) {
            for (const p of checkParameters(version.digest, manifest, { ...parameters, [task.map.as ?? 'item']: item })) {
              details.push({ path: `tasks.${task.name}.map.over.${i}`, message: `${p.path} ${p.message} (schema of ${moduleRef})` });
            }
          }
        }
      }
    } else if (!unresolved) {
      const problems = checkParameters(version.digest, manifest, parameters);
      // A value that came from a run parameter is named as that run parameter (what the caller passed), not as
      // the task field it landed in. Only its name: the value may be data, and this message may land in public places.
      const fromRun = problems.length ? runParameterPaths({ parameters: task.parameters ?? {} }) : new Map<string, string>();
      for (const p of problems) {
        const name = p.path === undefined ? undefined : runParameterAt(fromRun, p.path);
        details.push(
          name
            ? {
                path: `parameters.${name}`,
                message: `${p.message} (run parameter "${name}", given to task "${task.name}" as ${p.path}; schema of ${moduleRef})`,
              }
            : { path: `tasks.${task.name}.${p.path}`, message: `${p.message} (schema of ${moduleRef})` },
        );
      }
    }
    const gpus = manifest.resources?.gpus ?? 0;
    let executor = task.executor ?? manifest.resources?.executor ?? defaults.executor;
    let pool = task.pool ?? manifest.resources?.pool;
    const clusterName = clusterOf(task);
    const cluster = clusterName ? clusters.get(clusterName) : undefined;
    if (clusterName && (cluster || !options.partial)) {
      // A workflow may name a cluster that is only created before its runs: checked when a run starts.
      if (!cluster) {
        details.push({
          path: `tasks.${task.name}.hotCluster`,
          message: `no live hot cluster named ${clusterName}; create it with \`npx atelier cluster create ${clusterName} --executor ${executor}\` or see \`npx atelier cluster list\``,
        });
        continue;
      }
      if (task.executor && task.executor !== cluster.executor) {
        details.push({
          path: `tasks.${task.name}.executor`,
          message: `is ${task.executor} but hot cluster ${cluster.name} belongs to executor ${cluster.executor}`,
        });
        continue;
      }
      executor = cluster.executor;
      pool = cluster.pool;
      options.clustersUsed?.set(cluster.name, cluster);
    } else if (pool === undefined && gpus > 0) {
      const now = new Date();
      hosts ??= await knownHosts(tx, now);
      const routed = gpuPoolFor(
        gpus,
        defaults.gpuRouting ?? { gpuPools: {}, fallbackPool: DEFAULT_GPU_POOL },
        hosts,
        now,
        defaults.hostStaleMs ?? DEFAULT_HOST_STALE_MS,
      );
      if ('error' in routed) {
        details.push({ path: `tasks.${task.name}`, message: `module ${moduleRef} ${routed.error}` });
        continue;
      }
      pool = routed.pool;
    }
    // Spelled out, not `...common` with timeoutMs again: a spread followed by one of its own keys built each object
    // the slow way (~20 µs a task, the most of planRun for a 10,000-task run).
    planned.push({
      node: common.node,
      dependsOn: common.dependsOn,
      maxAttempts: common.maxAttempts,
      retryDelayMs: common.retryDelayMs,
      triggerRule: common.triggerRule,
      condition: common.condition,
      timeoutMs: Math.round((task.timeoutSeconds ?? manifest.timeoutSeconds ?? defaults.timeoutMs / 1000) * 1000),
      settings: common.settings,
      kind: task.map ? 'map' : 'module',
      moduleRef,
      version,
      workflowRef: null,
      childWorkflowVersionId: null,
      mapOver,
      mapAs: task.map ? (task.map.as ?? 'item') : null,
      parameters,
      executor,
      pool: pool ?? executor,
      gpus,
      hotCluster: cluster ? cluster.name : null,
    });
  }
  if (details.length) {
    if (options.nested) throw new NestedPlanError(details);
    throw planError(details, !options.specDefaults);
  }
  return planned;
}

/**
 * A plan's problems: the caller's (BAD_USER_INPUT, as an undeclared or missing run parameter is) when each is about a
 * run parameter they gave (`parameters.NAME`, named so by the loop above), else the workflow's (INVALID_WORKFLOW).
 */
function planError(details: ErrorDetail[], callersValues: boolean): AtelierError {
  const listed = details.map((d) => `${d.path}: ${d.message}`).join('; ');
  if (callersValues && details.every((d) => d.path?.startsWith('parameters.')))
    return new AtelierError('BAD_USER_INPUT', `Run parameters do not fit the workflow's modules (pass values their schemas accept): ${listed}`, details);
  return new AtelierError('INVALID_WORKFLOW', `The workflow cannot run: ${listed}`, details);
}

/**
 * The run parameter a problem's path lies in: the path itself (`parameters.list`) or the nearest enclosing one (an item
 * of a list or a key of an object given whole, `parameters.list.0`).
 */
function runParameterAt(fromRun: Map<string, string>, path: string): string | undefined {
  for (let at = path; at; at = at.slice(0, Math.max(0, at.lastIndexOf('.')))) {
    const name = fromRun.get(at);
    if (name) return name;
  }
  return undefined;
}

class NestedPlanError extends Error {
  constructor(readonly details: ErrorDetail[]) {
    super('nested plan failed');
  }
}

/**
 * Resolves a `workflow` node to a pinned version of the child workflow and checks it as a run of it would start
 * now (its parameters, its modules, its own nested workflows), refusing cycles across nesting.
 */
async function planChildWorkflow(
  tx: Tx,
  node: string,
  ref: string,
  parameters: Record<string, unknown>,
  defaults: PlanDefaults,
  options: PlanOptions,
  details: ErrorDetail[],
): Promise<{ id: string; parameters: Record<string, unknown> } | null> {
  const path = `tasks.${node}.workflow`;
  const [name, pinnedVersion] = ref.split('@') as [string, string | undefined];
  const stack = options.stack ?? [];
  const [workflow] = await tx.select().from(workflows).where(eq(workflows.name, name));
  const useCandidate = options.candidate?.name === name && pinnedVersion === undefined;
  if (!workflow && !useCandidate) {
    details.push({ path, message: `unknown workflow "${name}"; create it first` });
    return null;
  }
  const versionNumber = pinnedVersion ? Number(pinnedVersion) : workflow?.latestVersion;
  const label = `${name}@${useCandidate ? 'new' : versionNumber}`;
  if (stack.includes(label) || (useCandidate && stack.includes(`${name}@new`))) {
    details.push({ path, message: `makes a cycle across nested workflows: ${[...stack, label].join(' → ')}` });
    return null;
  }
  if (stack.length >= MAX_NESTING) {
    details.push({ path, message: `nests workflows more than ${MAX_NESTING} deep (${[...stack, label].join(' → ')})` });
    return null;
  }
  let spec: WorkflowSpec;
  let id: string;
  if (useCandidate) {
    spec = options.candidate!;
    id = 'candidate';
  } else {
    const [version] = await tx
      .select()
      .from(workflowVersions)
      .where(and(eq(workflowVersions.workflowId, workflow!.id), eq(workflowVersions.version, versionNumber!)));
    if (!version) {
      details.push({ path, message: `workflow "${name}" has no version ${versionNumber}; its latest is ${workflow!.latestVersion}` });
      return null;
    }
    spec = version.spec;
    id = version.id;
  }
  let childParameters: Record<string, unknown>;
  try {
    childParameters = resolveRunParameters(spec, parameters, { partial: options.partial || UNRESOLVED in parameters });
  } catch (error) {
    details.push({ path: `tasks.${node}.parameters`, message: (error as Error).message });
    return null;
  }
  try {
    await planRun(tx, spec, childParameters, defaults, {
      stack: [...stack, label],
      candidate: options.candidate,
      clustersUsed: options.clustersUsed,
      nested: true,
      partial: options.partial || UNRESOLVED in parameters,
    });
  } catch (error) {
    if (!(error instanceof NestedPlanError)) throw error;
    for (const d of error.details) details.push({ path: `${path}(${label}).${d.path}`, message: d.message });
    return null;
  }
  return { id, parameters: childParameters };
}

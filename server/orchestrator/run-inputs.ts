// Checks and decisions on what a caller asks of a new run, made before anything is written: idempotency keys,
// module swaps, private cache namespaces, and which nodes of a source run a rerun reuses.
import type { Task } from '../db/tables/runs';
import { AtelierError, badInput } from '../errors';
import { parseModuleRef } from '../modules/ref';
import { type Domain, RUN_PRIORITY_MAX, RUN_PRIORITY_MIN, type TaskStatus, type WorkflowSpec } from '../vocabulary';
import { pushTo } from './rules';

/** A run's priority, checked before anything is written: an integer within the bounds. */
export function checkPriority(priority: number | undefined): void {
  if (priority === undefined) return;
  if (!Number.isInteger(priority) || priority < RUN_PRIORITY_MIN || priority > RUN_PRIORITY_MAX)
    throw badInput(`priority must be an integer from ${RUN_PRIORITY_MIN} to ${RUN_PRIORITY_MAX} (default 0; higher goes first); got ${priority}.`);
}

export function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && (key.length === 0 || key.length > 200)) throw badInput('idempotencyKey must be 1 to 200 characters.');
}

/** A key already used returns its run only for the same workflow (`requested`: its name or id); else CONFLICT. */
export function checkSameWorkflow(workflow: { id: string; name: string } | undefined, requested: string, key: string | undefined): void {
  if (workflow && workflow.name !== requested && workflow.id !== requested) {
    throw new AtelierError(
      'CONFLICT',
      `idempotencyKey "${key}" was already used to start a run of workflow "${workflow.name}"; use a new key for another workflow.`,
    );
  }
}

/** node → ref for every node of the spec whose module one of `refs` (`ns/name@version`) names. */
export function moduleSwaps(spec: Pick<WorkflowSpec, 'tasks'>, refs: string[]): Map<string, string> | undefined {
  if (!refs.length) return undefined;
  const swaps = new Map<string, string>();
  for (const ref of refs) {
    const { namespace, name } = parseModuleRef(ref);
    if (!ref.includes('@') || !name) throw badInput(`useModules takes namespace/name@version, not "${ref}".`);
    const nodes = spec.tasks.filter((t) => t.module && t.module.split('@')[0] === `${namespace}/${name}`);
    if (!nodes.length) throw badInput(`The workflow uses no ${namespace}/${name}, so "${ref}" would change nothing.`);
    for (const node of nodes) swaps.set(node.name, ref);
  }
  return swaps;
}

const cacheNamespaceRe = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Checks a run's private cache namespace: experimentation runs only, a short lowercase name. */
export function privateNamespace(cacheNamespace: string | undefined, domain: Domain): string | null {
  if (cacheNamespace === undefined) return null;
  if (domain !== 'experimentation') throw badInput(`Only experimentation runs may use a private cache namespace; this run's domain is ${domain}.`);
  if (!cacheNamespaceRe.test(cacheNamespace)) throw badInput('cacheNamespace is 1–63 lowercase letters, digits, ".", "_" or "-".');
  return cacheNamespace;
}

export interface RerunRequest {
  from: 'FAILED' | 'ALL' | 'NODES';
  nodes?: string[];
  modules?: Record<string, string>;
}

/**
 * The source run's tasks a rerun reuses, by node: everything that succeeded, except what is asked to execute again
 * (all, named nodes, swapped modules) and everything downstream of that, which sees new inputs.
 */
export function rerunReuse<T extends { node: string; status: TaskStatus; dependsOn: string[] }>(
  runId: string,
  sourceTasks: T[],
  input: RerunRequest,
): Map<string, T> {
  const byNode = new Map(sourceTasks.map((t) => [t.node, t]));
  const unknown = [...(input.nodes ?? []), ...Object.keys(input.modules ?? {})].filter((n) => !byNode.has(n));
  if (unknown.length) {
    throw new AtelierError(
      'BAD_USER_INPUT',
      `Run ${runId} has no node${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}; its nodes are: ${[...byNode.keys()].join(', ')}`,
      unknown.map((n) => ({ path: `nodes.${n}`, message: 'is not a node of the run' })),
    );
  }
  if (input.from === 'NODES' && !input.nodes?.length && !Object.keys(input.modules ?? {}).length)
    throw badInput('from: NODES needs the nodes to execute again.');
  const again = new Set<string>(input.from === 'ALL' ? byNode.keys() : []);
  for (const t of sourceTasks) if (t.status !== 'SUCCEEDED') again.add(t.node); // a failure cannot be reused
  for (const n of input.nodes ?? []) again.add(n);
  for (const n of Object.keys(input.modules ?? {})) again.add(n);
  const downstream = new Map<string, string[]>();
  for (const t of sourceTasks) for (const d of t.dependsOn) pushTo(downstream, d, t.node);
  const stack = [...again];
  while (stack.length) {
    for (const next of downstream.get(stack.pop()!) ?? []) {
      if (again.has(next)) continue;
      again.add(next);
      stack.push(next);
    }
  }
  return new Map(sourceTasks.filter((t) => !again.has(t.node)).map((t) => [t.node, t]));
}

/** Module versions a run pinned, by node (map items and nested workflows are planned afresh). */
export function pinnedVersions(sourceTasks: Pick<Task, 'node' | 'moduleVersionId' | 'mapParent'>[]): Map<string, string> {
  return new Map(sourceTasks.filter((t) => t.moduleVersionId && t.mapParent === null).map((t) => [t.node, t.moduleVersionId!]));
}

// The cache key: a sha256 over the RFC 8785 canonical JSON of everything that determines a module task's result.
// Only contents go in (digests of artifacts and inputs, canonical parameter values), never run ids, users, times,
// pools, names of stored objects or paths, so equal work always gets equal keys and different work never does.
import { createHash } from 'node:crypto';
import { canonicalJson, digestOf } from '../artifacts/digest';
import type { KeyComponents, ModuleManifest } from '../vocabulary';

export interface KeyInput {
  digest: string;
  manifest: ModuleManifest;
  parameters: Record<string, unknown>;
  /** Outputs of each upstream, as the task receives them. */
  inputs: Record<string, Record<string, unknown>>;
  scope: string;
}

/**
 * `seen` remembers the digest of each upstream's outputs object across the tasks of a batch: a fan-out of a thousand
 * tasks from one upstream hashes its outputs once.
 */
export function keyComponents(input: KeyInput, seen = new WeakMap<object, string>()): KeyComponents {
  const inputDigest = (outputs: Record<string, unknown>) => {
    let digest = seen.get(outputs);
    if (!digest) seen.set(outputs, (digest = digestOf(outputs)));
    return digest;
  };
  // The columns the task receives: each declared input dataset and the names of its columns (types and
  // descriptions do not change what the task reads).
  const declared =
    input.manifest.inputs?.map((port) => ({ name: port.name, dataset: port.dataset ?? null, columns: (port.columns ?? []).map((c) => c.name) })) ?? null;
  return {
    format: 1,
    module: input.digest,
    entrypoint: input.manifest.entrypoint,
    parameters: Object.fromEntries(Object.entries(input.parameters).map(([name, value]) => [name, digestOf(value)])),
    inputs: Object.fromEntries(Object.entries(input.inputs).map(([node, outputs]) => [node, inputDigest(outputs)])),
    projection: digestOf(declared),
    cacheVersion: input.manifest.cache?.version ?? '',
    scope: input.scope,
  };
}

export const cacheKey = (components: KeyComponents): string => createHash('sha256').update(canonicalJson(components)).digest('hex');

/** Whether a module's results may be cached: on unless its manifest opts out. */
export const cacheable = (manifest: ModuleManifest): boolean => manifest.cache?.enabled !== false;

const objectDigestRe = /^sha256:[0-9a-f]{64}$/;

/** Object-store digests an output value references; the entry is only good while every one of them exists. */
export function referencedObjects(value: unknown, found = new Set<string>()): Set<string> {
  if (typeof value === 'string') {
    if (objectDigestRe.test(value)) found.add(value);
  } else if (Array.isArray(value)) for (const v of value) referencedObjects(v, found);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) referencedObjects(v, found);
  return found;
}

export interface KeyDifference {
  component: 'format' | 'module' | 'entrypoint' | 'parameter' | 'input' | 'projection' | 'cacheVersion' | 'scope';
  /** The parameter or input that differs. */
  name: string | null;
  message: string;
}

/** What differs between a task's key components and an earlier entry's, in words. */
export function keyDifferences(task: KeyComponents, entry: KeyComponents): KeyDifference[] {
  const out: KeyDifference[] = [];
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
  if (task.format !== entry.format) out.push({ component: 'format', name: null, message: 'the entry was written by an older cache key format' });
  if (task.scope !== entry.scope) out.push({ component: 'scope', name: null, message: `the entry is in scope ${entry.scope}, the task in ${task.scope}` });
  if (task.module !== entry.module)
    out.push({
      component: 'module',
      name: null,
      message: `the module artifact differs (${entry.module.slice(0, 19)}… then, ${task.module.slice(0, 19)}… now)`,
    });
  if (task.entrypoint !== entry.entrypoint)
    out.push({ component: 'entrypoint', name: null, message: `the entrypoint changed from ${entry.entrypoint} to ${task.entrypoint}` });
  if (task.cacheVersion !== entry.cacheVersion)
    out.push({ component: 'cacheVersion', name: null, message: `the module's cache version changed from "${entry.cacheVersion}" to "${task.cacheVersion}"` });
  if (task.projection !== entry.projection) out.push({ component: 'projection', name: null, message: 'the column projection the task receives differs' });
  for (const [kind, a, b] of [
    ['parameter', task.parameters, entry.parameters],
    ['input', task.inputs, entry.inputs],
  ] as const) {
    for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (same(a[name], b[name])) continue;
      const message = !(name in b)
        ? `${kind} ${name} is new`
        : !(name in a)
          ? `${kind} ${name} is gone`
          : `${kind} ${name} has a different ${kind === 'input' ? 'content digest' : 'value'}`;
      out.push({ component: kind, name, message });
    }
  }
  return out;
}

/** The cache scope of a run: its domain, narrowed to its private namespace when it has one. */
export const cacheScope = (run: { domain: string; cacheNamespace?: string | null }) =>
  run.cacheNamespace ? `${run.domain}/${run.cacheNamespace}` : run.domain;

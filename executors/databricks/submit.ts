// Builds the `runs/submit` request for one task attempt: per-task settings (`settings.databricks`), the cluster
// (new, from an instance pool, or an existing "hot" one), the Python entrypoint, and the idempotency token.
import { createHash } from 'node:crypto';
import type { TaskMessage } from '../../plugins/sdk';

/** A `new_cluster` spec as the Clusters API takes it (spark_version, node_type_id, num_workers, …). */
export type NewClusterSpec = Record<string, unknown>;

/** What a task may set under `settings.databricks`. */
export interface DatabricksTaskSettings {
  /** How the module runs: a Python file from the artifact (default), or a wheel from it. */
  task?: 'spark_python_task' | 'python_wheel_task';
  /** Cluster spec for this task, merged over the executor's `defaultCluster`. */
  new_cluster?: NewClusterSpec;
  /** Take the new cluster's nodes from this warm instance pool (node types then come from the pool). */
  instance_pool_id?: string;
  /** Run on this all-purpose ("hot") cluster instead of creating one: no provisioning, but no env vars either. */
  existing_cluster_id?: string;
  /** Extra libraries (`[{ pypi: { package } }, { whl: … }]`). */
  libraries?: Record<string, unknown>[];
  /** Databricks-side limit; defaults to the attempt's own time limit, as a backstop if the host is gone. */
  timeout_seconds?: number;
  /** python_wheel_task: the package to run (default: the wheel file's distribution name). */
  package_name?: string;
  /** python_wheel_task: the entry point (default `main`). */
  entry_point?: string;
}

export type ClusterKind = 'new' | 'pool' | 'existing';

export interface SubmitRequest {
  body: Record<string, unknown>;
  cluster: ClusterKind;
  idempotencyToken: string;
}

const TOKEN_MAX_CHARS = 64; // Databricks' limit
export const TASK_KEY = 'atelier';

/**
 * Stable per (task, attempt), so a redelivered attempt (a restarted host) submits with the same token and Databricks
 * answers with the run it already started instead of starting a second one.
 */
export function idempotencyTokenFor(task: Pick<TaskMessage, 'taskId' | 'attempt'>): string {
  const readable = `atelier-${task.taskId}-${task.attempt}`;
  if (readable.length <= TOKEN_MAX_CHARS) return readable;
  const digest = createHash('sha256').update(`${task.taskId}:${task.attempt}`).digest('hex');
  return `atelier-${digest.slice(0, TOKEN_MAX_CHARS - 'atelier-'.length)}`;
}

/**
 * The `new_cluster` fields a task may set: its size and runtime. The rest (instance profiles and cloud attributes,
 * init scripts, the single user, the access mode, a policy, a Docker image, SSH keys, log delivery) decide what the
 * cluster may read or who it runs as, which is the operator's `defaultCluster`, not a module's author's, to choose.
 */
export const TASK_CLUSTER_FIELDS: readonly string[] = [
  'spark_version',
  'node_type_id',
  'driver_node_type_id',
  'num_workers',
  'autoscale',
  'spark_conf',
  'spark_env_vars',
  'custom_tags',
  'runtime_engine',
  'enable_elastic_disk',
];

/** What the operator lets a task's settings choose beyond its cluster's size. */
export interface TaskSettingsPolicy {
  /** All-purpose clusters a task may name in `existing_cluster_id` (none: the setting is refused; hot clusters go through Atelier's). */
  existingClusterIds?: readonly string[];
  /** `new_cluster` fields a task may set besides TASK_CLUSTER_FIELDS. */
  clusterFields?: readonly string[];
}

/** Validates `settings.databricks`; a problem is a permanent task failure, so it names the field. */
export function parseTaskSettings(raw: unknown, policy: TaskSettingsPolicy = {}): { settings: DatabricksTaskSettings } | { error: string } {
  if (raw === undefined || raw === null) return { settings: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { error: 'settings.databricks must be an object' };
  const s = raw as Record<string, unknown>;
  const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const isString = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if (s.task !== undefined && s.task !== 'spark_python_task' && s.task !== 'python_wheel_task') {
    return { error: `settings.databricks.task must be "spark_python_task" or "python_wheel_task", not ${JSON.stringify(s.task)}` };
  }
  if (s.new_cluster !== undefined && !isObject(s.new_cluster)) return { error: 'settings.databricks.new_cluster must be an object' };
  for (const key of ['instance_pool_id', 'existing_cluster_id', 'package_name', 'entry_point'] as const) {
    if (s[key] !== undefined && !isString(s[key])) return { error: `settings.databricks.${key} must be a non-empty string` };
  }
  if (s.existing_cluster_id !== undefined && (s.new_cluster !== undefined || s.instance_pool_id !== undefined)) {
    return { error: 'settings.databricks.existing_cluster_id cannot be combined with new_cluster or instance_pool_id' };
  }
  if (s.existing_cluster_id !== undefined && !(policy.existingClusterIds ?? []).includes(s.existing_cluster_id as string)) {
    return {
      error: `settings.databricks.existing_cluster_id ${JSON.stringify(s.existing_cluster_id)} is not a cluster this executor lets tasks name (its existingClusterIds); ask for a hot cluster (hotCluster) instead`,
    };
  }
  if (isObject(s.new_cluster)) {
    const allowed = new Set([...TASK_CLUSTER_FIELDS, ...(policy.clusterFields ?? [])]);
    const refused = Object.keys(s.new_cluster as object).filter((k) => !allowed.has(k));
    if (refused.length)
      return {
        error: `settings.databricks.new_cluster may not set ${refused.join(', ')}: a task sets only ${[...allowed].join(', ')}; the rest is the executor's defaultCluster`,
      };
  }
  if (s.libraries !== undefined && (!Array.isArray(s.libraries) || !s.libraries.every(isObject))) {
    return { error: 'settings.databricks.libraries must be an array of library objects' };
  }
  if (s.timeout_seconds !== undefined && !(Number.isInteger(s.timeout_seconds) && (s.timeout_seconds as number) >= 0)) {
    return { error: 'settings.databricks.timeout_seconds must be a whole number of seconds' };
  }
  return { settings: s as DatabricksTaskSettings };
}

/**
 * The `runs/submit` body. `moduleDir` is where the module's files were uploaded. Module context travels as task
 * parameters, not environment variables: an existing cluster cannot take per-run env vars.
 */
export function buildSubmitRequest(
  task: TaskMessage,
  settings: DatabricksTaskSettings,
  moduleDir: string,
  defaultCluster: NewClusterSpec | undefined,
): SubmitRequest | { error: string } {
  const entry = joinRemote(moduleDir, task.module.entrypoint);
  if (!entry) return { error: `entrypoint "${task.module.entrypoint}" of ${task.module.ref} is not a relative path inside the module` };

  const context: [string, string][] = [
    ['atelier-task-id', task.taskId],
    ['atelier-run-id', task.runId],
    ['atelier-attempt', String(task.attempt)],
    ['atelier-node', task.node],
    ['atelier-params', JSON.stringify(task.parameters ?? {})],
    ['atelier-inputs', JSON.stringify(task.inputs ?? {})],
  ];
  const libraries = [...(settings.libraries ?? [])];
  const taskSpec: Record<string, unknown> = { task_key: TASK_KEY };

  if ((settings.task ?? 'spark_python_task') === 'spark_python_task') {
    if (!entry.endsWith('.py')) {
      return { error: `spark_python_task runs a Python file, but the entrypoint of ${task.module.ref} is "${task.module.entrypoint}"` };
    }
    taskSpec.spark_python_task = { python_file: entry, parameters: context.flatMap(([name, value]) => [`--${name}`, value]) };
  } else {
    if (!entry.endsWith('.whl')) {
      return { error: `python_wheel_task installs a wheel, but the entrypoint of ${task.module.ref} is "${task.module.entrypoint}" (expected a .whl file)` };
    }
    const wheelName = entry.slice(entry.lastIndexOf('/') + 1);
    taskSpec.python_wheel_task = {
      package_name: settings.package_name ?? wheelName.split('-')[0],
      entry_point: settings.entry_point ?? 'main',
      named_parameters: Object.fromEntries(context),
    };
    libraries.push({ whl: entry });
  }

  let cluster: ClusterKind;
  if (settings.existing_cluster_id) {
    cluster = 'existing';
    taskSpec.existing_cluster_id = settings.existing_cluster_id;
  } else {
    const spec: NewClusterSpec = { ...(defaultCluster ?? {}), ...(settings.new_cluster ?? {}) };
    if (settings.instance_pool_id) {
      spec.instance_pool_id = settings.instance_pool_id;
    }
    if (typeof spec.instance_pool_id === 'string') {
      // The pool fixes the node type; a node_type_id beside it is rejected or ignored.
      delete spec.node_type_id;
      delete spec.driver_node_type_id;
      cluster = 'pool';
    } else {
      cluster = 'new';
    }
    if (Object.keys(spec).length === 0) {
      return {
        error:
          'no cluster for this task: set settings.databricks.new_cluster, instance_pool_id or existing_cluster_id, or give the databricks executor a defaultCluster',
      };
    }
    taskSpec.new_cluster = spec;
  }
  if (libraries.length > 0) taskSpec.libraries = libraries;

  const idempotencyToken = idempotencyTokenFor(task);
  const timeoutSeconds = settings.timeout_seconds ?? (task.timeoutMs > 0 ? Math.ceil(task.timeoutMs / 1_000) : undefined);
  const body: Record<string, unknown> = {
    run_name: `atelier ${task.node} ${task.module.ref} (task ${task.taskId}, attempt ${task.attempt})`,
    idempotency_token: idempotencyToken,
    tasks: [taskSpec],
  };
  if (timeoutSeconds !== undefined) body.timeout_seconds = timeoutSeconds;
  return { body, cluster, idempotencyToken };
}

/** `dir` + a module-relative path, refusing absolute paths and `..` (they would point outside the module). */
export function joinRemote(dir: string, relative: string): string | null {
  const parts = relative.split('/').filter((p) => p !== '' && p !== '.');
  if (relative.startsWith('/') || parts.length === 0 || parts.includes('..')) return null;
  return `${dir.replace(/\/+$/, '')}/${parts.join('/')}`;
}

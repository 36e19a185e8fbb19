// The workflow spec's shape: a DAG of module tasks, nested workflows and maps, as written in YAML or JSON.
// Parsing and checking it live in workflows/spec.ts.
import type { Domain } from './domains';
import type { TriggerRule } from './runs';

export interface TaskSpec {
  name: string;
  /** `namespace/name@tag` or `namespace/name@version`; `@latest` when omitted. */
  module?: string;
  /** Runs another workflow as a child run: `name` (its latest version, pinned at run start) or `name@VERSION`. */
  workflow?: string;
  /**
   * Fans `module` out over a list, one item per task, collecting their outputs as `results`: a JSON list,
   * "${params.NAME}", or "${outputs.NODE.NAME}" (an output of an upstream node). Each item is passed as the
   * parameter named by `as` (default `item`).
   */
  map?: { over: unknown; as?: string };
  /**
   * Models the task takes as inputs, by port: `namespace/name@alias` or `namespace/name/VERSION`, resolved to one
   * version when the run starts (reruns and clones keep it) and handed to the executor with the version's files.
   */
  models?: Record<string, string>;
  parameters?: Record<string, unknown>;
  dependsOn?: string[];
  retries?: number;
  /** Wait before the first retry; each further retry waits twice as long (capped at 10 minutes). */
  retryDelaySeconds?: number;
  /** When the task may run, given its upstreams' outcomes. Default `all_succeeded`. */
  trigger?: TriggerRule;
  /**
   * A CEL condition over `params`, and the `outputs` and `status` of the task's direct upstreams, decided when the
   * task would be dispatched: false skips it (and, by their trigger rules, what depends on it).
   */
  when?: string;
  /** One attempt's time limit (at most TIMEOUT_MAX_SECONDS). */
  timeoutSeconds?: number;
  pool?: string;
  executor?: string;
  /** Run on this hot cluster (`npx atelier cluster create NAME`): its executor and pool, no provisioning. */
  hotCluster?: string;
  /** Per-executor settings, keyed by executor name. */
  settings?: Record<string, unknown>;
}

export interface WorkflowSpec {
  name: string;
  description?: string;
  domain?: Domain;
  /** Run parameters with their defaults; task parameters refer to them as "${params.NAME}". */
  parameters?: Record<string, { default?: unknown; description?: string }>;
  concurrency?: {
    /** Most tasks of one run queued or running at once. */
    maxParallelTasks?: number;
    /** Most runs of this workflow active at once; further runs wait, queued, in the order they started. */
    maxActiveRuns?: number;
  };
  /**
   * The run's time limit, counted from its admission (time queued behind `maxActiveRuns` does not count): past it,
   * every open task is cancelled and the run ends FAILED. At most TIMEOUT_MAX_SECONDS; `startRun(timeoutSeconds:)`
   * overrides it for one run.
   */
  timeoutSeconds?: number;
  tasks: TaskSpec[];
}

/** The longest time limit a task's attempt or a run may have: 7 days. */
export const TIMEOUT_MAX_SECONDS = 7 * 24 * 3600;

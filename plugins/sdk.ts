// The executor plugin SDK: the one interface an executor implements, and the context the host hands it.
// An executor is a plain object (no base class), made by a `createX(options)` factory and listed in one
// array at start-up (see registry.ts). The host (host.ts) owns the bus, acks, heartbeats, timeouts and
// retries; an executor only starts work, follows it, stops it and cleans up.
import type { ModelRegistrationRequest, TaskMessage, TaskOutcome } from './protocol';

export {
  cancelled,
  type FailureDetails,
  failed,
  type OutcomeDetails,
  permanentFailure,
  retryableFailure,
  succeeded,
  systemFailure,
  timedOut,
} from './outcomes';
export type { ModelRegistrationRequest, TaskMessage, TaskOutcome, TerminalState } from './protocol';

/** A hot cluster as an executor is asked to keep it: its name, pool and executor-specific spec. */
export interface HotClusterSpec {
  name: string;
  pool: string;
  spec: Record<string, unknown>;
}

/** Why the host asked an attempt to stop. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown';

/** What the host gives an executor for one attempt. Every method is cheap and never throws. */
export interface TaskContext {
  /**
   * Aborted when the attempt must stop: a user cancel, the attempt's deadline, or host shutdown.
   * `signal.reason` is an {@link AbortReason}. The host calls `cancel()` for you when it aborts; the signal is
   * for executors that want to stop local waits early.
   */
  readonly signal: AbortSignal;
  /**
   * True once the attempt must stop (the same moment `signal.aborted` turns true, for the same causes). Cheaper than
   * `signal.aborted` where a check is all an executor needs: the host makes an attempt's signal only when something
   * reads `signal`, and most attempts are never stopped.
   */
  readonly aborted: boolean;
  /**
   * A private, empty directory for this attempt, removed after `finalize`. Made only for executors that need one
   * (`Executor.workdir`, default true); for an executor that declared `workdir: false`, reading it throws.
   */
  readonly workdir: string;
  /** Local path of the module's artifact archive (tar.gz), already verified against its digest. */
  artifactPath(): Promise<string>;
  /**
   * Local path of another object the task message names by content digest (a model input's file), fetched like the
   * module's archive. Optional: an executor without it hands over the digests only.
   */
  objectPath?(digest: string): Promise<string>;
  /** Append log lines; batched by the host (~64 KB or 250 ms) before they are published. */
  log(stream: 'stdout' | 'stderr', line: string): void;
  /** Report progress: a fraction in [0, 1] (or null when unknown) and an optional message. */
  progress(fraction: number | null, message?: string | null): void;
  /**
   * Report numeric metrics, optionally at a training step (any integer, in any order). Every point is kept, NaN and
   * ±Infinity included; the host batches them, so calling this every training step is cheap.
   */
  metric(metrics: Record<string, number>, step?: number | null): void;
  /**
   * Report many points of one metric at once: `values[i]` at training step `steps[i]` (`steps` null, or NaN at an
   * index: none given, so the point's index among that metric's points). The same rules as `metric` for each point
   * and the same order among all points reported; a host keeps the columns as they are until the points go out.
   * Optional: where a context lacks it, the points go through `metric` one by one (`reportMetricSeries`).
   */
  metricSeries?(name: string, steps: ArrayLike<number> | null, values: ArrayLike<number>): void;
  /** Record a named output of the task (JSON value); outputs flow to downstream tasks as inputs. */
  output(name: string, value: unknown): void;
  /**
   * Ask for an output (or artifact folder) to be registered as a model version once the task has succeeded. Optional:
   * a context without it (a test's) ignores such requests.
   */
  registerModel?(request: ModelRegistrationRequest): void;
  /** Name of the executor host running the attempt (for messages and handles). */
  readonly host: string;
}

/**
 * An executor plugin. The lifecycle for one attempt is: `submit` → `wait` → (`cancel` when aborted) →
 * `finalize`. Hooks report task failures as outcomes (built with `succeeded`, `failed`, `systemFailure`, … from
 * outcomes.ts), never by throwing; a throw from any hook is treated as a retryable system failure and logged with
 * the executor's name.
 */
export interface Executor<Handle = unknown> {
  /** Unique name, used in pool routing and in per-task settings (`settings[name]`). */
  readonly name: string;

  /**
   * Whether an attempt needs `ctx.workdir` (default true). An executor that writes nothing locally (it runs nothing,
   * or its work runs remotely) declares `false`, and the host then creates and removes no directory per attempt.
   */
  readonly workdir?: boolean;

  /**
   * Whether an attempt may log to MLflow (default true): the control plane then mints the attempt a token of its own
   * when it lets it run (`task.tracking`). An executor that runs no module code (no-op), or that cannot hand the
   * token to the module (Databricks, whose runs log to the workspace's MLflow), declares `false`, and its attempts are
   * claimed without one (no credential minted that nothing uses; a token insert per claim batch spared).
   */
  readonly tracking?: boolean;

  /**
   * Most attempts of this executor a host runs at once, counted apart from the host's own slots (its
   * `maxConcurrency`, by default one per CPU). Only for executors whose attempts use no local CPU or memory to speak
   * of (they wait on a remote service, or run nothing): their waiting then never holds back local work, nor local work
   * them. Unset (the default), attempts share the host's slots.
   */
  readonly maxConcurrency?: number;

  /**
   * Start the attempt and return a JSON-serialisable handle (a pid, a remote run id, a job name).
   * Idempotent per `(task.taskId, task.attempt)`: called again for the same attempt (a redelivered message
   * after a host restart) it must adopt the work already started rather than start it twice.
   * The handle is recorded by the control plane with the attempt.
   */
  submit(task: TaskMessage, ctx: TaskContext): Promise<Handle>;

  /**
   * Follow the attempt until it ends and return its outcome, streaming logs, progress and metrics through
   * `ctx` meanwhile. After an abort the host calls `cancel` and keeps awaiting this promise, which should then
   * resolve promptly with `CANCELLED` (the host turns it into `TIMED_OUT` when its deadline caused the abort).
   */
  wait(handle: Handle, task: TaskMessage, ctx: TaskContext): Promise<TaskOutcome>;

  /**
   * Ask the work to stop. Idempotent, and must accept a handle whose work has already ended or is gone.
   * May return before the work has stopped; `wait` reports when it has.
   */
  cancel(handle: Handle, task: TaskMessage, reason: AbortReason): Promise<void>;

  /** Always runs once `wait` has settled (or `submit` failed): release what the attempt holds. */
  finalize?(handle: Handle | undefined, task: TaskMessage, outcome: TaskOutcome): Promise<void>;

  /**
   * Keep compute warm for a hot cluster until `endHotCluster`: tasks whose message names it (`task.hotCluster`)
   * then run without provisioning and report `provisioningMs: 0`. Called by the host when the control plane asks
   * (again after a host restart); must be idempotent per name. Executors without it run such tasks cold.
   */
  startHotCluster?(cluster: HotClusterSpec): Promise<void>;

  /** Let a hot cluster go. Idempotent; attempts already running on it finish first or are left to `cancel`. */
  endHotCluster?(name: string): Promise<void>;

  /**
   * True when a hot cluster is compute of its own that pulls the cluster's pool itself (Kubernetes warm pods),
   * rather than something inside this host: any host with the executor then starts and ends it whatever pools
   * it serves (both idempotent), and the cluster outlives the host that started it.
   */
  readonly remoteHotClusters?: boolean;

  /** Release executor-wide resources when the host stops. */
  close?(): Promise<void>;
}

/** Reports one metric's points through `ctx.metricSeries`, or point by point where the context has none. */
export function reportMetricSeries(ctx: TaskContext, name: string, steps: ArrayLike<number> | null, values: ArrayLike<number>): void {
  if (ctx.metricSeries) {
    ctx.metricSeries(name, steps, values);
    return;
  }
  for (let i = 0; i < values.length; i++) {
    const step = steps ? steps[i]! : Number.NaN;
    ctx.metric({ [name]: values[i]! }, Number.isNaN(step) ? null : step);
  }
}

/** Type helper for executor factories: `export const createX = (o: XOptions) => defineExecutor({...})`. */
export function defineExecutor<Handle>(executor: Executor<Handle>): Executor<Handle> {
  return executor;
}

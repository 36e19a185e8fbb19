// The `databricks` executor: runs a module as a one-time Databricks job run (Jobs API 2.2 `runs/submit`) on a new
// cluster, an instance pool or an existing all-purpose cluster; follows it with `runs/get`, stops it with
// `runs/cancel`, and streams `runs/get-output`. Submission is idempotent per task attempt (idempotency_token).

import { defineExecutor, type Executor, failed, type TaskContext, type TaskOutcome } from '../../plugins/sdk';
import { createTokenSource, credentialsProblem, type DatabricksAuth } from './auth';
import { followRun, type RunControl, shutdownSignal } from './follow';
import { type Clock, createDatabricksHttp, DatabricksApiError, defaultRetryPolicy, type FetchLike, type RetryPolicy, systemClock } from './http';
import { buildSubmitRequest, type ClusterKind, type NewClusterSpec, parseTaskSettings } from './submit';
import { createVolumesUpload, type UploadModule } from './upload';

export type { DatabricksAuth } from './auth';
export type { Clock, FetchLike, RetryPolicy } from './http';
export { readRunState } from './states';
export type { DatabricksTaskSettings, NewClusterSpec } from './submit';
export { idempotencyTokenFor } from './submit';
export type { UploadModule } from './upload';

export interface DatabricksExecutorOptions {
  /** Workspace URL, e.g. `https://adb-1234567890123456.7.azuredatabricks.net`. */
  host: string;
  /** A personal access token, or an OAuth M2M service principal (`/oidc/v1/token`, refreshed before expiry). */
  auth: DatabricksAuth;
  /**
   * Where module files are uploaded: a Unity Catalog volume path (`/Volumes/<catalog>/<schema>/<volume>/atelier`),
   * written with the Files API. Required unless `upload` is given.
   */
  stagingDir?: string;
  /** Replaces the Files API upload (DBFS, workspace files, a bucket…): resolves to the remote module directory. */
  upload?: UploadModule;
  /** The `new_cluster` used when a task names no cluster; a task's `new_cluster` is merged over it. */
  defaultCluster?: NewClusterSpec;
  /** All-purpose clusters a task's settings may name in `existing_cluster_id`; none (the default): refused. */
  existingClusterIds?: string[];
  /** `new_cluster` fields a task may set besides its size and runtime (TASK_CLUSTER_FIELDS in submit.ts). */
  taskClusterFields?: string[];
  /** Time between `runs/get` polls (±20 % jitter). Default 10 s. */
  pollIntervalMs?: number;
  /** Time, injectable for tests. */
  clock?: Clock;
  /** Jitter source, injectable for tests. */
  random?: () => number;
  /** HTTP, injectable for tests. Default: the global fetch. */
  fetch?: FetchLike;
  retry?: Partial<RetryPolicy>;
  /** A request with no answer within this long is retried. Default 60 s. */
  requestTimeoutMs?: number;
  /** Give up following a run after `runs/get` has failed this long without a break. Default 10 min. */
  pollErrorBudgetMs?: number;
  /** After a cancel, report CANCELLED anyway if the run is still not terminating after this long. Default 5 min. */
  cancelGraceMs?: number;
}

/**
 * What the control plane records for a Databricks attempt. A submission Databricks refused (or that could not be
 * made) gets a handle with no run id and the reason, and `wait` reports it as the attempt's outcome.
 */
export type DatabricksHandle =
  | { runId: number; cluster: ClusterKind }
  | { runId: null; reason: string; error: string; retryable: boolean; systemFailure?: boolean };

const SUBMIT_PATH = '/api/2.2/jobs/runs/submit';
const CANCEL_PATH = '/api/2.2/jobs/runs/cancel';

export function createDatabricksExecutor(options: DatabricksExecutorOptions): Executor<DatabricksHandle> {
  const fail = (why: string) => new Error(`databricks executor: ${why}`);
  const host = normaliseHost(options?.host);
  if (!host) throw fail(`\`host\` must be the workspace URL (https://…), not ${JSON.stringify(options?.host)}`);
  const problem = credentialsProblem(options.auth);
  if (problem) throw fail(problem);
  const stagingDir = options.stagingDir?.trim();
  if (!options.upload) {
    if (!stagingDir) throw fail('`stagingDir` is required (a /Volumes/… path for module files), or give `upload`');
    if (!stagingDir.startsWith('/Volumes/')) {
      throw fail(`the built-in upload writes to Unity Catalog volumes (/Volumes/…), not ${JSON.stringify(stagingDir)}: give \`upload\` for other storage`);
    }
  }

  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  const tokens = createTokenSource(options.auth, { host, fetch, clock, requestTimeoutMs });
  const http = createDatabricksHttp({ host, tokens, fetch, clock, random, requestTimeoutMs, retry: { ...defaultRetryPolicy, ...options.retry } });
  const upload = options.upload ?? createVolumesUpload(http, stagingDir!);
  const uploads = new Map<string, Promise<string>>();
  const controls = new Map<number, RunControl>();
  /** Hot clusters: an all-purpose cluster per name, whose id tasks on it are submitted with. */
  const hotClusters = new Map<string, string>();
  let lifetime = new AbortController();

  const controlOf = (runId: number) => {
    let control = controls.get(runId);
    if (!control) controls.set(runId, (control = { cancelRequested: false, wake: new AbortController() }));
    return control;
  };

  async function requestCancel(runId: number) {
    // Wake a wait in progress; without one (a cancel after finalize) there is nothing to remember.
    const control = controls.get(runId);
    if (control) {
      control.cancelRequested = true;
      control.wake.abort();
    }
    try {
      await http.request('POST', CANCEL_PATH, { json: { run_id: runId }, signal: lifetime.signal });
    } catch (err) {
      // A run that is unknown (or already gone) needs no cancel: the contract accepts work that has ended.
      if (err instanceof DatabricksApiError && (err.details.status === 400 || err.details.status === 404)) return;
      throw err;
    }
  }

  /** One upload per module version per process; the remote directory is content-addressed, so a re-upload is harmless. */
  function uploadOnce(digest: string, ctx: TaskContext) {
    let pending = uploads.get(digest);
    if (!pending) {
      pending = ctx.artifactPath().then((archive) => upload(digest, archive));
      uploads.set(digest, pending);
      pending.catch(() => uploads.delete(digest));
    }
    return pending;
  }

  const refused = (reason: string, error: string, retryable: boolean, systemFailure?: boolean): DatabricksHandle => ({
    runId: null,
    reason,
    error,
    retryable,
    ...(systemFailure ? { systemFailure } : {}),
  });
  const refusedBy = (what: string, err: DatabricksApiError): DatabricksHandle => {
    if (err.details.credentials) return refused('credentials', `${what}: ${err.message}`, false);
    if (err.details.retryable) return refused('databricks-unavailable', `${what}: ${err.message}`, true, true);
    return refused('rejected', `${what}: ${err.message}`, false);
  };

  return defineExecutor<DatabricksHandle>({
    name: 'databricks',
    // A Databricks run logs to its workspace's own MLflow: it is handed no Atelier task token (one would show in the
    // run's settings to everyone who may view the job), so none is minted for it.
    tracking: false,

    async submit(task, ctx) {
      const parsed = parseTaskSettings(task.settings?.databricks, { existingClusterIds: options.existingClusterIds, clusterFields: options.taskClusterFields });
      if ('error' in parsed) return refused('invalid-settings', parsed.error, false);
      const hotClusterId = task.hotCluster ? hotClusters.get(task.hotCluster) : undefined;
      if (hotClusterId) {
        // The hot cluster replaces whatever cluster the task's settings would have asked for.
        const { new_cluster: _n, instance_pool_id: _p, ...rest } = parsed.settings;
        parsed.settings = { ...rest, existing_cluster_id: hotClusterId };
      }
      let moduleDir: string;
      try {
        moduleDir = await uploadOnce(task.module.digest, ctx);
      } catch (err) {
        if (err instanceof DatabricksApiError) return refusedBy(`uploading module ${task.module.ref}`, err);
        throw err;
      }
      const request = buildSubmitRequest(task, parsed.settings, moduleDir, options.defaultCluster);
      if ('error' in request) return refused('invalid-task', request.error, false);
      let answer: Record<string, unknown>;
      try {
        // Only a shutdown interrupts a submit (a long Retry-After must not hold up the host); a cancel waits for the
        // handle, which the host then cancels.
        answer = await http.request('POST', SUBMIT_PATH, { json: request.body, signal: shutdownSignal(ctx.signal, lifetime.signal) });
      } catch (err) {
        if (err instanceof DatabricksApiError) return refusedBy('submitting the run', err);
        throw err;
      }
      const runId = answer.run_id;
      if (typeof runId !== 'number' || !Number.isSafeInteger(runId)) {
        return refused('databricks-unavailable', `runs/submit answered without a usable run_id: ${JSON.stringify(answer).slice(0, 200)}`, true, true);
      }
      ctx.log('stderr', `[databricks] run ${runId} submitted on ${describeCluster(request.cluster)} (idempotency token ${request.idempotencyToken})`);
      return { runId, cluster: request.cluster };
    },

    async wait(handle, _task, ctx): Promise<TaskOutcome> {
      if (handle.runId === null) {
        return failed(handle.reason, handle.error, { retryable: handle.retryable, systemFailure: handle.systemFailure || undefined });
      }
      return followRun(handle, ctx, {
        http,
        clock,
        random,
        pollIntervalMs: options.pollIntervalMs ?? 10_000,
        pollErrorBudgetMs: options.pollErrorBudgetMs ?? 10 * 60_000,
        cancelGraceMs: options.cancelGraceMs ?? 5 * 60_000,
        control: controlOf(handle.runId),
        requestCancel: () => requestCancel(handle.runId),
        lifetime: lifetime.signal,
      });
    },

    async cancel(handle, _task, reason) {
      // On shutdown the run is left alone: the attempt is redelivered and the next host adopts it.
      if (handle.runId === null || reason === 'shutdown') return;
      await requestCancel(handle.runId);
    },

    async finalize(handle) {
      if (handle && handle.runId !== null) controls.delete(handle.runId);
    },

    // A Databricks hot cluster is an all-purpose cluster the workspace already has (its own auto-termination ends
    // it when idle): tasks on it are submitted with `existing_cluster_id` and start without a cluster launch.
    async startHotCluster(cluster) {
      const clusterId = cluster.spec.clusterId;
      if (typeof clusterId !== 'string' || clusterId.trim() === '') {
        throw fail(`hot cluster ${cluster.name}: spec.clusterId must name an all-purpose cluster (e.g. { "clusterId": "0923-164208-meows279" })`);
      }
      hotClusters.set(cluster.name, clusterId.trim());
    },

    async endHotCluster(name) {
      hotClusters.delete(name);
    },

    async close() {
      // Ends polls and backoffs in flight; the instance stays usable (a host may be started again with it).
      lifetime.abort('closed');
      lifetime = new AbortController();
    },
  });
}

function normaliseHost(raw: unknown): string | null {
  if (typeof raw !== 'string' || raw.trim() === '') return null;
  const withScheme = /^[a-z]+:\/\//i.test(raw.trim()) ? raw.trim() : `https://${raw.trim()}`;
  try {
    const url = new URL(withScheme);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
    return url.origin;
  } catch {
    return null;
  }
}

function describeCluster(kind: ClusterKind) {
  if (kind === 'existing') return 'an existing cluster';
  return kind === 'pool' ? 'a new cluster from an instance pool' : 'a new cluster';
}

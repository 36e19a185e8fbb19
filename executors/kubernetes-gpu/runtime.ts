// The kubernetes-gpu executor's resolved settings and shared machinery: the API client, clock, retries, the
// per-attempt state, and the deletes and error mappings that submit, follow and the hooks all use.
import { KubeConfig } from '@kubernetes/client-node';
import { type AbortReason, failed, type TaskOutcome } from '../../plugins/sdk';
import { createKubeClient, type KubeApiError, type KubeClient, type RetryPolicy, type Sleep, toKubeError, withRetries } from './api';
import type { ManifestOptions } from './manifest';
import { DEFAULT_RUNNER_IMAGE, type KubernetesGpuExecutorOptions, type KubernetesGpuHandle } from './options';

export interface AttemptState {
  submitting?: Promise<KubernetesGpuHandle>;
  /** When this process created the Job (our clock), or the Job's creationTimestamp when it adopted it. */
  submittedAt?: number;
  /** The host is shutting down: the Job keeps running for the next host to adopt. */
  shutdown: boolean;
  cancelReason?: AbortReason;
  deleting?: Promise<void>;
  /** Wakes `wait` to look at the attempt again. */
  wake: () => void;
  /** Stops `wait`'s watch, poll and log followers (finalize, close). */
  stop: AbortController;
}

/** The options with their defaults applied, and what is built from them once per executor. */
export interface KubeRuntime {
  options: KubernetesGpuExecutorOptions;
  namespace: string;
  client: KubeClient;
  clock: () => number;
  sleep: Sleep;
  retry: RetryPolicy;
  backoff: { baseMs: number; maxMs: number };
  imagePullGraceMs: number;
  statusPollMs: number;
  watchTimeoutSeconds: number;
  watchStallMs: number;
  apiOutageMs: number;
  logDrainMs: number;
  resumeMarginSeconds: number;
  defaultGpus: number;
  manifestOptions: ManifestOptions;
  /** Retries an API call by the executor's policy. */
  retrying<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const defaultSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export function createRuntime(options: KubernetesGpuExecutorOptions): KubeRuntime {
  const { namespace } = options;
  if (typeof namespace !== 'string' || namespace.length > 63 || !NAMESPACE.test(namespace)) {
    throw new Error(`kubernetes-gpu: namespace ${JSON.stringify(namespace)} is not a valid Kubernetes namespace name`);
  }
  const clock = options.clock ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const retry: RetryPolicy = { tries: 6, baseMs: 500, maxMs: 15_000, ...options.retry };
  const backoff = { baseMs: retry.baseMs, maxMs: retry.maxMs };
  const imagePullGraceMs = options.imagePullGraceMs ?? 3 * 60_000;
  const statusPollMs = options.statusPollMs ?? 5_000;
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 60;
  const watchStallMs = options.watchStallMs ?? watchTimeoutSeconds * 1000 + 30_000;
  const apiOutageMs = options.apiOutageMs ?? 5 * 60_000;
  const logDrainMs = options.logDrainMs ?? 10_000;
  const resumeMarginSeconds = options.logResumeMarginSeconds ?? 2;
  const defaultGpus = options.defaultGpus ?? 1;
  const manifestOptions: ManifestOptions = {
    namespace,
    image: options.image ?? DEFAULT_RUNNER_IMAGE,
    masterPort: options.masterPort ?? 29500,
    ttlSecondsAfterFinished: options.ttlSecondsAfterFinished ?? 3600,
    artifactBaseUrl: options.artifactBaseUrl,
    tokenSecret: options.tokenSecret,
  };
  const client: KubeClient = createKubeClient({
    namespace,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    kubeConfig: () => {
      if (options.kubeConfig) return options.kubeConfig;
      const kc = new KubeConfig();
      if (options.inCluster) kc.loadFromCluster();
      else kc.loadFromDefault();
      return kc;
    },
  });

  return {
    options,
    namespace,
    client,
    clock,
    sleep,
    retry,
    backoff,
    imagePullGraceMs,
    statusPollMs,
    watchTimeoutSeconds,
    watchStallMs,
    apiOutageMs,
    logDrainMs,
    resumeMarginSeconds,
    defaultGpus,
    manifestOptions,
    retrying: (fn, signal) => withRetries(fn, retry, sleep, signal),
  };
}

/** Deletes the Job (its pods with it) and the Service; what is already gone is fine. */
export async function deleteAll(rt: KubeRuntime, handle: KubernetesGpuHandle) {
  const ignoreMissing = (err: unknown) => {
    if (toKubeError(err, 'deleting').kind !== 'not-found') throw err;
  };
  await rt.retrying(() => rt.client.deleteJob(handle.jobName)).catch(ignoreMissing);
  if (handle.service) await rt.retrying(() => rt.client.deleteService(handle.service!)).catch(ignoreMissing);
}

/** The outcome of an attempt that ended in `error` (a handle's, or a failed API call's), with another message if given. */
export function failureOutcome(error: NonNullable<KubernetesGpuHandle['error']>, message = error.message): TaskOutcome {
  return failed(error.reason, message, { retryable: error.retryable, systemFailure: error.systemFailure });
}

/** How a failed API call ends an attempt. */
export function apiFailure(e: KubeApiError): { reason: string; message: string; retryable?: boolean; systemFailure?: boolean } {
  switch (e.kind) {
    case 'auth':
      return { reason: 'kubernetes-credentials', message: e.message, retryable: false };
    case 'config':
      return { reason: 'kubernetes-config', message: e.message, retryable: false };
    case 'invalid':
      return { reason: 'invalid-job', message: e.message, retryable: false };
    case 'not-found':
      return { reason: 'kubernetes-not-found', message: `${e.message} (does the namespace exist?)`, retryable: false };
    case 'malformed':
      return { reason: 'kubernetes-malformed-response', message: e.message, retryable: true, systemFailure: true };
    default:
      return { reason: 'kubernetes-unavailable', message: e.message, retryable: true, systemFailure: true };
  }
}

/** A promise whose rejection is reported to whoever awaits it, and never as unhandled. */
export function settleLater(promise: Promise<void>): Promise<void> {
  promise.catch(() => undefined);
  return promise;
}

export function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
}

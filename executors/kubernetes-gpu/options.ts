// The kubernetes-gpu executor's configuration and the handle it records per attempt: the types every part of the
// executor (submit, follow, hot clusters) shares.
import type { KubeConfig } from '@kubernetes/client-node';
import type { RetryPolicy, Sleep } from './api';

export const KUBERNETES_GPU = 'kubernetes-gpu';
export const DEFAULT_RUNNER_IMAGE = 'atelier/runner:0.1';

export interface KubernetesGpuExecutorOptions {
  /** Default: the in-cluster service account when `inCluster`, else the default kubeconfig. */
  kubeConfig?: KubeConfig;
  /** The host runs inside a cluster (the host entry sets it from KUBERNETES_SERVICE_HOST): use its service account. */
  inCluster?: boolean;
  namespace: string;
  /** Image of tasks that name none; it downloads the module from ATELIER_ARTIFACT_URL and runs its entrypoint. */
  image?: string;
  /** Base URL of the control plane the containers download modules from (`<base>/artifacts/<digest>`). */
  artifactBaseUrl?: string;
  /** Secret (in the namespace) with the control plane token, given to containers as ATELIER_TOKEN. */
  tokenSecret?: { name: string; key: string };
  /** Image of hot-cluster pods (an executor host: the Atelier CLI) whose spec names none. */
  hostImage?: string;
  /** NATS server the hot-cluster pods take tasks from (the control plane's). */
  natsUrl?: string;
  /** Secret (in the namespace) with the hot-cluster pods' own NATS_URL (key `url`); required when natsUrl carries credentials. */
  natsSecret?: { name: string; key: string };
  /** Control plane URL the hot-cluster pods download modules from and present ATELIER_TOKEN to. */
  controlPlaneUrl?: string;
  /** How long startHotCluster waits for the Deployment's first ready pod. Default 10 minutes. */
  hotClusterReadyMs?: number;
  /** GPUs per pod for tasks whose settings name none. Default 1. */
  defaultGpus?: number;
  /**
   * Service accounts a task's settings (or a hot cluster's spec) may run its pods as (`ATELIER_K8S_SERVICE_ACCOUNTS`);
   * none (the default): the setting is refused and pods run as the namespace's default. A service account carries
   * cluster and cloud permissions (workload identity), so who a pod runs as is the operator's to give.
   */
  serviceAccounts?: string[];
  /** Milliseconds since the epoch; injectable so tests can pass grace periods at once. */
  clock?: () => number;
  /** Waits `ms` (resolving early, not rejecting, when `signal` aborts). */
  sleep?: Sleep;
  /** How long an image may fail to pull before the attempt fails (retryable). Default 3 minutes. */
  imagePullGraceMs?: number;
  /** How often the Job itself is read, the source of truth beside the pod watch. Default 5 s. */
  statusPollMs?: number;
  /** Server-side timeout of each pod watch request. Default 60 s. */
  watchTimeoutSeconds?: number;
  /** A watch silent for this long is reopened. Default: the watch timeout plus 30 s. */
  watchStallMs?: number;
  /** Retries of API calls: 5xx, 429, connection errors. Default 6 tries, 500 ms doubling to 15 s, with jitter. */
  retry?: Partial<RetryPolicy>;
  /** Limit of one non-streaming API call. Default 30 s. */
  requestTimeoutMs?: number;
  /** How long the Job's status must stay unreadable before the attempt fails (retryable). Default 5 minutes. */
  apiOutageMs?: number;
  /** Garbage collection of finished Jobs that finalize did not delete (a host that died). Default 1 h. */
  ttlSecondsAfterFinished?: number;
  /** torchrun rendezvous port for multi-node Jobs. Default 29500. */
  masterPort?: number;
  /** How long to keep reading logs after the Job ended. Default 10 s. */
  logDrainMs?: number;
  /** Seconds added to sinceSeconds when a log stream resumes. Default 2. */
  logResumeMarginSeconds?: number;
}

/**
 * What the control plane records for a Kubernetes attempt: the same for the host that created the Job and for a
 * restarted one that adopted it. `error` is set when no Job runs for it (bad settings, credentials, an API that
 * stayed down): `wait` reports it; `cleanup` says a Job may exist all the same.
 */
export interface KubernetesGpuHandle {
  jobName: string;
  namespace: string;
  /** The headless Service of a multi-node Job. */
  service: string | null;
  nodes: number;
  error?: { reason: string; message: string; retryable?: boolean; systemFailure?: boolean; cleanup?: boolean };
}

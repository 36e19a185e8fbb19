// The Kubernetes objects of one task attempt: a batch/v1 Job named deterministically from (task, attempt), and for
// multi-node training an Indexed Job with a headless Service and the torchrun rendezvous environment; and a hot
// cluster's apps/v1 Deployment of executor-host pods, placed on GPU nodes the same way.
import { createHash } from 'node:crypto';
import type { V1Affinity, V1Deployment, V1EnvVar, V1Job, V1ResourceRequirements, V1Service, V1Toleration } from '@kubernetes/client-node';
import type { TaskMessage } from '../../plugins/protocol';
import type { KubernetesGpuSettings } from './settings';
import { taskAccessEnv } from './task-access';

/** How long a hot-cluster pod's host lets its running attempt finish after SIGTERM (ATELIER_EXECUTOR_STOP_GRACE_SECONDS). */
const STOP_GRACE_SECONDS = 45;

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  task: 'atelier.dev/task-id',
  run: 'atelier.dev/run-id',
  attempt: 'atelier.dev/attempt',
  /** On the pod template: what the pod watch, the log followers and the headless Service select on. */
  job: 'atelier.dev/job',
  kueueQueue: 'kueue.x-k8s.io/queue-name',
  /** On a hot cluster's Deployment and its pods: the cluster's name. */
  hotCluster: 'atelier.dev/hot-cluster',
} as const;

export const ANNOTATIONS = {
  task: 'atelier.dev/task-id',
  run: 'atelier.dev/run-id',
  attempt: 'atelier.dev/attempt',
  module: 'atelier.dev/module',
} as const;

/** Set by the Job controller on every pod of an Indexed Job. */
export const COMPLETION_INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';
export const GPU_RESOURCE = 'nvidia.com/gpu';
export const GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product';
export const CONTAINER_NAME = 'main';
/** Lines a module prints with this prefix carry progress, metrics and outputs (the local executor's fd-3 protocol). */
export const PROGRESS_MARKER = '@@atelier ';
/** params + inputs travel as environment variables; Kubernetes objects are limited to ~1.5 MB in etcd. */
export const MAX_CONTEXT_ENV_BYTES = 256 * 1024;

/** Room left under the 63-character DNS label limit for the "-<index>" the Job controller appends to hostnames. */
const MAX_JOB_NAME = 52;

export interface ManifestOptions {
  namespace: string;
  image: string;
  masterPort: number;
  ttlSecondsAfterFinished: number;
  /** Base URL of the control plane; the container downloads `<base>/artifacts/<digest>`. */
  artifactBaseUrl?: string;
  /** Secret holding the control plane token the container presents when downloading the module. */
  tokenSecret?: { name: string; key: string };
}

/**
 * The Job name for an attempt: a readable slug of the task id, the attempt, and a hash of both, so it is stable
 * across host restarts (submit adopts the Job a 409 reports) and never collides between tasks with similar ids.
 */
export function jobNameFor(taskId: string, attempt: number): string {
  const hash = createHash('sha256').update(`${taskId}\u0000${attempt}`).digest('hex').slice(0, 10);
  const suffix = `-${attempt}-${hash}`;
  const slug = taskId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_JOB_NAME - 'atelier-'.length - suffix.length)
    .replace(/-+$/g, '');
  return `atelier-${slug ? `${slug}` : 'task'}${suffix}`.replace(/--+/g, '-');
}

/** A label value (≤ 63 chars of [A-Za-z0-9._-], alphanumeric at both ends) standing for any string. */
export function labelValue(value: string): string {
  if (/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(value) && value.length <= 63) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 8);
  const cleaned = value
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 63 - 9)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return cleaned ? `${cleaned}-${hash}` : hash;
}

export function buildJob(task: TaskMessage, settings: KubernetesGpuSettings, options: ManifestOptions): V1Job {
  const name = jobNameFor(task.taskId, task.attempt);
  const multiNode = settings.nodes > 1;
  const labels: Record<string, string> = {
    [LABELS.managedBy]: 'atelier',
    [LABELS.task]: labelValue(task.taskId),
    [LABELS.run]: labelValue(task.runId),
    [LABELS.attempt]: String(task.attempt),
  };
  const podLabels = { ...labels };
  if (settings.queue) labels[LABELS.kueueQueue] = settings.queue;
  const annotations = {
    [ANNOTATIONS.task]: task.taskId,
    [ANNOTATIONS.run]: task.runId,
    [ANNOTATIONS.attempt]: String(task.attempt),
    [ANNOTATIONS.module]: task.module.ref,
  };

  const { resources, tolerations, affinity } = placement(settings);

  const env: V1EnvVar[] = [
    { name: 'ATELIER_TASK_ID', value: task.taskId },
    { name: 'ATELIER_RUN_ID', value: task.runId },
    { name: 'ATELIER_ATTEMPT', value: String(task.attempt) },
    { name: 'ATELIER_NODE', value: task.node },
    { name: 'ATELIER_MODULE_REF', value: task.module.ref },
    { name: 'ATELIER_MODULE_DIGEST', value: task.module.digest },
    { name: 'ATELIER_ENTRYPOINT', value: task.module.entrypoint },
    { name: 'ATELIER_RUNTIME', value: task.module.runtime },
    { name: 'ATELIER_PARAMS', value: JSON.stringify(task.parameters ?? {}) },
    { name: 'ATELIER_INPUTS', value: JSON.stringify(task.inputs ?? {}) },
    { name: 'ATELIER_PROGRESS_MARKER', value: PROGRESS_MARKER },
  ];
  if (options.artifactBaseUrl) {
    const base = options.artifactBaseUrl.replace(/\/+$/, '');
    env.push({ name: 'ATELIER_ARTIFACT_URL', value: `${base}/artifacts/${encodeURIComponent(task.module.digest)}` });
  }
  if (options.tokenSecret) {
    // By reference: the token never appears in the Job object, its events or the control plane's records.
    env.push({ name: 'ATELIER_TOKEN', valueFrom: { secretKeyRef: { name: options.tokenSecret.name, key: options.tokenSecret.key } } });
  }
  env.push(...taskAccessEnv(task, name, options.artifactBaseUrl));
  if (multiNode) {
    const rank: V1EnvVar['valueFrom'] = { fieldRef: { fieldPath: `metadata.annotations['${COMPLETION_INDEX_ANNOTATION}']` } };
    const master = `${name}-0.${serviceNameFor(name)}`;
    env.push(
      { name: 'MASTER_ADDR', value: master },
      { name: 'MASTER_PORT', value: String(options.masterPort) },
      { name: 'NNODES', value: String(settings.nodes) },
      { name: 'WORLD_SIZE', value: String(settings.nodes) },
      { name: 'NODE_RANK', valueFrom: rank },
      // torchrun reads PET_<ARG> for each of its arguments, so a plain `torchrun train.py` joins the rendezvous.
      { name: 'PET_MASTER_ADDR', value: master },
      { name: 'PET_MASTER_PORT', value: String(options.masterPort) },
      { name: 'PET_NNODES', value: String(settings.nodes) },
      { name: 'PET_NODE_RANK', valueFrom: rank },
    );
    if (settings.gpus > 0) env.push({ name: 'PET_NPROC_PER_NODE', value: String(settings.gpus) });
  }

  const activeDeadlineSeconds = task.timeoutMs > 0 ? Math.max(1, Math.ceil(task.timeoutMs / 1000)) : undefined;
  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: options.namespace, labels, annotations },
    spec: {
      // Retries belong to the control plane, which counts attempts and tells system failures from the user's.
      backoffLimit: 0,
      ...(activeDeadlineSeconds ? { activeDeadlineSeconds } : {}),
      ttlSecondsAfterFinished: options.ttlSecondsAfterFinished,
      // A preempted or evicted pod is replaced by the Job controller instead of failing the attempt.
      podFailurePolicy: { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }] },
      // Kueue admits a Job by unsuspending it; created suspended, no pod starts before admission.
      ...(settings.queue ? { suspend: true } : {}),
      ...(multiNode ? { completionMode: 'Indexed', completions: settings.nodes, parallelism: settings.nodes } : { completions: 1, parallelism: 1 }),
      template: {
        // Not the Kueue label: on a pod it would make Kueue's pod integration gate the pod a second time.
        metadata: { labels: { ...podLabels, [LABELS.job]: name }, annotations },
        spec: {
          restartPolicy: 'Never',
          enableServiceLinks: false,
          ...(multiNode ? { subdomain: serviceNameFor(name) } : {}),
          ...(settings.serviceAccount ? { serviceAccountName: settings.serviceAccount } : {}),
          ...(settings.nodeSelector ? { nodeSelector: settings.nodeSelector } : {}),
          ...(tolerations.length > 0 ? { tolerations } : {}),
          ...(affinity ? { affinity } : {}),
          containers: [
            {
              name: CONTAINER_NAME,
              image: settings.image ?? options.image,
              ...(settings.command ? { command: settings.command } : {}),
              env,
              resources,
              // The tail of the output becomes the termination message of a failed container: the failure message
              // survives even when the log stream was lost.
              terminationMessagePolicy: 'FallbackToLogsOnError',
              ...(multiNode ? { ports: [{ name: 'rendezvous', containerPort: options.masterPort, protocol: 'TCP' }] } : {}),
            },
          ],
        },
      },
    },
  };
  return job;
}

/** Where a pod of these settings goes and what it holds: GPU/cpu/memory resources, GPU tolerations, product affinity. */
export function placement(settings: KubernetesGpuSettings): { resources: V1ResourceRequirements; tolerations: V1Toleration[]; affinity?: V1Affinity } {
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (settings.gpus > 0) limits[GPU_RESOURCE] = String(settings.gpus);
  if (settings.cpu) requests.cpu = settings.cpu;
  if (settings.memory) {
    // Memory is not compressible: a limit equal to the request makes an overrun an OOMKill we can name, rather
    // than a node-pressure eviction of whichever pod the kubelet picks.
    requests.memory = settings.memory;
    limits.memory = settings.memory;
  }
  const tolerations: V1Toleration[] = [...(settings.tolerations ?? [])];
  if (settings.gpus > 0 && !tolerations.some((t) => t.key === GPU_RESOURCE)) {
    tolerations.push({ key: GPU_RESOURCE, operator: 'Exists', effect: 'NoSchedule' });
  }
  const affinity: V1Affinity | undefined = settings.gpuProduct
    ? {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: GPU_PRODUCT_LABEL, operator: 'In', values: settings.gpuProduct }] }],
          },
        },
      }
    : undefined;
  return {
    resources: {
      ...(Object.keys(requests).length > 0 ? { requests } : {}),
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
    },
    tolerations,
    affinity,
  };
}

export interface HotClusterManifestOptions {
  namespace: string;
  /** Image with the Atelier CLI (`npx atelier executor`), for clusters whose spec names none. */
  hostImage?: string;
  /** What the pods connect to: the NATS server the control plane uses, and the control plane for modules. */
  natsUrl?: string;
  controlPlaneUrl?: string;
  tokenSecret?: { name: string; key: string };
  /**
   * Secret (in the namespace) holding the pods' own NATS_URL, with a NATS user of their own: required when `natsUrl`
   * carries credentials, which a plain env value would copy into the Deployment's spec for anyone who reads it.
   */
  natsSecret?: { name: string; key: string };
}

/** A hot cluster's spec or the executor's configuration cannot make a Deployment; retrying will not help. */
export class HotClusterConfigError extends Error {}

/** `atelier-hot-<name>`, or a slug and hash of the name when that is no DNS label of ≤ 63 characters. */
export function deploymentNameFor(cluster: string): string {
  const plain = `atelier-hot-${cluster}`;
  if (plain.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(plain)) return plain;
  const hash = createHash('sha256').update(cluster).digest('hex').slice(0, 10);
  const slug = cluster
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63 - 'atelier-hot-'.length - hash.length - 1)
    .replace(/-+$/g, '');
  return `atelier-hot-${slug ? `${slug}-` : ''}${hash}`;
}

/**
 * The Deployment of a hot cluster: `replicas` pods each running an executor host that consumes the cluster's pool
 * and runs every task in-process with `local` (`--execute-with local`), announcing that it holds the cluster
 * (`--hot-cluster`), so the control plane marks it READY once a pod is up and connected.
 */
export function buildHotClusterDeployment(
  cluster: { name: string; pool: string },
  hot: { replicas: number; pod: KubernetesGpuSettings },
  options: HotClusterManifestOptions,
): V1Deployment {
  const image = hot.pod.image ?? options.hostImage;
  if (!image) {
    throw new HotClusterConfigError(
      `hot cluster ${cluster.name}: no image for its executor-host pods: give the cluster spec an "image", or set the executor's hostImage (ATELIER_K8S_HOST_IMAGE) to an image with the Atelier CLI`,
    );
  }
  if (!options.natsUrl && !options.natsSecret) {
    throw new HotClusterConfigError(
      `hot cluster ${cluster.name}: its pods take tasks from NATS, but the executor has no natsUrl: set NATS_URL on the host that runs kubernetes-gpu`,
    );
  }
  if (!options.natsSecret && /^[a-z][\w+.-]*:\/\/[^,]*@/i.test(options.natsUrl!)) {
    throw new HotClusterConfigError(
      `hot cluster ${cluster.name}: NATS_URL carries credentials, which the Deployment's spec would show to anyone who may read it: put the pods' NATS_URL, with a NATS user of their own, in a Secret (key "url") and name it in ATELIER_K8S_NATS_SECRET`,
    );
  }
  if (!options.controlPlaneUrl) {
    throw new HotClusterConfigError(
      `hot cluster ${cluster.name}: its pods download modules from the control plane, but the executor has no controlPlaneUrl: set ATELIER_PUBLIC_URL to a URL the pods can reach`,
    );
  }
  const name = deploymentNameFor(cluster.name);
  const selector = { [LABELS.managedBy]: 'atelier', [LABELS.hotCluster]: labelValue(cluster.name) };
  const { resources, tolerations, affinity } = placement(hot.pod);
  const command = ['npx', 'atelier', 'executor', '--pools', cluster.pool];
  // `--gpus` takes a whole number ≥ 1; a CPU-only pod advertises none.
  if (hot.pod.gpus > 0) command.push('--gpus', String(hot.pod.gpus));
  // One task at a time: the pod's GPUs are not shared between tasks.
  command.push('--concurrency', '1', '--execute-with', 'local', '--hot-cluster', cluster.name);
  const env: V1EnvVar[] = [
    options.natsSecret
      ? { name: 'NATS_URL', valueFrom: { secretKeyRef: { name: options.natsSecret.name, key: options.natsSecret.key } } }
      : { name: 'NATS_URL', value: options.natsUrl },
    { name: 'ATELIER_URL', value: options.controlPlaneUrl },
    // A pod's SIGTERM (scale-down, node drain) lets its attempt finish for this long, of the 60 s before SIGKILL.
    { name: 'ATELIER_EXECUTOR_STOP_GRACE_SECONDS', value: String(STOP_GRACE_SECONDS) },
  ];
  if (options.tokenSecret) {
    env.push({ name: 'ATELIER_TOKEN', valueFrom: { secretKeyRef: { name: options.tokenSecret.name, key: options.tokenSecret.key } } });
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: options.namespace,
      labels: { ...selector },
      annotations: { [LABELS.hotCluster]: cluster.name, 'atelier.dev/pool': cluster.pool },
    },
    spec: {
      replicas: hot.replicas,
      selector: { matchLabels: { ...selector } },
      template: {
        metadata: { labels: { ...selector } },
        spec: {
          enableServiceLinks: false,
          ...(hot.pod.serviceAccount ? { serviceAccountName: hot.pod.serviceAccount } : {}),
          ...(hot.pod.nodeSelector ? { nodeSelector: hot.pod.nodeSelector } : {}),
          ...(tolerations.length > 0 ? { tolerations } : {}),
          ...(affinity ? { affinity } : {}),
          // On SIGTERM the host lets its attempt finish (STOP_GRACE_SECONDS), then hands it back: room for both.
          terminationGracePeriodSeconds: STOP_GRACE_SECONDS + 15,
          containers: [{ name: 'executor-host', image, command, env, resources }],
        },
      },
    },
  };
}

export function serviceNameFor(jobName: string): string {
  return jobName;
}

/** The headless Service that gives each indexed pod a DNS name (`<job>-<index>.<service>`), owned by the Job. */
export function buildService(job: V1Job, options: Pick<ManifestOptions, 'namespace' | 'masterPort'>): V1Service {
  const name = job.metadata!.name!;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: serviceNameFor(name),
      namespace: options.namespace,
      labels: { ...job.metadata!.labels },
      ownerReferences: job.metadata?.uid
        ? [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: false }]
        : undefined,
    },
    spec: {
      clusterIP: 'None',
      // Rank 0 must be resolvable before it is Ready: the other ranks connect while it is still starting.
      publishNotReadyAddresses: true,
      selector: { [LABELS.job]: name },
      ports: [{ name: 'rendezvous', port: options.masterPort, targetPort: options.masterPort, protocol: 'TCP' }],
    },
  };
}

/** Bytes the task context (parameters, inputs, pinned models) adds to the pod spec; over {@link MAX_CONTEXT_ENV_BYTES} the Job is not created. */
export function contextEnvBytes(task: TaskMessage): number {
  const models = task.models ? Buffer.byteLength(JSON.stringify(task.models)) : 0;
  return Buffer.byteLength(JSON.stringify(task.parameters ?? {})) + Buffer.byteLength(JSON.stringify(task.inputs ?? {})) + models;
}

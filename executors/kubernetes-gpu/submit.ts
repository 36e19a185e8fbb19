// Submitting a kubernetes-gpu attempt: its settings checked, its Job created (or adopted after a host restart,
// by the Job's name and annotations), for a multi-node Job its headless Service, and the Secret with the task's token
// (task-access.ts). Both are owned by the Job and created after it: a pod that starts before its Secret exists waits
// in CreateContainerConfigError until it does, as the kubelet retries.
import type { V1Job } from '@kubernetes/client-node';
import type { TaskContext, TaskMessage } from '../../plugins/sdk';
import { toKubeError } from './api';
import { ANNOTATIONS, buildJob, buildService, contextEnvBytes, jobNameFor, MAX_CONTEXT_ENV_BYTES } from './manifest';
import { KUBERNETES_GPU, type KubernetesGpuHandle } from './options';
import { type AttemptState, apiFailure, type KubeRuntime, timeOf } from './runtime';
import { parseSettings, SettingsError } from './settings';
import { buildTaskSecret, handsTaskToken } from './task-access';

/**
 * Creates the attempt's Job (and, for several nodes, its headless Service; with a task token, its Secret), or adopts the Job an earlier delivery
 * created. Failures come back as a handle with `error`, for `wait` to report.
 */
export async function submitJob(rt: KubeRuntime, task: TaskMessage, ctx: TaskContext, state: AttemptState): Promise<KubernetesGpuHandle> {
  const { namespace, client, clock, retrying, defaultGpus, manifestOptions } = rt;
  const jobName = jobNameFor(task.taskId, task.attempt);
  const handle: KubernetesGpuHandle = { jobName, namespace, service: null, nodes: 1 };
  const submittedAt = clock();
  let adopted = false;
  const fail = (error: NonNullable<KubernetesGpuHandle['error']>): KubernetesGpuHandle => ({ ...handle, error });

  let settings: ReturnType<typeof parseSettings>;
  try {
    settings = parseSettings(task.settings?.[KUBERNETES_GPU], { gpus: defaultGpus, serviceAccounts: rt.options.serviceAccounts });
  } catch (err) {
    if (err instanceof SettingsError) return fail({ reason: 'invalid-settings', message: err.message, retryable: false });
    throw err;
  }
  handle.nodes = settings.nodes;
  const contextBytes = contextEnvBytes(task);
  if (contextBytes > MAX_CONTEXT_ENV_BYTES) {
    return fail({
      reason: 'context-too-large',
      message: `parameters, inputs and pinned models take ${contextBytes} bytes as JSON, more than the ${MAX_CONTEXT_ENV_BYTES} a Kubernetes pod can carry in its environment; pass large data by reference (an artifact or object store URI)`,
      retryable: false,
    });
  }

  const manifest = buildJob(task, settings, manifestOptions);
  let job: V1Job;
  try {
    job = await retrying(() => client.createJob(manifest), ctx.signal);
  } catch (err) {
    const e = toKubeError(err, `creating Job ${jobName}`);
    if (e.kind !== 'conflict') return fail(apiFailure(e));
    // 409 AlreadyExists: this attempt was submitted before (redelivered after a host restart): adopt its Job.
    try {
      job = await retrying(() => client.readJob(jobName), ctx.signal);
    } catch (readErr) {
      return fail(apiFailure(toKubeError(readErr, `reading Job ${jobName}`)));
    }
    const owner = job.metadata?.annotations ?? {};
    if (owner[ANNOTATIONS.task] !== task.taskId || owner[ANNOTATIONS.attempt] !== String(task.attempt)) {
      return fail({
        reason: 'job-name-taken',
        message: `Job ${jobName} in namespace ${namespace} exists but belongs to ${owner[ANNOTATIONS.task] ? `task ${owner[ANNOTATIONS.task]} attempt ${owner[ANNOTATIONS.attempt]}` : 'something other than Atelier'}`,
        retryable: false,
      });
    }
    adopted = true;
  }
  state.submittedAt = adopted ? (timeOf(job.metadata?.creationTimestamp) ?? submittedAt) : submittedAt;

  if (settings.nodes > 1) {
    const service = buildService(job, manifestOptions);
    handle.service = service.metadata!.name!;
    try {
      await retrying(() => client.createService(service), ctx.signal);
    } catch (err) {
      const e = toKubeError(err, `creating Service ${handle.service}`);
      if (e.kind !== 'conflict') return fail({ ...apiFailure(e), cleanup: true });
    }
  }
  if (handsTaskToken(task, manifestOptions.artifactBaseUrl)) {
    const secret = buildTaskSecret(job, task);
    try {
      await retrying(() => client.createSecret(secret), ctx.signal);
    } catch (err) {
      // 409: made for this attempt by an earlier delivery; its token is this attempt's too.
      const e = toKubeError(err, `creating Secret ${secret.metadata!.name}`);
      if (e.kind !== 'conflict') return fail({ ...apiFailure(e), cleanup: true });
    }
  }
  ctx.progress(null, adopted ? `adopted Job ${jobName}, submitted earlier` : `queued: created Job ${jobName} in namespace ${namespace}`);
  return handle;
}

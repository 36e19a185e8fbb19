// The `kubernetes-gpu` executor: one task attempt is one batch/v1 Job (Indexed, with a headless Service, for
// multi-node torchrun), followed through a pod watch, container logs and a periodic GET of the Job, and deleted on
// cancel and finalize. A restarted host re-attaches: submit gets 409 AlreadyExists for the attempt's Job and adopts it.
// A hot cluster is an apps/v1 Deployment of executor-host pods that take the cluster's pool tasks themselves.
//
// Inside the container: ATELIER_* variables give the task context (ATELIER_ARTIFACT_URL the module archive), and
// lines printed as `@@atelier {json}` carry progress, metrics and outputs (the local executor's fd-3 protocol).
//
// The parts: options.ts (configuration, handle), runtime.ts (resolved settings, client, shared helpers), submit.ts,
// follow.ts, hot-cluster.ts; manifest.ts, status.ts, watch.ts and logs.ts underneath.
import { cancelled, defineExecutor, type Executor, type TaskMessage } from '../../plugins/sdk';
import { followJob } from './follow';
import { createHotClusters } from './hot-cluster';
import { KUBERNETES_GPU, type KubernetesGpuExecutorOptions, type KubernetesGpuHandle } from './options';
import { type AttemptState, createRuntime, deleteAll, failureOutcome, settleLater } from './runtime';
import { submitJob } from './submit';

export { buildHotClusterDeployment, buildJob, buildService, deploymentNameFor, jobNameFor } from './manifest';
export { DEFAULT_RUNNER_IMAGE, KUBERNETES_GPU, type KubernetesGpuExecutorOptions, type KubernetesGpuHandle } from './options';
export { type KubernetesGpuSettings, parseSettings } from './settings';
export { observe } from './status';

export function createKubernetesGpuExecutor(options: KubernetesGpuExecutorOptions): Executor<KubernetesGpuHandle> {
  const rt = createRuntime(options);
  const hotClusters = createHotClusters(rt);
  const attempts = new Map<string, AttemptState>();
  const keyOf = (task: TaskMessage) => `${task.taskId}:${task.attempt}`;
  const stateFor = (task: TaskMessage): AttemptState => {
    let state = attempts.get(keyOf(task));
    if (!state) {
      state = { shutdown: false, wake: () => undefined, stop: new AbortController() };
      attempts.set(keyOf(task), state);
    }
    return state;
  };

  return defineExecutor<KubernetesGpuHandle>({
    name: KUBERNETES_GPU,
    // The warm pods are hosts of their own pulling the cluster's pool: any host with this executor starts or ends
    // them, and they outlive the host that created them.
    remoteHotClusters: true,
    startHotCluster: hotClusters.startHotCluster,
    endHotCluster: hotClusters.endHotCluster,

    submit(task, ctx) {
      const state = stateFor(task);
      // The same attempt delivered twice to this process: one submission.
      state.submitting ??= submitJob(rt, task, ctx, state).catch((err) => {
        state.submitting = undefined;
        throw err;
      });
      return state.submitting;
    },

    async wait(handle, task, ctx) {
      if (handle.error) {
        if (ctx.aborted) return cancelled(String(ctx.signal.reason));
        return failureOutcome(handle.error);
      }
      return followJob(rt, handle, ctx, stateFor(task));
    },

    async cancel(handle, task, reason) {
      if (handle.error && !handle.error.cleanup) return;
      const state = attempts.get(keyOf(task));
      // Not (or no longer) followed here: deleting what may be left is all there is to do.
      if (!state) return reason === 'shutdown' ? undefined : deleteAll(rt, handle);
      if (reason === 'shutdown') {
        state.shutdown = true;
        state.wake();
        return;
      }
      state.cancelReason ??= reason;
      state.deleting ??= settleLater(deleteAll(rt, handle));
      state.wake();
      await state.deleting;
    },

    async finalize(handle, task, outcome) {
      const state = attempts.get(keyOf(task));
      attempts.delete(keyOf(task));
      state?.stop.abort();
      if (!handle || (handle.error && !handle.error.cleanup)) return;
      // Left for the next host, which adopts it; ttlSecondsAfterFinished removes it should nobody come.
      if (state?.shutdown || outcome.reason === 'shutdown') return;
      // A cancel whose delete failed gets one more go here.
      await (state?.deleting?.catch(() => deleteAll(rt, handle)) ?? deleteAll(rt, handle));
    },

    async close() {
      hotClusters.close();
      // Like a shutdown: what runs keeps running, for the next host to adopt.
      for (const state of attempts.values()) {
        state.shutdown = true;
        state.stop.abort();
      }
      attempts.clear();
    },
  });
}

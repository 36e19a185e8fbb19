// The `kubernetes-gpu` executor: one task attempt is one batch/v1 Job (Indexed, with a headless Service, for
// multi-node torchrun), followed through a pod watch, container logs and a periodic GET of the Job, and deleted on
// cancel and finalize. A restarted host re-attaches: submit gets 409 AlreadyExists for the attempt's Job and adopts it.
// A hot cluster is an apps/v1 Deployment of executor-host pods that take the cluster's pool tasks themselves.
//
// Inside the container: ATELIER_* variables give the task context (ATELIER_ARTIFACT_URL the module archive), and
// lines printed as `@@atelier {json}` carry progress, metrics and outputs (the local executor's fd-3 protocol).
import { KubeConfig, type V1Job } from '@kubernetes/client-node';
import { cancelled, defineExecutor, failed, systemFailure, type AbortReason, type Executor, type HotClusterSpec, type TaskContext, type TaskMessage, type TaskOutcome } from '../../plugins/sdk';
import { createKubeClient, toKubeError, withRetries, type KubeApiError, type KubeClient, type RetryPolicy, type Sleep } from './api';
import { followLog, type ContainerProgress, type LogFollower } from './logs';
import {
  ANNOTATIONS,
  buildHotClusterDeployment,
  buildJob,
  buildService,
  contextEnvBytes,
  deploymentNameFor,
  HotClusterConfigError,
  jobNameFor,
  LABELS,
  MAX_CONTEXT_ENV_BYTES,
  PROGRESS_MARKER,
  type ManifestOptions,
} from './manifest';
import { parseHotClusterSpec, parseSettings, SettingsError } from './settings';
import { applyMarker } from './markers';
import { formatMs, mainContainer, observe, podIndex, trueCondition, type Observation, type PodView } from './status';
import { startPodWatch } from './watch';

export { jobNameFor, buildJob, buildService, buildHotClusterDeployment, deploymentNameFor } from './manifest';
export { parseSettings, type KubernetesGpuSettings } from './settings';
export { observe } from './status';

export const KUBERNETES_GPU = 'kubernetes-gpu';
export const DEFAULT_RUNNER_IMAGE = 'atelier/runner:0.1';

export interface KubernetesGpuExecutorOptions {
  /** Default: the in-cluster service account when KUBERNETES_SERVICE_HOST is set, else the default kubeconfig. */
  kubeConfig?: KubeConfig;
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
  /** Control plane URL the hot-cluster pods download modules from and present ATELIER_TOKEN to. */
  controlPlaneUrl?: string;
  /** How long startHotCluster waits for the Deployment's first ready pod. Default 10 minutes. */
  hotClusterReadyMs?: number;
  /** GPUs per pod for tasks whose settings name none. Default 1. */
  defaultGpus?: number;
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

interface AttemptState {
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

const TAIL_LINES = 20;
const CANCEL_WAIT_MS = 10_000;
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

export function createKubernetesGpuExecutor(options: KubernetesGpuExecutorOptions): Executor<KubernetesGpuHandle> {
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
      if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
      else kc.loadFromDefault();
      return kc;
    },
  });

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

  const retrying = <T>(fn: () => Promise<T>, signal?: AbortSignal) => withRetries(fn, retry, sleep, signal);

  /** Deletes the Job (its pods with it) and the Service; what is already gone is fine. */
  async function deleteAll(handle: KubernetesGpuHandle) {
    const ignoreMissing = (err: unknown) => {
      if (toKubeError(err, 'deleting').kind !== 'not-found') throw err;
    };
    await retrying(() => client.deleteJob(handle.jobName)).catch(ignoreMissing);
    if (handle.service) await retrying(() => client.deleteService(handle.service!)).catch(ignoreMissing);
  }

  async function submit(task: TaskMessage, ctx: TaskContext): Promise<KubernetesGpuHandle> {
    const jobName = jobNameFor(task.taskId, task.attempt);
    const handle: KubernetesGpuHandle = { jobName, namespace, service: null, nodes: 1 };
    const submittedAt = clock();
    let adopted = false;
    const fail = (error: NonNullable<KubernetesGpuHandle['error']>): KubernetesGpuHandle => ({ ...handle, error });

    let settings;
    try {
      settings = parseSettings(task.settings?.[KUBERNETES_GPU], { gpus: defaultGpus });
    } catch (err) {
      if (err instanceof SettingsError) return fail({ reason: 'invalid-settings', message: err.message, retryable: false });
      throw err;
    }
    handle.nodes = settings.nodes;
    const contextBytes = contextEnvBytes(task);
    if (contextBytes > MAX_CONTEXT_ENV_BYTES) {
      return fail({
        reason: 'context-too-large',
        message: `parameters and inputs take ${contextBytes} bytes as JSON, more than the ${MAX_CONTEXT_ENV_BYTES} a Kubernetes pod can carry in its environment; pass large data by reference (an artifact or object store URI)`,
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
    const state = stateFor(task);
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
    ctx.progress(null, adopted ? `adopted Job ${jobName}, submitted earlier` : `queued: created Job ${jobName} in namespace ${namespace}`);
    return handle;
  }

  async function follow(handle: KubernetesGpuHandle, task: TaskMessage, ctx: TaskContext, state: AttemptState): Promise<TaskOutcome> {
    const { jobName, nodes } = handle;
    const stopSignal = AbortSignal.any([ctx.signal, state.stop.signal]);
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const resolve of [...waiters]) resolve();
      waiters.clear();
    };
    state.wake = wake;
    stopSignal.addEventListener('abort', wake, { once: true });
    /** Resolves on the next change of the pods (or wake), or after `ms`. */
    const nextChange = (ms?: number) =>
      new Promise<void>((resolve) => {
        const done = () => {
          if (timer) clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = ms === undefined ? undefined : setTimeout(done, ms);
        waiters.add(done);
      });

    const noted = new Set<string>();
    const note = (message: string) => {
      if (noted.has(message)) return;
      noted.add(message);
      ctx.log('stderr', `[atelier] kubernetes-gpu: ${message}`);
    };
    const tails = new Map<string, string[]>();
    const followers = new Map<string, LogFollower>();
    const firstSeen = new Map<string, number>();
    const watch = startPodWatch({
      client,
      labelSelector: `${LABELS.job}=${jobName}`,
      timeoutSeconds: watchTimeoutSeconds,
      stallMs: watchStallMs,
      backoff,
      sleep,
      onChange: wake,
      onNote: note,
    });

    const containerProgress = (pod: PodView | undefined): ContainerProgress => {
      if (!pod) return 'gone';
      const main = mainContainer(pod);
      if (main?.state?.terminated || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return 'terminated';
      return main?.state?.running ? 'running' : 'waiting';
    };
    const onLine = (podName: string, prefix: string, primary: boolean) => (line: string) => {
      if (line.startsWith(PROGRESS_MARKER)) {
        // In a multi-node Job every rank runs the same code: rank 0 speaks for the task.
        if (primary) applyMarker(line.slice(PROGRESS_MARKER.length), ctx, note);
        return;
      }
      ctx.log('stdout', `${prefix}${line}`);
      let tail = tails.get(podName);
      if (!tail) tails.set(podName, (tail = []));
      tail.push(line.length > 1_000 ? `${line.slice(0, 1_000)}…` : line);
      if (tail.length > TAIL_LINES) tail.shift();
    };
    const ensureFollowers = () => {
      for (const pod of watch.history()) {
        const name = pod.metadata.name;
        if (followers.has(name)) continue;
        const state = mainContainer(pod)?.state;
        if (!state?.running && !state?.terminated) continue;
        const index = podIndex(pod);
        followers.set(
          name,
          followLog({
            client,
            pod: name,
            clock,
            sleep,
            backoff,
            resumeMarginSeconds,
            state: () => containerProgress(watch.pod(name)),
            changed: () => nextChange(),
            onLine: onLine(name, nodes > 1 ? `[node ${index ?? '?'}] ` : '', nodes === 1 || index === '0'),
            onNote: note,
          }),
        );
      }
    };

    let job: V1Job | undefined;
    let lastMessage: string | undefined;
    let provisioned = false;
    const withNotes = (message: string, notes: string[]) => (notes.length > 0 ? `${message}; ${notes.join('; ')}` : message);
    const reportProvisioned = (ms: number, observation?: Extract<Observation, { kind: 'pending' }>) => {
      provisioned = true;
      const clamped = Math.max(0, Math.round(ms));
      ctx.metric({ provisioningMs: clamped });
      const base = observation?.phase === 'running' ? observation.message : 'running';
      lastMessage = withNotes(`${base} (provisioned in ${formatMs(clamped)})`, observation?.notes ?? []);
      ctx.progress(null, lastMessage);
    };
    const report = (observation: Extract<Observation, { kind: 'pending' }>) => {
      if (observation.allRunning && !provisioned) {
        const since = state.submittedAt ?? timeOf(job?.metadata?.creationTimestamp);
        if (since !== undefined) return reportProvisioned(clock() - since, observation);
        provisioned = true;
      }
      // Once running, the module's own progress messages take over: ours come back only with something to say.
      if (provisioned && observation.phase === 'running' && observation.notes.length === 0 && lastMessage?.startsWith(observation.message)) return;
      const message = withNotes(observation.message, observation.notes);
      if (message !== lastMessage) {
        lastMessage = message;
        ctx.progress(null, message);
      }
    };
    const observeNow = (job: V1Job) =>
      observe({
        job,
        pods: watch.pods(),
        history: watch.history(),
        nodes,
        now: clock(),
        imagePullGraceMs,
        firstSeen,
        tail: (name) => tails.get(name) ?? [],
        unknown: note,
      });

    let pollFailingSince: number | undefined;
    /** The Job now; an outcome when reading it says the attempt is over; undefined when the API is unwell. */
    const pollJob = async (): Promise<V1Job | TaskOutcome | undefined> => {
      try {
        const job = await withRetries(() => client.readJob(jobName), { ...retry, tries: Math.min(retry.tries, 3) }, sleep, stopSignal);
        pollFailingSince = undefined;
        return job;
      } catch (err) {
        if (stopSignal.aborted) return undefined;
        const e = toKubeError(err, `reading Job ${jobName}`);
        if (e.kind === 'not-found') {
          if (state.cancelReason) return undefined;
          return systemFailure(
            'lost',
            `Job ${jobName} disappeared from namespace ${namespace} before it finished (deleted outside Atelier, or garbage-collected)`,
          );
        }
        if (e.kind === 'auth' || e.kind === 'config' || e.kind === 'invalid') return failureOutcome(apiFailure(e));
        pollFailingSince ??= clock();
        if (clock() - pollFailingSince >= apiOutageMs) {
          return failureOutcome(apiFailure(e), `${e.message} (for ${formatMs(clock() - pollFailingSince)})`);
        }
        note(`${e.message}; still trying`);
        return undefined;
      }
    };

    const drainLogs = async () => {
      ensureFollowers();
      // A container still running (the Job was lost, or its status unreadable) has no end of log to wait for.
      for (const [name, follower] of followers) if (containerProgress(watch.pod(name)) === 'running') follower.stop();
      const all = Promise.all([...followers.values()].map((f) => f.done));
      const timer = new Promise<void>((resolve) => setTimeout(resolve, logDrainMs).unref());
      await Promise.race([all, timer]);
    };

    const finish = async (outcome: TaskOutcome, job: V1Job | undefined): Promise<TaskOutcome> => {
      // The watch may lag or be down: the final pod states decide the diagnosis and which logs to read.
      await watch.relist().catch(() => undefined);
      if (!provisioned && (outcome.state === 'SUCCEEDED' || outcome.state === 'FAILED')) {
        const started = serverProvisioningMs(job, watch.history());
        if (started !== undefined) reportProvisioned(started);
      }
      await drainLogs();
      // Again, now that the tails of the logs are in: they go into the failure message.
      if (job && (trueCondition(job, 'Complete') || trueCondition(job, 'Failed'))) {
        const final = observeNow(job);
        if (final.kind === 'terminal') return final.outcome;
      }
      return outcome;
    };

    const stopped = async (): Promise<TaskOutcome> => {
      const reason = (state.cancelReason ?? ctx.signal.reason ?? 'cancelled') as AbortReason;
      if (state.shutdown || reason === 'shutdown') {
        return cancelled('shutdown', `Job ${jobName} keeps running; the attempt adopts it when delivered again`);
      }
      // The host calls cancel() right after the abort; if this loop noticed first, start the delete here.
      state.deleting ??= settleLater(deleteAll(handle));
      const deleted = await Promise.race([state.deleting.then(() => true, () => false), sleep(CANCEL_WAIT_MS).then(() => false)]);
      return cancelled(reason, deleted ? `Job ${jobName} deleted` : `deleting Job ${jobName} was requested`);
    };

    try {
      while (!job) {
        if (stopSignal.aborted || state.cancelReason) return await stopped();
        const first = await pollJob();
        if (first && 'state' in first) return await finish(first, undefined);
        if (first) job = first;
        else await nextChange(statusPollMs);
      }
      let nextPollAt = clock() + statusPollMs;
      for (;;) {
        if (stopSignal.aborted || state.cancelReason) return await stopped();
        const observation = observeNow(job!);
        ensureFollowers();
        if (observation.kind === 'terminal') return await finish(observation.outcome, job!);
        report(observation);
        await nextChange(Math.max(0, nextPollAt - clock()));
        if (clock() >= nextPollAt) {
          const polled = await pollJob();
          nextPollAt = clock() + statusPollMs;
          if (polled && 'state' in polled) {
            if (stopSignal.aborted || state.cancelReason) return await stopped();
            return await finish(polled, undefined);
          }
          if (polled) job = polled;
        }
      }
    } finally {
      watch.stop();
      for (const follower of followers.values()) follower.stop();
      state.wake = () => undefined;
    }
  }

  /** A config or auth problem needs a person; everything else may clear when the control plane asks again. */
  const hotClusterError = (e: KubeApiError, what: string) =>
    new Error(`${what}: ${e.message}${e.kind === 'not-found' ? ` (does namespace ${namespace} exist?)` : ''}`);

  /** Aborted by close(): a start still waiting for its first ready pod stops waiting. */
  const closing = new AbortController();

  async function startHotCluster(cluster: HotClusterSpec) {
    let deployment;
    try {
      deployment = buildHotClusterDeployment(cluster, parseHotClusterSpec(cluster.spec, { gpus: defaultGpus }), {
        namespace,
        hostImage: options.hostImage,
        natsUrl: options.natsUrl,
        controlPlaneUrl: options.controlPlaneUrl,
        tokenSecret: options.tokenSecret,
      });
    } catch (err) {
      if (err instanceof SettingsError || err instanceof HotClusterConfigError) throw new Error(`kubernetes-gpu: ${err.message}`);
      throw err;
    }
    const name = deployment.metadata!.name!;
    const what = `kubernetes-gpu: hot cluster ${cluster.name}: creating Deployment ${name} in namespace ${namespace}`;
    try {
      await retrying(() => client.createDeployment(deployment), closing.signal);
    } catch (err) {
      const e = toKubeError(err, `creating Deployment ${name}`);
      // 409 AlreadyExists: started before (a repeated command, a restarted host); the Deployment is the cluster.
      if (e.kind !== 'conflict') throw hotClusterError(e, what);
    }
    // Held once a pod runs: the host's heartbeat then lists the cluster, and the control plane routes to it.
    const deadline = clock() + (options.hotClusterReadyMs ?? 10 * 60_000);
    for (;;) {
      let ready = 0;
      try {
        const current = await retrying(() => client.readDeployment(name), closing.signal);
        ready = current.status?.readyReplicas ?? 0;
      } catch (err) {
        const e = toKubeError(err, `reading Deployment ${name}`);
        if (e.kind === 'not-found') throw new Error(`kubernetes-gpu: hot cluster ${cluster.name}: Deployment ${name} was deleted while starting`);
        throw hotClusterError(e, `kubernetes-gpu: hot cluster ${cluster.name}: reading Deployment ${name}`);
      }
      if (ready > 0) return;
      if (closing.signal.aborted) throw new Error(`kubernetes-gpu: hot cluster ${cluster.name}: the executor closed before a pod of Deployment ${name} was ready`);
      if (clock() >= deadline) {
        throw new Error(
          `kubernetes-gpu: hot cluster ${cluster.name}: no pod of Deployment ${name} became ready in ${formatMs(options.hotClusterReadyMs ?? 10 * 60_000)} (see \`kubectl -n ${namespace} describe deployment ${name}\`); the Deployment is kept and checked again when the control plane repeats the start`,
        );
      }
      await sleep(Math.min(statusPollMs, 2_000), closing.signal);
    }
  }

  async function endHotCluster(clusterName: string) {
    const name = deploymentNameFor(clusterName);
    try {
      await retrying(() => client.deleteDeployment(name));
    } catch (err) {
      const e = toKubeError(err, `deleting Deployment ${name}`);
      if (e.kind !== 'not-found') throw hotClusterError(e, `kubernetes-gpu: hot cluster ${clusterName}: deleting Deployment ${name} in namespace ${namespace}`);
    }
  }

  return defineExecutor<KubernetesGpuHandle>({
    name: KUBERNETES_GPU,
    // The warm pods are hosts of their own pulling the cluster's pool: any host with this executor starts or ends
    // them, and they outlive the host that created them.
    remoteHotClusters: true,
    startHotCluster,
    endHotCluster,

    submit(task, ctx) {
      const state = stateFor(task);
      // The same attempt delivered twice to this process: one submission.
      state.submitting ??= submit(task, ctx).catch((err) => {
        state.submitting = undefined;
        throw err;
      });
      return state.submitting;
    },

    async wait(handle, task, ctx) {
      if (handle.error) {
        if (ctx.signal.aborted) return cancelled(String(ctx.signal.reason));
        return failureOutcome(handle.error);
      }
      return follow(handle, task, ctx, stateFor(task));
    },

    async cancel(handle, task, reason) {
      if (handle.error && !handle.error.cleanup) return;
      const state = attempts.get(keyOf(task));
      // Not (or no longer) followed here: deleting what may be left is all there is to do.
      if (!state) return reason === 'shutdown' ? undefined : deleteAll(handle);
      if (reason === 'shutdown') {
        state.shutdown = true;
        state.wake();
        return;
      }
      state.cancelReason ??= reason;
      state.deleting ??= settleLater(deleteAll(handle));
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
      await (state?.deleting?.catch(() => deleteAll(handle)) ?? deleteAll(handle));
    },

    async close() {
      closing.abort();
      // Like a shutdown: what runs keeps running, for the next host to adopt.
      for (const state of attempts.values()) {
        state.shutdown = true;
        state.stop.abort();
      }
      attempts.clear();
    },
  });
}

/** The outcome of an attempt that ended in `error` (a handle's, or a failed API call's), with another message if given. */
function failureOutcome(error: NonNullable<KubernetesGpuHandle['error']>, message = error.message): TaskOutcome {
  return failed(error.reason, message, { retryable: error.retryable, systemFailure: error.systemFailure });
}

/** How a failed API call ends an attempt. */
function apiFailure(e: KubeApiError): { reason: string; message: string; retryable?: boolean; systemFailure?: boolean } {
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
function settleLater(promise: Promise<void>): Promise<void> {
  promise.catch(() => undefined);
  return promise;
}

function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
}

/** For a Job that ended before we saw it run: container start minus Job creation, both by the API server's clock. */
function serverProvisioningMs(job: V1Job | undefined, pods: PodView[]): number | undefined {
  const created = timeOf(job?.metadata?.creationTimestamp);
  if (created === undefined) return undefined;
  const starts = pods
    .map((p) => mainContainer(p)?.state)
    .map((s) => timeOf(s?.terminated?.startedAt ?? s?.running?.startedAt))
    .filter((t): t is number => t !== undefined);
  return starts.length > 0 ? Math.max(...starts) - created : undefined;
}

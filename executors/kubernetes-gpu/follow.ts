// Following a kubernetes-gpu attempt's Job to its end: pods through a watch, logs through followers (with the
// `@@atelier` progress lines), the Job through a periodic GET, and the outcome from status.ts's pure mapping.
import type { V1Job } from '@kubernetes/client-node';
import { type AbortReason, cancelled, systemFailure, type TaskContext, type TaskOutcome } from '../../plugins/sdk';
import { toKubeError, withRetries } from './api';
import { type ContainerProgress, followLog, type LogFollower } from './logs';
import { LABELS, PROGRESS_MARKER } from './manifest';
import { applyMarker } from './markers';
import type { KubernetesGpuHandle } from './options';
import { type AttemptState, apiFailure, deleteAll, failureOutcome, type KubeRuntime, settleLater, timeOf } from './runtime';
import { formatMs, mainContainer, type Observation, observe, type PodView, podIndex, trueCondition } from './status';
import { startPodWatch } from './watch';

const TAIL_LINES = 20;
const CANCEL_WAIT_MS = 10_000;

/**
 * Follows an attempt's Job until it ends: pod watch, container logs, and a periodic GET of the Job as the source of
 * truth. Returns the outcome, or CANCELLED once a cancel or a shutdown stops it.
 */
export async function followJob(rt: KubeRuntime, handle: KubernetesGpuHandle, ctx: TaskContext, state: AttemptState): Promise<TaskOutcome> {
  const { namespace, client, clock, sleep, retry, backoff, statusPollMs, apiOutageMs, logDrainMs, imagePullGraceMs } = rt;
  const { watchTimeoutSeconds, watchStallMs, resumeMarginSeconds } = rt;
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
    state.deleting ??= settleLater(deleteAll(rt, handle));
    const deleted = await Promise.race([
      state.deleting.then(
        () => true,
        () => false,
      ),
      sleep(CANCEL_WAIT_MS).then(() => false),
    ]);
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

// Kubernetes Job and pod states mapped onto Atelier's: a pure function of what the API last said, so the whole
// table is testable without a cluster. Terminal outcomes come from the Job's Complete/Failed conditions (never
// the transitional SuccessCriteriaMet/FailureTarget), except for pods that would otherwise wait forever (an image
// that cannot be pulled, an invalid image name, a broken container config).
import type { V1Job } from '@kubernetes/client-node';
import { failed, permanentFailure, retryableFailure, succeeded, systemFailure, type TaskOutcome, timedOut } from '../../plugins/sdk';
import { COMPLETION_INDEX_ANNOTATION, CONTAINER_NAME, LABELS } from './manifest';

/** The parts of a Pod the executor reads, as raw JSON from a list or watch (timestamps are strings). */
export interface PodView {
  kind?: string;
  metadata: {
    name: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: ContainerStatusView[];
    initContainerStatuses?: ContainerStatusView[];
  };
}

export interface ContainerStatusView {
  name: string;
  ready?: boolean;
  restartCount?: number;
  state?: {
    waiting?: { reason?: string; message?: string };
    running?: { startedAt?: string };
    terminated?: { exitCode: number; signal?: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string };
  };
}

export type Phase = 'queued' | 'provisioning' | 'running';

export type Observation = { kind: 'pending'; phase: Phase; message: string; allRunning: boolean; notes: string[] } | { kind: 'terminal'; outcome: TaskOutcome };

export interface ObserveInput {
  job: V1Job;
  /** Pods of the Job as they are now. */
  pods: PodView[];
  /** Also the last state of pods already deleted: what a failure is diagnosed from. */
  history?: PodView[];
  nodes: number;
  now: number;
  imagePullGraceMs: number;
  /** When this executor first saw a pod stuck for a reason (`<pod uid>:<reason>` → ms): grace periods start there. */
  firstSeen: Map<string, number>;
  /** The last lines a pod printed, for failure messages. */
  tail: (podName: string) => string[];
  /** Something this table does not know: logged once by the caller, treated as non-terminal. */
  unknown: (what: string) => void;
}

const IMAGE_PULL = new Set(['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'RegistryUnavailable']);
const STARTING = new Set(['ContainerCreating', 'PodInitializing', '']);
const CONFIG = new Set(['CreateContainerConfigError', 'CreateContainerError', 'PreCreateHookError', 'PreStartHookError']);
const CANNOT_RUN = new Set(['ContainerCannotRun', 'StartError', 'RunContainerError']);
const PHASE_ORDER: Record<Phase, number> = { queued: 0, provisioning: 1, running: 2 };
const TAIL_IN_MESSAGE = 20;

export const trueCondition = (job: V1Job, type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');

export function podIndex(pod: PodView): string | undefined {
  return pod.metadata.annotations?.[COMPLETION_INDEX_ANNOTATION] ?? pod.metadata.labels?.[COMPLETION_INDEX_ANNOTATION];
}

export function mainContainer(pod: PodView): ContainerStatusView | undefined {
  return pod.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME) ?? pod.status?.containerStatuses?.[0];
}

/** A pod that was disrupted (preempted, evicted, its node drained): not the module's fault. */
export function disruption(pod: PodView): string | undefined {
  const target = pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (target) return `${target.reason ?? 'DisruptionTarget'}${target.message ? `: ${target.message}` : ''}`;
  if (pod.status?.reason === 'Evicted' || pod.status?.reason === 'Preempting' || pod.status?.reason === 'Shutdown' || pod.status?.reason === 'NodeShutdown') {
    return `${pod.status.reason}${pod.status.message ? `: ${pod.status.message}` : ''}`;
  }
  return undefined;
}

export function observe(input: ObserveInput): Observation {
  const { job } = input;
  if (trueCondition(job, 'Complete')) return { kind: 'terminal', outcome: succeeded({ exitCode: 0 }) };
  const failure = trueCondition(job, 'Failed');
  if (failure) return { kind: 'terminal', outcome: failedOutcome(job, failure, input) };

  const queue = job.metadata?.labels?.[LABELS.kueueQueue];
  if (job.spec?.suspend || trueCondition(job, 'Suspended')) {
    return {
      kind: 'pending',
      phase: 'queued',
      message: queue ? `queued: waiting for Kueue to admit the Job (queue ${queue})` : 'queued: the Job is suspended',
      allRunning: false,
      notes: [],
    };
  }

  const live = input.pods.filter((p) => !p.metadata.deletionTimestamp || p.status?.phase === 'Running');
  let phase: Phase | undefined;
  let message = '';
  let running = 0;
  const notes: string[] = [];
  for (const pod of live) {
    const seen = podState(pod, input);
    if (seen.kind === 'terminal') return seen;
    if (seen.running) running++;
    if (seen.note) notes.push(seen.note);
    if (seen.phase && (phase === undefined || PHASE_ORDER[seen.phase] < PHASE_ORDER[phase])) {
      phase = seen.phase;
      message = seen.message;
    }
  }
  const allRunning = running >= input.nodes;
  if (phase === undefined) {
    if (running > 0) phase = 'running';
    else {
      phase = 'queued';
      message = live.length === 0 ? 'queued: waiting for the Job controller to create pods' : 'queued: waiting for the Job controller';
    }
  }
  if (phase === 'running' && !message) message = input.nodes > 1 ? `running on ${running}/${input.nodes} nodes` : 'running';
  if (input.nodes > 1 && phase !== 'running') message = `${message} (${running}/${input.nodes} pods running)`;
  return { kind: 'pending', phase, message, allRunning, notes };
}

type PodSeen = { kind: 'pending'; phase?: Phase; message: string; running: boolean; note?: string } | { kind: 'terminal'; outcome: TaskOutcome };

function podState(pod: PodView, input: ObserveInput): PodSeen {
  const name = pod.metadata.name;
  const status = pod.status ?? {};
  switch (status.phase) {
    case 'Succeeded':
      return { kind: 'pending', message: '', running: true };
    case 'Running':
      return { kind: 'pending', phase: 'running', message: '', running: true };
    case 'Failed': {
      // The Job's own Failed condition decides the outcome; a disrupted pod is replaced by the Job controller.
      const why = disruption(pod);
      return {
        kind: 'pending',
        message: '',
        running: false,
        note: why ? `pod ${name} was disrupted (${why}); the Job controller replaces it` : `pod ${name} failed`,
      };
    }
    case 'Unknown':
      return { kind: 'pending', phase: 'running', message: `pod ${name}: its node stopped reporting (phase Unknown)`, running: false };
    case 'Pending':
    case undefined:
      break;
    default:
      input.unknown(`pod ${name} is in phase "${status.phase}"`);
      return { kind: 'pending', phase: 'provisioning', message: `provisioning: pod ${name} is in phase ${status.phase}`, running: false };
  }

  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status !== 'True') {
    if (scheduled?.reason === 'Unschedulable') {
      // The scheduler's FailedScheduling message says why (no GPU of that product, taints, quota), for the user.
      return { kind: 'pending', phase: 'queued', message: `queued: pod ${name} is unschedulable: ${scheduled.message ?? 'no node fits'}`, running: false };
    }
    if (scheduled?.reason === 'SchedulingGated') {
      return { kind: 'pending', phase: 'queued', message: `queued: pod ${name} is gated (${scheduled.message ?? 'scheduling gates'})`, running: false };
    }
    return { kind: 'pending', phase: 'queued', message: `queued: pod ${name} waits for the scheduler`, running: false };
  }

  const containers = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])];
  for (const container of containers) {
    const waiting = container.state?.waiting;
    if (!waiting) continue;
    const reason = waiting.reason ?? '';
    const detail = waiting.message ? `: ${waiting.message}` : '';
    if (STARTING.has(reason)) continue;
    if (reason === 'InvalidImageName') {
      return {
        kind: 'terminal',
        outcome: permanentFailure('invalid-image', `container ${container.name} of pod ${name} has an invalid image name${detail}`),
      };
    }
    if (IMAGE_PULL.has(reason)) {
      const waited = graceElapsed(pod, reason === 'ImagePullBackOff' ? 'ErrImagePull' : reason, input);
      if (waited >= input.imagePullGraceMs) {
        return {
          kind: 'terminal',
          outcome: retryableFailure(
            'image-pull',
            `container ${container.name} of pod ${name} could not pull its image for ${formatMs(waited)} (${reason}${detail})`,
          ),
        };
      }
      return {
        kind: 'pending',
        phase: 'provisioning',
        message: `provisioning: pulling the image of pod ${name} failed (${reason}${detail}); retrying`,
        running: false,
      };
    }
    if (CONFIG.has(reason)) {
      const waited = graceElapsed(pod, reason, input);
      if (waited >= input.imagePullGraceMs) {
        return {
          kind: 'terminal',
          outcome: permanentFailure('container-config', `container ${container.name} of pod ${name} cannot be created (${reason}${detail})`),
        };
      }
      return { kind: 'pending', phase: 'provisioning', message: `provisioning: pod ${name}: ${reason}${detail}`, running: false };
    }
    input.unknown(`container ${container.name} of pod ${name} is waiting for an unknown reason "${reason}"${detail}`);
    return { kind: 'pending', phase: 'provisioning', message: `provisioning: pod ${name}: ${reason}${detail}`, running: false };
  }
  const node = pod.spec?.nodeName ? ` on node ${pod.spec.nodeName}` : '';
  return { kind: 'pending', phase: 'provisioning', message: `provisioning: starting pod ${name}${node}`, running: false };
}

function graceElapsed(pod: PodView, reason: string, input: ObserveInput): number {
  const key = `${pod.metadata.uid ?? pod.metadata.name}:${reason}`;
  let since = input.firstSeen.get(key);
  if (since === undefined) {
    since = input.now;
    input.firstSeen.set(key, since);
  }
  return input.now - since;
}

function failedOutcome(job: V1Job, condition: { reason?: string; message?: string }, input: ObserveInput): TaskOutcome {
  const jobReason = condition.reason ?? 'Failed';
  if (jobReason === 'DeadlineExceeded') {
    const limit = job.spec?.activeDeadlineSeconds;
    // Named as the host names its own deadline: one reason for "ran out of time", whichever clock noticed first.
    return timedOut(`the Job ran past its activeDeadlineSeconds${limit ? ` (${limit} s)` : ''}${condition.message ? `: ${condition.message}` : ''}`);
  }
  const failedPods = (input.history ?? input.pods).filter((p) => p.status?.phase === 'Failed');
  const finished = (p: PodView) => mainContainer(p)?.state?.terminated?.finishedAt ?? '~';
  failedPods.sort((a, b) => finished(a).localeCompare(finished(b)));

  const oom = failedPods.find((p) => (p.status?.containerStatuses ?? []).some((c) => c.state?.terminated?.reason === 'OOMKilled'));
  if (oom) {
    const container = (oom.status?.containerStatuses ?? []).find((c) => c.state?.terminated?.reason === 'OOMKilled')!;
    return failed(
      'oom',
      `container ${container.name} of pod ${oom.metadata.name} was killed for using more memory than its limit (OOMKilled); raise settings["kubernetes-gpu"].memory${tailText(oom, input)}`,
      { exitCode: container.state?.terminated?.exitCode ?? 137 },
    );
  }
  const disrupted = failedPods.find((p) => disruption(p));
  if (disrupted) {
    return systemFailure(
      disrupted.status?.reason === 'Evicted' ? 'evicted' : 'disrupted',
      `pod ${disrupted.metadata.name} was disrupted (${disruption(disrupted)}); the Job failed: ${jobReason}${condition.message ? ` (${condition.message})` : ''}`,
    );
  }
  for (const pod of failedPods) {
    const terminated = mainContainer(pod)?.state?.terminated;
    if (!terminated) continue;
    if (terminated.exitCode === 137) {
      return systemFailure(
        'killed',
        `container ${CONTAINER_NAME} of pod ${pod.metadata.name} was killed by SIGKILL (exit code 137) without an OOM kill: node shutdown, eviction or preemption suspected${tailText(pod, input)}`,
        { exitCode: 137 },
      );
    }
    if (terminated.reason && CANNOT_RUN.has(terminated.reason)) {
      return permanentFailure(
        'cannot-run',
        `container ${CONTAINER_NAME} of pod ${pod.metadata.name} could not start (${terminated.reason}${terminated.message ? `: ${terminated.message.trim()}` : ''})`,
        { exitCode: terminated.exitCode },
      );
    }
    if (terminated.exitCode !== 0) {
      const index = podIndex(pod);
      return failed(
        'exit-code',
        `pod ${pod.metadata.name}${index !== undefined && input.nodes > 1 ? ` (node ${index})` : ''} exited with code ${terminated.exitCode}${tailText(pod, input, terminated.message)}`,
        { exitCode: terminated.exitCode },
      );
    }
  }
  return failed('job-failed', `the Job failed (${jobReason}${condition.message ? `: ${condition.message}` : ''})`);
}

/** The pod's last output lines: from the log stream, else the container's termination message. */
function tailText(pod: PodView, input: ObserveInput, terminationMessage?: string): string {
  const lines = input.tail(pod.metadata.name).slice(-TAIL_IN_MESSAGE);
  if (lines.length > 0) return `; last output lines:\n${lines.join('\n')}`;
  const fallback = (terminationMessage ?? mainContainer(pod)?.state?.terminated?.message ?? '').trim();
  if (fallback) return `; termination message:\n${fallback.split('\n').slice(-TAIL_IN_MESSAGE).join('\n')}`;
  return ' (no output)';
}

export function formatMs(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${+(ms / 1_000).toFixed(1)} s`;
  return `${+(ms / 60_000).toFixed(1)} min`;
}

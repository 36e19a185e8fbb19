// One task attempt on the executor host, from claim to ack: picks the executor, prepares the work directory,
// drives submit → wait → (cancel) → finalize, heartbeats meanwhile, enforces the deadline, and settles the
// delivery. What the attempt reports goes through its reporter (reporter.ts).
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Bus, Delivery } from '../bus/types';
import { cancelled, failed, systemFailure as platformFailure, timedOut } from '../outcomes';
import type { AttemptClaim, ClaimAnswer, ModelRegistrationRequest, TaskOutcome } from '../protocol';
import type { ExecutorRegistry } from '../registry';
import type { AbortReason, Executor, TaskContext, TaskMessage } from '../sdk';
import { traceTaskHop } from '../trace';
import type { AskClaim } from './claims';
import { createReporter } from './reporter';

/** Where the host gets module archives (and the model files tasks are pinned to) from. */
export interface ArtifactSource {
  /**
   * Local path of the object with this digest, already verified against it. `as`: the credentials to ask with
   * instead of the host's own, a task's own token for that task's model files (the host's may not read them).
   */
  fetch(digest: string, as?: { token: string }): Promise<string>;
}

/** An attempt running on this host. */
export interface Attempt {
  key: string;
  task: TaskMessage;
  controller: AbortController;
  /** Calls the executor's `cancel` once; set once the attempt has a handle. */
  cancel?: () => void;
  /** The control plane's words when it asked for a cancel. */
  cancelNote?: string;
  /** The delivery was acked: a duplicate delivery of the same attempt may be acked too. */
  acked: boolean;
  /** Resolves once the attempt is fully settled (acked, nakked or left for redelivery). */
  done: Promise<void>;
}

/** What the host lends every attempt it runs. */
export interface AttemptRuntime {
  bus: Bus;
  registry: ExecutorRegistry;
  host: string;
  artifacts: ArtifactSource;
  workRoot: string;
  /** Run with this executor whatever the task names (see ExecutorHostOptions.executeWith). */
  executeWith?: string;
  heartbeatEveryMs: number;
  logBatch: { bytes: number; ms: number };
  maxLogBytes: number;
  warn: (message: string) => void;
  /** False once the host is stopping: a failing result publish then stops retrying. */
  running(): boolean;
  /** Ask the control plane before running an attempt (ExecutorHostOptions.verifyClaims). */
  verifyClaims: boolean;
  /** How a claim is asked (claims.ts: several at once where the control plane reads batches). */
  askClaim: AskClaim;
}

/** How long a host waits for the control plane's answer to a claim, and how long it waits to ask again. */
export const CLAIM_TIMEOUT_MS = 5_000;
export const CLAIM_RETRY_MS = 2_000;

/** What a host does with a delivery, given the control plane's answer to its claim (undefined: none came). */
export function claimAction(answer: ClaimAnswer | undefined): 'run' | 'drop' | 'ask-later' {
  if (!answer || answer.verdict === 'later') return 'ask-later';
  return answer.verdict === 'run' ? 'run' : 'drop';
}

/**
 * Claims an attempt before it runs: true when it may run. A message redelivered after its attempt finished or was
 * superseded is acked and dropped without a word on the bus; with no answer (no control plane reachable) the
 * message goes back for later, since running an attempt that may have finished is never right.
 */
export async function claimAttempt(rt: AttemptRuntime, delivery: Delivery<TaskMessage>): Promise<boolean> {
  const action = await askClaim(rt, delivery);
  if (action === 'run') return true;
  await settleUnclaimed(rt, delivery, action);
  return false;
}

async function askClaim(rt: AttemptRuntime, delivery: Delivery<TaskMessage>): Promise<{ drop: string } | 'run' | 'ask-later'> {
  if (!rt.verifyClaims) return 'run';
  const { taskId, runId, attempt } = delivery.data;
  delivery.working();
  const claim: AttemptClaim = {
    taskId,
    runId,
    attempt,
    host: rt.host,
    ...(delivery.redeliveryCount > 0 ? { redelivered: true } : {}),
    ...(tracks(rt, delivery.data) ? {} : { tracking: false as const }),
    // Protocol 4: the first claim asks for this execution's number; asking again (after a download) it keeps it.
    execution: delivery.data.execution ?? null,
    // Protocol 6: asking again, it shows the key its first answer gave (one a restore undid is dropped).
    ...(delivery.data.attemptKey ? { attemptKey: delivery.data.attemptKey } : {}),
  };
  traceTaskHop('host: claim asked', runId, taskId);
  const answer = await rt.askClaim(claim);
  traceTaskHop('host: claim answered', runId, taskId);
  const action = claimAction(answer);
  // A run answer may carry the attempt's tracking token (MLflow inside the task); the second answer's is as good.
  if (action === 'run' && answer?.verdict === 'run' && answer.tracking) delivery.data.tracking = answer.tracking;
  // The control plane's protocol version decides whether the reporter may fold events into bundles (protocol.ts).
  if (action === 'run' && answer?.verdict === 'run' && answer.protocol) delivery.data.protocol = answer.protocol;
  // The execution's number decides where its events are numbered from (reporter.ts); a control plane below 4 gives none.
  if (action === 'run' && answer?.verdict === 'run' && Number.isInteger(answer.execution) && answer.execution! >= 0)
    delivery.data.execution ??= answer.execution;
  // The attempt's key goes on every event (protocol 6): a database restored since drew another, and refuses them.
  if (action === 'run' && answer?.verdict === 'run' && typeof answer.attemptKey === 'string') delivery.data.attemptKey ??= answer.attemptKey;
  // Its control plane's heartbeat timeout may be shorter than this host's interval: beat as often as it asks.
  if (action === 'run' && answer?.verdict === 'run' && Number.isFinite(answer.heartbeatMs) && answer.heartbeatMs! > 0)
    delivery.data.heartbeatMs = answer.heartbeatMs;
  return action === 'drop' ? { drop: answer?.verdict === 'drop' ? answer.reason : '' } : action;
}

/** Whether the attempt's executor may log to MLflow (Executor.tracking); an unknown executor is asked as one that may. */
function tracks(rt: AttemptRuntime, task: TaskMessage): boolean {
  const name = rt.executeWith ?? task.executor;
  return !rt.registry.names().includes(name) || rt.registry.get(name).tracking !== false;
}

async function settleUnclaimed(rt: AttemptRuntime, delivery: Delivery<TaskMessage>, action: { drop: string } | 'ask-later') {
  if (action === 'ask-later') return delivery.nak(CLAIM_RETRY_MS);
  await delivery.ack();
  rt.warn(`dropped ${delivery.data.taskId}:${delivery.data.attempt} without running it: ${action.drop}`);
}

/** Thrown from `artifactPath()` when the claim asked again after the download says the attempt is no longer current. */
class Unclaimed extends Error {
  constructor(
    readonly key: string,
    readonly action: { drop: string } | 'ask-later',
  ) {
    // An executor that shares one download between tasks may hand this to another attempt: it fails there as a
    // platform failure (retried), never settles that attempt's delivery as unclaimed.
    super(`attempt ${key} is no longer current; try again`);
  }
}

/** Model registrations one attempt may ask for; more are dropped (each costs the control plane a registration). */
const MAX_REGISTRATIONS = 20;
/** However often a control plane asks for heartbeats (ClaimAnswer.heartbeatMs), at most ten a second per attempt. */
const MIN_HEARTBEAT_MS = 100;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once past this; longer limits are treated as none

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
const safePathPart = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/** Stops an attempt: aborts its signal and asks the executor to cancel (once it has a handle). */
export function abortAttempt(attempt: Attempt, reason: AbortReason) {
  if (attempt.controller.signal.aborted) return;
  attempt.controller.abort(reason);
  attempt.cancel?.();
}

/**
 * Runs one attempt to its end and settles its delivery: acked once the result is published, nakked when it could
 * not be or the host is shutting down. `release` gives the host's slot back just before the ack.
 */
export async function runAttempt(rt: AttemptRuntime, attempt: Attempt, delivery: Delivery<TaskMessage>, release: () => void) {
  const { task, controller } = attempt;
  const { signal } = controller;
  const { host } = rt;
  const startedAt = Date.now();
  traceTaskHop('host: attempt began', task.runId, task.taskId);
  const reporter = createReporter({
    bus: rt.bus,
    task,
    host,
    redeliveryCount: delivery.redeliveryCount,
    logBatch: rt.logBatch,
    maxLogBytes: rt.maxLogBytes,
    warn: rt.warn,
  });
  const shuttingDown = () => signal.aborted && signal.reason === 'shutdown';
  // The duration ends where the executor says the work ended (a module's exit), else now: reading and sending what the
  // module reported before it exited (a training loop's last metric points) is the host's time, not the task's.
  // An outcome with no end of its own (most executors') goes as it is: a rest copy per attempt was ~2 us of S1's host.
  const publishResult = (outcome: TaskOutcome) => {
    const { endedAt } = outcome;
    const sent = endedAt === undefined ? outcome : withoutEnd(outcome);
    return reporter.publishResult(sent, Math.max(0, Math.min(Date.now(), endedAt ?? Date.now()) - startedAt), () => !rt.running() || shuttingDown());
  };

  let executor: Executor;
  try {
    executor = rt.registry.get(rt.executeWith ?? task.executor);
  } catch (err) {
    await publishResult(failed('unknown-executor', `${errorMessage(err)} on host ${host}`, { retryable: false, systemFailure: false }));
    release();
    await delivery.ack();
    attempt.acked = true;
    return;
  }

  const outputs: Record<string, unknown> = {};
  const registrations: ModelRegistrationRequest[] = [];
  let artifactPath: Promise<string> | undefined;
  // A work directory only for executors that need one: for a no-op attempt its removal and creation were most of
  // the host's own time (an mkdir and two recursive rm's per attempt).
  const workdir = executor.workdir === false ? undefined : path.join(rt.workRoot, `${safePathPart(task.taskId)}-${task.attempt}`);
  const ctx: TaskContext = {
    signal,
    get workdir(): string {
      if (workdir === undefined) throw new Error(`executor ${executor.name} declared workdir: false, so its attempts get no work directory`);
      return workdir;
    },
    host,
    artifactPath() {
      // A download can take long (it retries while a control plane restarts): the claim is asked again after it,
      // right before anything runs, so an attempt that finished meanwhile elsewhere is not run a second time.
      artifactPath ??= rt.artifacts.fetch(task.module.digest).then(async (file) => {
        const action = await askClaim(rt, delivery);
        if (action !== 'run') throw new Unclaimed(attempt.key, action);
        return file;
      });
      return artifactPath;
    },
    objectPath: (digest) => rt.artifacts.fetch(digest, task.tracking ? { token: task.tracking.token } : undefined),
    log: (stream, line) => reporter.log(stream, line),
    progress: (fraction, message) => reporter.progress(fraction, message),
    metric: (metrics, step) => reporter.metric(metrics, step),
    metricSeries: (name, steps, values) => reporter.metricSeries(name, steps, values),
    output(name, value) {
      if (!reporter.open) return;
      outputs[String(name)] = value;
    },
    registerModel(request) {
      if (reporter.open && registrations.length < MAX_REGISTRATIONS) registrations.push(request);
    },
  };

  // Heartbeats keep the delivery from being redelivered and tell the control plane the attempt is alive.
  const heartbeat = setInterval(
    () => {
      delivery.working();
      reporter.heartbeat();
    },
    Math.min(rt.heartbeatEveryMs, Math.max(MIN_HEARTBEAT_MS, task.heartbeatMs ?? rt.heartbeatEveryMs)),
  );

  const limitMs = task.timeoutMs;
  const timeout =
    typeof limitMs === 'number' && limitMs > 0 && limitMs <= MAX_TIMER_MS ? setTimeout(() => abortAttempt(attempt, 'timeout'), limitMs) : undefined;

  const systemFailure = (what: string, err: unknown): TaskOutcome =>
    platformFailure('executor-error', `${executor.name}: ${what} failed: ${errorMessage(err)}`);

  let handle: unknown;
  let submitted = false;
  let outcome: TaskOutcome;
  try {
    if (workdir) {
      await rm(workdir, { recursive: true, force: true }); // leftovers of an earlier delivery on this host
      await mkdir(workdir, { recursive: true });
    }
    if (signal.aborted) {
      outcome = cancelled(String(signal.reason));
    } else {
      try {
        handle = await executor.submit(task, ctx);
        submitted = true;
      } catch (err) {
        if (err instanceof Unclaimed && err.key === attempt.key) {
          // Nothing ran and nothing was reported: the delivery is settled as a claim answered before running is.
          clearInterval(heartbeat);
          if (timeout) clearTimeout(timeout);
          reporter.close();
          if (workdir) await rm(workdir, { recursive: true, force: true }).catch(() => undefined);
          release();
          await settleUnclaimed(rt, delivery, err.action);
          attempt.acked = err.action !== 'ask-later';
          return;
        }
        outcome = systemFailure('submit', err);
      }
      if (submitted) {
        reporter.started(handle);
        let cancelCalled = false;
        attempt.cancel = () => {
          if (cancelCalled) return;
          cancelCalled = true;
          const reason = signal.reason as AbortReason;
          executor.cancel(handle, task, reason).catch((err) => reporter.hostLine(`${executor.name}: cancel failed: ${errorMessage(err)}`));
        };
        if (signal.aborted) attempt.cancel(); // aborted while submit was in flight
        try {
          outcome = await executor.wait(handle, task, ctx);
          traceTaskHop('host: wait returned', task.runId, task.taskId);
          if (!outcome || typeof outcome.state !== 'string') throw new Error(`wait returned no outcome (${JSON.stringify(outcome)})`);
        } catch (err) {
          outcome = systemFailure('wait', err);
        }
      }
    }
  } catch (err) {
    outcome = systemFailure('preparing the attempt', err);
  }
  outcome = normalise(outcome!, signal, task, outputs, attempt.cancelNote);
  if (registrations.length && outcome.state === 'SUCCEEDED') outcome.registrations = [...registrations, ...(outcome.registrations ?? [])];
  clearInterval(heartbeat);
  if (timeout) clearTimeout(timeout);

  const shutdown = shuttingDown();
  reporter.close();
  let resultPublished = false;
  if (!shutdown) {
    // Earlier events first, then the result: the result must not overtake the logs it concludes.
    await reporter.settled();
    resultPublished = await publishResult(outcome);
  }

  try {
    await executor.finalize?.(submitted ? handle : undefined, task, outcome);
  } catch (err) {
    await reporter.publishNow({ kind: 'log', stream: 'stderr', lines: [`[atelier] ${executor.name}: finalize failed: ${errorMessage(err)}`] });
  }
  await reporter.settled();
  if (workdir) await rm(workdir, { recursive: true, force: true }).catch((err) => rt.warn(`removing ${workdir} failed: ${errorMessage(err)}`));

  release();
  if (shutdown) {
    // Not acked: another host (or this one, restarted) runs the attempt again; the run's log says why it started over.
    await reporter.publishNow({
      kind: 'log',
      stream: 'stderr',
      lines: [`[atelier] executor host ${host} stopped: the attempt is handed back and runs again on another host`],
    });
    delivery.nak();
  } else if (resultPublished) {
    await delivery.ack();
    attempt.acked = true;
  } else {
    delivery.nak(1_000);
  }
}

/** The outcome as the bus carries it: `endedAt` is the host's, for the duration, not the control plane's. */
const withoutEnd = ({ endedAt: _, ...outcome }: TaskOutcome): TaskOutcome => outcome;

/** Applies what the host knows better than the executor: why it aborted, and the outputs it collected. */
function normalise(
  outcome: TaskOutcome,
  signal: AbortSignal,
  task: TaskMessage,
  outputs: Record<string, unknown>,
  cancelNote: string | undefined,
): TaskOutcome {
  let result: TaskOutcome = { ...outcome };
  if (signal.aborted && result.state === 'CANCELLED') {
    if (signal.reason === 'timeout') {
      result = { ...result, ...timedOut(`exceeded its time limit of ${formatDuration(task.timeoutMs)} (timeoutMs ${task.timeoutMs})`) };
    } else if (signal.reason === 'shutdown') {
      result.reason = 'shutdown';
      result.message ??= 'executor host shut down';
    } else {
      result.reason = 'cancelled';
      const note = cancelNote ? `cancelled: ${cancelNote}` : 'cancelled on request';
      result.message = result.message ? `${note} (${result.message})` : note;
    }
  }
  if (Object.keys(outputs).length > 0 || result.outputs) result.outputs = { ...outputs, ...result.outputs };
  return result;
}

function formatDuration(ms: number) {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${+(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)} min`;
  return `${+(ms / 3_600_000).toFixed(1)} h`;
}

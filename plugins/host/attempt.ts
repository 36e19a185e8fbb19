// One task attempt on the executor host, from claim to ack: picks the executor, prepares the work directory,
// drives submit → wait → (cancel) → finalize, heartbeats meanwhile, enforces the deadline, and settles the
// delivery. What the attempt reports goes through its reporter (reporter.ts); what it hands the executor is its
// context (attempt-context.ts); whether it may run at all, its claim (attempt-claim.ts).
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Bus, Delivery } from '../bus/types';
import { cancelled, failed, systemFailure as platformFailure, timedOut } from '../outcomes';
import type { TaskOutcome } from '../protocol';
import type { ExecutorRegistry } from '../registry';
import type { AbortReason, Executor, TaskMessage } from '../sdk';
import { traceTaskHop } from '../trace';
import { settleUnclaimed, Unclaimed } from './attempt-claim';
import { AttemptContext } from './attempt-context';
import type { AskClaim } from './claims';
import type { EventCombiner } from './event-combiner';
import type { Attempt } from './host-attempt';
import { createReporter, type Reporter } from './reporter';
import { LaneTimer, hostTimers as timers } from './timer-lanes';

export { CLAIM_RETRY_MS, CLAIM_TIMEOUT_MS, claimAction, claimAttempt } from './attempt-claim';
export { Attempt } from './host-attempt';

/** Where the host gets module archives (and the model files tasks are pinned to) from. */
export interface ArtifactSource {
  /**
   * Local path of the object with this digest, already verified against it. `as`: the credentials to ask with
   * instead of the host's own, a task's own token for that task's model files (the host's may not read them).
   */
  fetch(digest: string, as?: { token: string }): Promise<string>;
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
  /** The host's combiner of event messages (event-combiner.ts), where the bus carries bundles. */
  combiner?: EventCombiner;
}

/** However often a control plane asks for heartbeats (ClaimAnswer.heartbeatMs), at most ten a second per attempt. */
const MIN_HEARTBEAT_MS = 100;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once past this; longer limits are treated as none

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
const safePathPart = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/** Heartbeats keep the delivery from being redelivered and tell the control plane the attempt is alive. */
class Heartbeat extends LaneTimer {
  constructor(
    private readonly delivery: Delivery<TaskMessage>,
    private readonly reporter: Reporter,
    readonly everyMs: number,
  ) {
    super();
  }
  fire() {
    timers.arm(this, this.everyMs);
    this.delivery.working();
    this.reporter.heartbeat();
  }
}

/** The attempt's time limit (`task.timeoutMs`): past it the attempt is stopped, and ends TIMED_OUT. */
class Deadline extends LaneTimer {
  constructor(private readonly attempt: Attempt) {
    super();
  }
  fire() {
    this.attempt.abort('timeout');
  }
}

/** Stops an attempt: aborts its signal and asks the executor to cancel (once it has a handle). */
export function abortAttempt(attempt: Attempt, reason: AbortReason) {
  attempt.abort(reason);
}

/**
 * Runs one attempt to its end and settles its delivery: acked once the result is published, nakked when it could
 * not be or the host is shutting down. `release` gives the host's slot back just before the ack.
 */
export async function runAttempt(rt: AttemptRuntime, attempt: Attempt, delivery: Delivery<TaskMessage>, release: () => void) {
  const { task } = attempt;
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
    combiner: rt.combiner,
  });

  let executor: Executor;
  try {
    executor = rt.registry.get(rt.executeWith ?? task.executor);
  } catch (err) {
    const outcome = failed('unknown-executor', `${errorMessage(err)} on host ${host}`, { retryable: false, systemFailure: false });
    await publishResult(rt, attempt, reporter, outcome, startedAt);
    release();
    await delivery.ack();
    attempt.acked = true;
    return;
  }

  // A work directory only for executors that need one: for a no-op attempt its removal and creation were most of
  // the host's own time (an mkdir and two recursive rm's per attempt).
  const workdir = executor.workdir === false ? undefined : path.join(rt.workRoot, `${safePathPart(task.taskId)}-${task.attempt}`);
  const ctx = new AttemptContext(rt, attempt, delivery, executor, workdir, reporter);

  const heartbeat = new Heartbeat(delivery, reporter, Math.min(rt.heartbeatEveryMs, Math.max(MIN_HEARTBEAT_MS, task.heartbeatMs ?? rt.heartbeatEveryMs)));
  timers.arm(heartbeat, heartbeat.everyMs);
  const limitMs = task.timeoutMs;
  const deadline = typeof limitMs === 'number' && limitMs > 0 && limitMs <= MAX_TIMER_MS ? new Deadline(attempt) : undefined;
  if (deadline) timers.arm(deadline, limitMs!);

  let handle: unknown;
  let submitted = false;
  let outcome: TaskOutcome;
  try {
    if (workdir) {
      await rm(workdir, { recursive: true, force: true }); // leftovers of an earlier delivery on this host
      await mkdir(workdir, { recursive: true });
    }
    if (attempt.abortReason !== undefined) {
      outcome = cancelled(attempt.abortReason);
    } else {
      try {
        handle = await executor.submit(task, ctx);
        submitted = true;
      } catch (err) {
        if (err instanceof Unclaimed && err.key === attempt.key) {
          // Nothing ran and nothing was reported: the delivery is settled as a claim answered before running is.
          stopTimers(heartbeat, deadline);
          reporter.close();
          if (workdir) await rm(workdir, { recursive: true, force: true }).catch(() => undefined);
          release();
          await settleUnclaimed(rt, delivery, err.action);
          attempt.acked = err.action !== 'ask-later';
          return;
        }
        outcome = systemFailure(executor, 'submit', err);
      }
      if (submitted) {
        reporter.started(handle);
        attempt.submitted(executor, handle, reporter); // aborted while submit was in flight: cancelled at once
        try {
          outcome = await executor.wait(handle, task, ctx);
          traceTaskHop('host: wait returned', task.runId, task.taskId);
          if (!outcome || typeof outcome.state !== 'string') throw new Error(`wait returned no outcome (${JSON.stringify(outcome)})`);
        } catch (err) {
          outcome = systemFailure(executor, 'wait', err);
        }
      }
    }
  } catch (err) {
    outcome = systemFailure(executor, 'preparing the attempt', err);
  }
  outcome = normalise(outcome!, attempt.abortReason, task, ctx.outputs, attempt.cancelNote);
  if (ctx.registrations && outcome.state === 'SUCCEEDED') outcome.registrations = [...ctx.registrations, ...(outcome.registrations ?? [])];
  stopTimers(heartbeat, deadline);

  const shutdown = attempt.abortReason === 'shutdown';
  reporter.close();
  let resultPublished = false;
  if (!shutdown) {
    // Earlier events first, then the result: the result must not overtake the logs it concludes.
    await reporter.settled();
    resultPublished = await publishResult(rt, attempt, reporter, outcome, startedAt);
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

function stopTimers(heartbeat: Heartbeat, deadline: Deadline | undefined) {
  timers.disarm(heartbeat);
  if (deadline) timers.disarm(deadline);
}

const systemFailure = (executor: Executor, what: string, err: unknown): TaskOutcome =>
  platformFailure('executor-error', `${executor.name}: ${what} failed: ${errorMessage(err)}`);

/**
 * The duration ends where the executor says the work ended (a module's exit), else now: reading and sending what the
 * module reported before it exited (a training loop's last metric points) is the host's time, not the task's. An
 * outcome with no end of its own (most executors') goes as it is: a rest copy per attempt was ~2 us of S1's host.
 */
function publishResult(rt: AttemptRuntime, attempt: Attempt, reporter: Reporter, outcome: TaskOutcome, startedAt: number) {
  const { endedAt } = outcome;
  const sent = endedAt === undefined ? outcome : withoutEnd(outcome);
  const durationMs = Math.max(0, Math.min(Date.now(), endedAt ?? Date.now()) - startedAt);
  return reporter.publishResult(sent, durationMs, () => !rt.running() || attempt.abortReason === 'shutdown');
}

/** The outcome as the bus carries it: `endedAt` is the host's, for the duration, not the control plane's. */
const withoutEnd = ({ endedAt: _, ...outcome }: TaskOutcome): TaskOutcome => outcome;

/** Applies what the host knows better than the executor: why it aborted, and the outputs it collected. */
function normalise(
  outcome: TaskOutcome,
  reason: AbortReason | undefined,
  task: TaskMessage,
  outputs: Record<string, unknown> | undefined,
  cancelNote: string | undefined,
): TaskOutcome {
  let result: TaskOutcome = { ...outcome };
  if (reason !== undefined && result.state === 'CANCELLED') {
    if (reason === 'timeout') {
      result = { ...result, ...timedOut(`exceeded its time limit of ${formatDuration(task.timeoutMs)} (timeoutMs ${task.timeoutMs})`) };
    } else if (reason === 'shutdown') {
      result.reason = 'shutdown';
      result.message ??= 'executor host shut down';
    } else {
      result.reason = 'cancelled';
      const note = cancelNote ? `cancelled: ${cancelNote}` : 'cancelled on request';
      result.message = result.message ? `${note} (${result.message})` : note;
    }
  }
  if (outputs || result.outputs) result.outputs = { ...outputs, ...result.outputs };
  return result;
}

function formatDuration(ms: number) {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${+(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)} min`;
  return `${+(ms / 3_600_000).toFixed(1)} h`;
}

// Follows one submitted Databricks run until it ends: polls `runs/get` with jitter, reports life-cycle changes as
// progress and log lines, notices a requested cancel once the run is TERMINATING, and on the end fetches
// `runs/get-output` and streams it. Polling problems are retried; only a long outage gives up.
import { applyProgressLine } from '../../plugins/progress-lines';
import { cancelled, permanentFailure, systemFailure, type TaskContext, type TaskOutcome } from '../../plugins/sdk';
import { type Clock, DatabricksApiError, type DatabricksHttp } from './http';
import { type RunPhase, readRunState } from './states';
import type { ClusterKind } from './submit';

/** What `wait` and `cancel` share about one run. */
export interface RunControl {
  cancelRequested: boolean;
  /** Aborted by `cancel` to end the poll loop's sleep early. */
  wake: AbortController;
}

export interface FollowOptions {
  http: DatabricksHttp;
  clock: Clock;
  random: () => number;
  pollIntervalMs: number;
  /** Give up (FAILED, retryable) after `runs/get` has failed this long without a break. */
  pollErrorBudgetMs: number;
  /** After a cancel, how long to wait for Databricks to move past RUNNING before reporting CANCELLED anyway. */
  cancelGraceMs: number;
  control: RunControl;
  /** Sends `runs/cancel` (idempotent). */
  requestCancel: () => Promise<void>;
  /** Aborted when the executor closes. */
  lifetime: AbortSignal;
}

/** `::atelier:: {json}` lines in a run's stdout carry progress, metrics and outputs, as fd 3 does for `local`. */
export const PROTOCOL_PREFIX = '::atelier::';
const POLL_ERROR_LOG_EVERY = 10;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

export async function followRun(handle: { runId: number; cluster: ClusterKind }, ctx: TaskContext, o: FollowOptions): Promise<TaskOutcome> {
  const { runId } = handle;
  const { http, clock } = o;
  const say = (line: string) => ctx.log('stderr', `[databricks] ${line}`);
  const shutdown = shutdownSignal(ctx.signal, o.lifetime);
  const leftRunning = (): TaskOutcome => cancelled('shutdown', `executor host shut down; Databricks run ${runId} keeps running for the next host to adopt`);

  let lastLabel: string | undefined;
  let lastPhase: RunPhase | undefined;
  let pageUrl: string | undefined;
  let provisioningAt: number | undefined;
  let runningAt: number | undefined;
  let cancelSeenAt: number | undefined;
  let failingSince: number | undefined;
  let failures = 0;

  for (;;) {
    if (shutdown.aborted) return leftRunning();
    const cancelWanted = o.control.cancelRequested || (ctx.aborted && ctx.signal.reason !== 'shutdown');
    if (cancelWanted && cancelSeenAt === undefined) {
      cancelSeenAt = clock.now();
      // The host calls `cancel` itself when it aborts; this covers a cancel that failed to reach Databricks.
      if (!o.control.cancelRequested) o.requestCancel().catch((err) => say(`cancelling run ${runId} failed: ${messageOf(err)}`));
    }

    let run: Record<string, unknown>;
    try {
      run = await http.request('GET', '/api/2.2/jobs/runs/get', { query: { run_id: runId }, signal: shutdown });
      failingSince = undefined;
      failures = 0;
    } catch (err) {
      if (shutdown.aborted) return leftRunning();
      if (!(err instanceof DatabricksApiError)) throw err;
      if (err.details.credentials) {
        return permanentFailure('credentials', `following Databricks run ${runId}: ${err.message}`);
      }
      if (!err.details.retryable) {
        // e.g. "Run … does not exist": deleted, or older than the 60 days Databricks keeps runs.
        return systemFailure('run-lost', `Databricks run ${runId} can no longer be read: ${err.message}`);
      }
      failingSince ??= clock.now();
      failures++;
      if (failures === 1 || failures % POLL_ERROR_LOG_EVERY === 0) say(`polling run ${runId} failed (${err.message}); still trying`);
      if (clock.now() - failingSince >= o.pollErrorBudgetMs) {
        // Best effort: a run nobody follows would otherwise run on (and bill) unseen while a retry starts another.
        await o.requestCancel().catch(() => undefined);
        return systemFailure(
          'databricks-unreachable',
          `lost contact with Databricks for ${Math.round((clock.now() - failingSince) / 1_000)} s while following run ${runId}: ${err.message}`,
        );
      }
      await clock.sleep(jittered(o), shutdown);
      continue;
    }

    const view = readRunState(run);
    if (pageUrl === undefined && typeof run.run_page_url === 'string') {
      pageUrl = run.run_page_url;
      say(`run ${runId}: ${pageUrl}`);
    }
    if (view.label !== lastLabel) {
      lastLabel = view.label;
      say(
        view.phase === 'unknown'
          ? `run ${runId} reports ${view.label}, a state this executor does not know: treating it as still in progress`
          : `run ${runId} is ${view.label}${view.message ? `: ${view.message}` : ''}`,
      );
    }
    if (view.phase !== lastPhase && view.phase !== 'unknown' && view.phase !== 'terminated') ctx.progress(null, view.phase);
    lastPhase = view.phase;
    const now = clock.now();
    if (view.phase === 'provisioning') provisioningAt ??= now;
    if (view.phase === 'running') runningAt ??= now;

    if (view.phase === 'terminated' && view.outcome) {
      const output = await fetchOutput(run, runId, http, shutdown, say);
      if (output) streamOutput(output, ctx, say);
      const provisioningMs = reportTimings(run, handle, pageUrl, provisioningAt, runningAt, ctx);
      const outcome = describe(view.outcome, runId, output, pageUrl);
      return provisioningMs === undefined ? outcome : { ...outcome, provisioningMs };
    }
    if (cancelSeenAt !== undefined) {
      // runs/cancel is asynchronous: TERMINATING is Databricks' word that the run is stopping.
      if (view.phase === 'terminating') return cancelled('cancelled', `Databricks run ${runId} is terminating after the cancel`);
      if (now - cancelSeenAt >= o.cancelGraceMs) {
        return cancelled(
          'cancelled',
          `cancel sent ${Math.round((now - cancelSeenAt) / 1_000)} s ago, but Databricks run ${runId} still reports ${view.label}; check it in the workspace`,
        );
      }
    }
    // Before a cancel, a cancel or an abort wakes the sleep; after it, they would keep it from sleeping at all.
    const wakeOn = cancelSeenAt === undefined ? AbortSignal.any([ctx.signal, o.control.wake.signal, shutdown]) : shutdown;
    await clock.sleep(jittered(o), wakeOn);
  }
}

function jittered(o: FollowOptions) {
  return Math.round(o.pollIntervalMs * (0.8 + 0.4 * o.random()));
}

/** Aborts when the attempt's signal aborts for a host shutdown, or the executor closes; never for a cancel. */
export function shutdownSignal(signal: AbortSignal, lifetime: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const check = () => {
    if ((signal.aborted && signal.reason === 'shutdown') || lifetime.aborted) controller.abort('shutdown');
  };
  check();
  signal.addEventListener('abort', check, { once: true });
  lifetime.addEventListener('abort', check, { once: true });
  return controller.signal;
}

async function fetchOutput(run: Record<string, unknown>, runId: number, http: DatabricksHttp, signal: AbortSignal, say: (line: string) => void) {
  // get-output takes a task run's id: for multi-task runs (every 2.1+ submit) the parent's id is refused.
  const tasks = Array.isArray(run.tasks) ? run.tasks : [];
  const taskRunId = num(obj(tasks[0]).run_id) ?? runId;
  try {
    return await http.request('GET', '/api/2.2/jobs/runs/get-output', { query: { run_id: taskRunId }, signal });
  } catch (err) {
    say(`could not fetch the output of run ${runId} (task run ${taskRunId}): ${messageOf(err)}`);
    return undefined;
  }
}

function streamOutput(output: Record<string, unknown>, ctx: TaskContext, say: (line: string) => void) {
  if (typeof output.logs === 'string' && output.logs !== '') {
    for (const line of output.logs.replace(/\r?\n$/, '').split(/\r?\n/)) {
      if (line.startsWith(PROTOCOL_PREFIX)) handleProtocolLine(line.slice(PROTOCOL_PREFIX.length), ctx, say);
      else ctx.log('stdout', line);
    }
  }
  if (output.logs_truncated === true) say('Databricks returned only the last 5 MB of the logs (logs_truncated)');
  if (typeof output.error_trace === 'string' && output.error_trace !== '') {
    for (const line of output.error_trace.replace(/\r?\n$/, '').split(/\r?\n/)) ctx.log('stderr', line);
  }
  const notebook = obj(output.notebook_output);
  if (typeof notebook.result === 'string') {
    ctx.output('notebook_result', notebook.result);
    if (notebook.truncated === true) say('the notebook result was truncated by Databricks');
  }
}

/** The same protocol as `local`'s fd 3 (progress, metrics, batched points, outputs), read by the one shared parser. */
function handleProtocolLine(json: string, ctx: TaskContext, say: (line: string) => void) {
  applyProgressLine(json, ctx, (why) => say(`ignored a ${PROTOCOL_PREFIX} line (${why}): ${json.slice(0, 200)}`));
}

/**
 * Provisioning and execution time as Databricks measured them (or as we saw them), so a hot cluster's saving shows;
 * returns the provisioning time for the attempt's outcome.
 */
function reportTimings(
  run: Record<string, unknown>,
  handle: { runId: number; cluster: ClusterKind },
  pageUrl: string | undefined,
  provisioningAt: number | undefined,
  runningAt: number | undefined,
  ctx: TaskContext,
): number | undefined {
  const task = obj(Array.isArray(run.tasks) ? run.tasks[0] : undefined);
  const observed = provisioningAt !== undefined && runningAt !== undefined ? runningAt - provisioningAt : undefined;
  const provisioningMs = num(task.setup_duration) ?? num(run.setup_duration) ?? observed;
  const executionMs = num(task.execution_duration) ?? num(run.execution_duration);
  const queueMs = num(run.queue_duration);
  ctx.output('databricks', {
    runId: handle.runId,
    runPageUrl: pageUrl ?? null,
    cluster: handle.cluster,
    coldStart: handle.cluster !== 'existing',
    provisioningMs: provisioningMs ?? null,
    executionMs: executionMs ?? null,
    queueMs: queueMs ?? null,
  });
  const metrics: Record<string, number> = {};
  if (provisioningMs !== undefined) metrics.provisioning_ms = provisioningMs;
  if (executionMs !== undefined) metrics.execution_ms = executionMs;
  if (Object.keys(metrics).length > 0) ctx.metric(metrics);
  return provisioningMs;
}

function describe(outcome: TaskOutcome, runId: number, output: Record<string, unknown> | undefined, pageUrl: string | undefined): TaskOutcome {
  if (outcome.state === 'SUCCEEDED') return { ...outcome };
  const error = output && typeof output.error === 'string' && output.error !== '' ? `; error: ${output.error}` : '';
  const where = pageUrl ? ` (${pageUrl})` : '';
  return { ...outcome, message: `Databricks run ${runId} ended ${outcome.message ?? outcome.state}${error}${where}` };
}

function messageOf(err: unknown) {
  return err instanceof Error ? err.message : String(err);
}

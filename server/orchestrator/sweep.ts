// The periodic sweep, one pass after another: retries whose backoff is over, tasks whose host went silent or that
// ran past their deadline, runs past theirs (run-deadline.ts), runs waiting for admission, cache eviction, folding the
// period figures' changes, and READY tasks waiting for a free slot.
import { and, asc, eq, inArray, lt, sql } from 'drizzle-orm';
import { queryRows, type Tx } from '../db/client';
import { runs, tasks } from '../db/tables/runs';
import { workflowVersions } from '../db/tables/workflows';
import { foldTaskFigures } from '../runs/fold-figures';
import { clearAttemptFiles } from '../tracking/artifacts';
import { confirmStuck, type Suspect } from './attempts';
import { lockRun, type OrchestratorContext, taskStatusEvent, transact } from './context';
import { dispatch } from './dispatch';
import { endAttempts, groupByRun } from './end-attempts';
import { queueTime, runsToAdmit } from './limits';
import { findMissingMessages, type LostMessageState, redispatchLostMessages } from './lost-messages';
import { deadlineOutcome, endedHostOutcome, lostHostOutcome } from './outcomes';
import { deadlineOf, endOverdueRuns } from './run-deadline';

const TICK_BATCH = 500;
const EVICT_EVERY_MS = 10_000;
const FOLD_EVERY_MS = 60_000;

/** What the sweep remembers between passes: when it last evicted cache entries, the tasks that look stuck, and lost messages. */
export interface SweepState extends LostMessageState {
  lastEviction: number;
  /** When it last folded the period figures' changes (server/runs/fold-figures.ts). */
  lastFold?: number;
  /** By `taskId:attempt:lost|deadline`: tasks seen stuck, not yet confirmed (see failStuckTasks). */
  suspects: Map<string, Suspect>;
}

/** One sweep: every pass sees the same `now`, and a pass runs only where one first question found it work. */
export async function tick(ctx: OrchestratorContext, state: SweepState): Promise<void> {
  const at = ctx.now();
  const due = await duePasses(ctx, at);
  if (due.retries) await readyDueRetries(ctx, at);
  await redispatchLostMessages(ctx, state);
  await findMissingMessages(ctx, state, at);
  if (due.running) await failStuckTasks(ctx, state, at);
  else state.suspects = new Map(); // nothing runs: nothing can be stuck
  if (due.overdue) await endOverdueRuns(ctx, at);
  if (due.waiting) await admitWaitingRuns(ctx);
  await evictCache(ctx, state, at);
  await foldFigures(ctx, state, at);
  if (due.ready) await fillFreeSlots(ctx);
}

/** Which of the sweep's queries could find anything: each a superset of its pass's own, answered from the partial indexes. */
interface Due {
  retries: boolean;
  running: boolean;
  overdue: boolean;
  waiting: boolean;
  ready: boolean;
}

/**
 * One round trip for the five passes that read the database each tick. An idle control plane (the common case
 * between runs) then asks one question a tick instead of five (on the embedded database a query costs ~1 ms of CPU
 * however little it finds, so an idle replica spent most of its time here), and a busy one still runs every pass
 * its state calls for, on the same tick.
 */
async function duePasses(ctx: OrchestratorContext, at: Date): Promise<Due> {
  const now = at.toISOString();
  const [due] = await queryRows<Due>(
    ctx.db,
    sql`select
          exists (select 1 from tasks where status = 'RETRYING' and retry_at < ${now}::timestamptz) as retries,
          exists (select 1 from tasks where status = 'RUNNING' and kind = 'module') as running,
          exists (select 1 from runs where deadline_at is not null and status in ('QUEUED', 'RUNNING') and deadline_at <= ${now}::timestamptz) as overdue,
          exists (select 1 from runs where status = 'QUEUED' and admitted = false) as waiting,
          exists (select 1 from tasks where status = 'READY') as ready`,
  );
  return due!;
}

/** Retries whose backoff is over become READY and are dispatched. */
async function readyDueRetries(ctx: OrchestratorContext, at: Date): Promise<void> {
  const due = await ctx.db
    .select({ id: tasks.id, runId: tasks.runId })
    .from(tasks)
    .where(and(eq(tasks.status, 'RETRYING'), lt(tasks.retryAt, at)))
    .limit(TICK_BATCH);
  for (const [runId, list] of groupByRun(due)) {
    const ids = list.map((t) => t.id);
    await transact(ctx, async (tc) => {
      const { tx, step } = tc;
      const run = await lockRun(tx, runId);
      if (!run) return;
      const moved = await tx
        .update(tasks)
        .set({ status: 'READY', retryAt: null, queuedAt: step.at })
        .where(and(inArray(tasks.id, ids), eq(tasks.status, 'RETRYING')))
        .returning();
      for (const t of moved) taskStatusEvent(step, t, 'READY');
      // The next attempt's folder starts empty: what the failed one logged (MLflow from inside) is not its files.
      if (moved.length)
        await clearAttemptFiles(
          tx,
          moved.map((t) => t.id),
        );
      await dispatch(tc, run);
    });
  }
}

/**
 * Running tasks whose host went silent (lost hosts: retried as the platform's failure) or that ran past their own
 * deadline and its grace (timed out), found in one query. A task looks stuck first and is confirmed only once the
 * event recorder has recorded everything published before that (attempts.ts confirmStuck): a result or heartbeat
 * still on the bus (a replica died holding it, the control plane was down) is applied first, never overtaken.
 */
async function failStuckTasks(ctx: OrchestratorContext, state: SweepState, at: Date): Promise<void> {
  const { heartbeatTimeoutMs, deadlineGraceMs } = ctx;
  const silentSince = new Date(at.getTime() - heartbeatTimeoutMs);
  // Read before the query, so every event it counts as recorded was applied before the query looked.
  let backlog: { published: number; recorded: number } | undefined;
  try {
    backlog = await ctx.eventBacklog?.();
  } catch {
    return; // the bus cannot say what is still on it: declare nothing stuck now
  }
  const ended = ctx.endedHosts
    ? sql`(right(host, ${ctx.endedHosts.suffix.length}) = ${ctx.endedHosts.suffix} and host <> ${ctx.endedHosts.current})`
    : sql`false`;
  const stuck = await queryRows<{
    id: string;
    run_id: string;
    attempt: number;
    host: string | null;
    lost: boolean;
    ended: boolean;
    heartbeat_at: Date | string | null;
  }>(
    ctx.db,
    sql`select id, run_id, attempt, host, heartbeat_at, (heartbeat_at < ${silentSince.toISOString()}::timestamptz or ${ended}) as lost, ${ended} as ended
        from tasks
        where status = 'RUNNING' and kind = 'module' and (heartbeat_at < ${silentSince.toISOString()}::timestamptz or ${ended}
           or started_at + make_interval(secs => (timeout_ms + ${deadlineGraceMs}) / 1000.0) < ${at.toISOString()}::timestamptz)
        limit ${TICK_BATCH}`,
  );
  const suspects = new Map<string, Suspect>();
  const confirmed = stuck.filter((s) => {
    const key = `${s.id}:${s.attempt}:${s.lost ? 'lost' : 'deadline'}`;
    // Past a deadline, a heartbeat changes nothing: only a result still on the bus may end the task otherwise.
    const heartbeatAt = s.lost && s.heartbeat_at ? new Date(s.heartbeat_at).getTime() : null;
    const { confirmed, suspect } = confirmStuck(state.suspects.get(key), { heartbeatAt }, backlog);
    if (!confirmed) suspects.set(key, suspect);
    return confirmed;
  });
  state.suspects = suspects;
  await endAttempts(
    ctx,
    'RUNNING',
    confirmed.map((s) => ({ ...s, runId: s.run_id })),
    (task, s, at) => ({
      reason: s.lost ? 'presumed lost' : 'deadline',
      outcome: s.ended ? endedHostOutcome(s.host) : s.lost ? lostHostOutcome(s.host, heartbeatTimeoutMs) : deadlineOutcome(task.timeoutMs),
      durationMs: at.getTime() - (task.startedAt?.getTime() ?? at.getTime()),
      host: task.host,
    }),
  );
}

/** Runs held back by their workflow's maxActiveRuns, admitted in the order they started. */
async function admitWaitingRuns(ctx: OrchestratorContext): Promise<void> {
  const waiting = await ctx.db
    .select({ id: runs.id, workflowId: runs.workflowId })
    .from(runs)
    .where(and(eq(runs.admitted, false), eq(runs.status, 'QUEUED')))
    .orderBy(asc(runs.createdAt))
    .limit(TICK_BATCH);
  // Only workflow runs wait for admission (a run logged from outside a workflow is admitted as it is made).
  for (const workflowId of new Set(waiting.flatMap((w) => (w.workflowId ? [w.workflowId] : [])))) {
    await transact(ctx, async (tc) => {
      const { tx, step } = tc;
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`atelier-workflow:${workflowId}`}))`);
      const queue = await tx
        .select()
        .from(runs)
        .where(and(eq(runs.workflowId, workflowId), eq(runs.admitted, false), eq(runs.status, 'QUEUED')))
        .orderBy(asc(runs.createdAt));
      if (!queue.length) return;
      const [version] = await tx.select().from(workflowVersions).where(eq(workflowVersions.id, queue[0]!.workflowVersionId!));
      const [active] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(runs)
        .where(and(eq(runs.workflowId, workflowId), eq(runs.admitted, true), inArray(runs.status, ['QUEUED', 'RUNNING'])));
      for (const run of queue.slice(0, runsToAdmit(version?.spec.concurrency?.maxActiveRuns, active?.n ?? 0))) {
        // Its time limit counts from now, never past its parent's deadline.
        const deadlineAt = deadlineOf(step.at, run.timeoutMs, run.parentRunId ? await parentDeadline(tx, run.parentRunId) : null);
        const [admitted] = await tx.update(runs).set({ admitted: true, message: null, deadlineAt }).where(eq(runs.id, run.id)).returning();
        step.feed.push({
          kind: 'run-status',
          runId: run.id,
          status: 'QUEUED',
          message: null,
          deadlineAt: deadlineAt?.toISOString() ?? null,
          at: step.at.toISOString(),
        });
        await dispatch(tc, admitted!);
      }
    });
  }
}

async function parentDeadline(tx: Tx, parentRunId: string): Promise<Date | null> {
  const [parent] = await tx.select({ deadlineAt: runs.deadlineAt }).from(runs).where(eq(runs.id, parentRunId));
  return parent?.deadlineAt ?? null;
}

/** Expired cache entries, and the least recently used beyond the size budget; not on every tick, the sum is a scan. */
async function evictCache(ctx: OrchestratorContext, state: SweepState, at: Date): Promise<void> {
  if (!ctx.cache || at.getTime() - state.lastEviction < EVICT_EVERY_MS) return;
  state.lastEviction = at.getTime();
  await ctx.cache.evict(ctx.db, at);
}

async function foldFigures(ctx: OrchestratorContext, state: SweepState, at: Date): Promise<void> {
  if (at.getTime() - (state.lastFold ?? 0) < FOLD_EVERY_MS) return;
  state.lastFold = at.getTime();
  await foldTaskFigures(ctx.db);
}

/** READY tasks waiting for a slot (or for an identical task's cached result) that has since freed. */
async function fillFreeSlots(ctx: OrchestratorContext): Promise<void> {
  // Runs in their best task's pool-queue order (limits.ts), so a freed slot goes to the run whose task is owed it.
  const withReady = await queryRows<{ run_id: string }>(
    ctx.db,
    sql`select t.run_id from tasks t join runs r on r.id = t.run_id where t.status = 'READY'
        group by t.run_id order by min(${queueTime}) limit ${TICK_BATCH}`,
  );
  for (const { run_id } of withReady) {
    await transact(ctx, async (tc) => {
      const run = await lockRun(tc.tx, run_id);
      if (run) await dispatch(tc, run);
    });
  }
}

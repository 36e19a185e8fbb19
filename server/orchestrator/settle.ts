// Settling: how an attempt ended (final, or RETRYING with backoff), which downstream tasks that makes READY or
// SKIPPED by their trigger rules, dispatching what is ready, and ending the run once nothing is open.
import { and, eq, inArray, type SQL, sql } from 'drizzle-orm';
import type { TaskOutcome } from '../../plugins/protocol';
import { traceTaskHop, tracing } from '../../plugins/trace';
import { arrayLiteral } from '../db/arrays';
import { queryRows } from '../db/client';
import { sqlOnce } from '../db/prepared';
import { type Run, type Task, tasks } from '../db/tables/runs';
import type { TaskStatus } from '../vocabulary';
import { emitRunEnded } from '../webhooks/run-events';
import { notifyParent } from './composite';
import { sentBehind, type TxContext, taskStatusEvent, writeBehind } from './context';
import { dispatch } from './dispatch';
import { dispatchBehind } from './edge-dispatch';
import { failureSummary, skipMessage } from './outcomes';
import { type DownstreamRead, taskFromRow } from './recorded-tasks';
import { endAttempt, finalRunStatus, readinessFromCounts, readyWhen } from './rules';
import { runFailed, runSucceeded } from './run-signals';

/**
 * After some nodes ended: decide their downstream, fill free slots, and end the run if nothing is open.
 * `statuses`: what the caller just wrote for (some of) `finished`, so they are not read back. `ended`: every status the
 * run's tasks ended in, when the caller knows that none is open any more (record-events.ts: the run's last open task
 * ended): nothing waits downstream and nothing is READY, so there is nothing to count or dispatch. `edge`: what the read
 * under the run's lock said of the one finished node's downstream, for its success's dispatch without waiting for the
 * counting statement (edge-dispatch.ts).
 */
export async function settle(
  tc: TxContext,
  run: Run,
  finished: string[],
  statuses?: Map<string, TaskStatus>,
  ended?: TaskStatus[],
  edge?: DownstreamRead,
): Promise<void> {
  if (run.status !== 'QUEUED' && run.status !== 'RUNNING') return;
  if (ended && finished.length && endBehind(tc, run, ended)) return;
  if (edge && !ended && finished.length === 1 && statuses?.get(finished[0]!) === 'SUCCEEDED' && (await dispatchBehind(tc, run, finished[0]!, edge))) return;
  const evaluated = finished.length ? await evaluate(tc, run, finished, statuses) : undefined;
  if (tracing()) for (const t of evaluated?.ready ?? []) traceTaskHop('control plane: evaluated', t.runId, t.id);
  const queued = await dispatch(tc, run, evaluated?.ready);
  if (tracing()) for (const t of evaluated?.ready ?? []) traceTaskHop('control plane: dispatched', t.runId, t.id);
  // A task queued just now keeps the run open: no need to ask. With nothing READY, dispatch changed nothing, so the
  // counting statement's answer (whether a task is open, and if none is, how they ended) still holds.
  if (finished.length && !queued) await finishIfDone(tc, run, evaluated?.ready.length === 0 ? evaluated.openness : undefined);
}

/** Whether a run has a task still open and, only when none is, every status its tasks ended in. */
interface Openness {
  open: boolean;
  statuses: TaskStatus[] | null;
}
const openness = (runId: string | SQL) =>
  sql`with o as (select exists (select 1 from tasks where run_id = ${runId} and status in ('PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING')) as open)
        select o.open, case when o.open then null else (select json_agg(distinct status) from tasks where run_id = ${runId}) end as statuses from o`;

/** Records how an attempt ended: final, or RETRYING with its backoff. */
export async function applyOutcome(
  { ctx, tx, step }: TxContext,
  task: Task,
  outcome: TaskOutcome,
  report: { at: Date; durationMs: number; host: string | null },
): Promise<Task> {
  const { retry, status, retryAt, message } = endAttempt(task, outcome, step.at);
  const [updated] = await tx
    .update(tasks)
    .set({
      status,
      reason: outcome.reason ?? null,
      message,
      exitCode: outcome.exitCode ?? null,
      outputs: outcome.outputs ?? null,
      startedAt: task.startedAt ?? new Date(report.at.getTime() - report.durationMs),
      finishedAt: retry.retry ? null : report.at,
      retryAt,
      host: report.host ?? task.host,
      ...(retry.system ? { systemFailures: task.systemFailures + 1, maxAttempts: task.maxAttempts + 1 } : {}),
      ...(status === 'SUCCEEDED' ? { progress: 1 } : {}),
    })
    .where(eq(tasks.id, task.id))
    .returning();
  taskStatusEvent(step, task, status, outcome.reason ?? null, message);
  if (task.cacheKey && !retry.retry) await ctx.cache?.release(tx, [task.id]);
  return updated!;
}

/**
 * Counts what just ended (`endedAll`, `endedOk`, `endedFailed`: array literals of nodes) into each pending downstream
 * task, in SQL: no upstream list is read back. One statement (it was three with dispatch's read), built once: the
 * counts and, for the tasks they make ready, the READY status (rules.ts readyWhen is readinessFromCounts' 'ready' in
 * SQL), returning the tasks it counted into and the run's other READY tasks. The second part sees the run as it was
 * before the update, when the tasks made ready were still PENDING, so no task comes twice; after the last pass, the
 * READY rows are all the run has. Every row also says whether the run has an open task (a task it makes READY was
 * PENDING, open either way) and, if none, how they ended: finishIfDone's question, answered without a round trip of
 * its own (one row when no task came).
 */
const counting = sqlOnce<{ endedAll: string; endedOk: string; endedFailed: string; at: string; runId: string }>()<Record<string, unknown>>(() => {
  const runId = sql`${sql.placeholder('runId')}::uuid`;
  const endedAll = sql`${sql.placeholder('endedAll')}::text[]`;
  const countIn = (set: SQL) => sql`(select count(*)::int from unnest(tasks.depends_on) as d(n) where d.n = any(${set}))`;
  const done = sql`tasks.upstream_done + ${countIn(endedAll)}`;
  const succeeded = sql`tasks.upstream_succeeded + ${countIn(sql`${sql.placeholder('endedOk')}::text[]`)}`;
  const failed = sql`tasks.upstream_failed + ${countIn(sql`${sql.placeholder('endedFailed')}::text[]`)}`;
  const ready = readyWhen({ rule: sql`tasks.trigger_rule`, total: sql`cardinality(tasks.depends_on)`, done, succeeded, failed });
  return sql`with c as (
            update tasks set upstream_done = ${done}, upstream_succeeded = ${succeeded}, upstream_failed = ${failed},
              status = case when ${ready} then 'READY' else tasks.status end,
              queued_at = case when ${ready} then ${sql.placeholder('at')}::timestamptz else tasks.queued_at end
            where tasks.run_id = ${runId} and tasks.status = 'PENDING' and tasks.depends_on && ${endedAll}
            returning tasks.*),
          openness as (${openness(runId)})
          select openness.open as run_open, openness.statuses as run_statuses, u.* from openness left join
            (select true as counted, c.* from c union all select false as counted, t.* from tasks t where t.run_id = ${runId} and t.status = 'READY') u on true
          order by u.queued_at, u.node`;
});

/**
 * After `nodes` reached a final state: decides, by trigger rule, which pending tasks downstream become READY and
 * which can never run (SKIPPED, which in turn may decide their own downstream). Returns every READY task of the run
 * afterwards, in dispatch order, so dispatch need not read them again.
 */
async function evaluate(
  { tx, step }: TxContext,
  run: Run,
  nodes: string[],
  statuses?: Map<string, TaskStatus>,
): Promise<{ ready: Task[]; openness: Openness }> {
  let frontier = nodes;
  let known = statuses;
  for (;;) {
    // Count what just ended into each pending downstream task, in SQL: no upstream list is read back.
    const ended = await endedStatuses(tx, run.id, frontier, known);
    const answer = await counting(tx, {
      endedAll: arrayLiteral(ended.map((e) => e.node)),
      endedOk: arrayLiteral(ended.filter((e) => e.status === 'SUCCEEDED').map((e) => e.node)),
      endedFailed: arrayLiteral(ended.filter((e) => e.status === 'FAILED' || e.status === 'TIMED_OUT').map((e) => e.node)),
      at: step.at.toISOString(),
      runId: run.id,
    });
    const rows = answer.filter((row) => row.id !== null && row.id !== undefined).map((row) => ({ counted: row.counted === true, task: taskFromRow(row) }));
    const candidates = rows.filter((r) => r.counted).map((r) => r.task);
    const count = (t: Task) => ({ total: t.dependsOn.length, done: t.upstreamDone, succeeded: t.upstreamSucceeded, failed: t.upstreamFailed });
    const skipped = candidates.filter((c) => c.status !== 'READY' && readinessFromCounts(c.triggerRule, count(c)) === 'skip');
    for (const t of candidates) if (t.status === 'READY') taskStatusEvent(step, t, 'READY');
    for (const t of skipped) {
      const message = skipMessage({ ...t, ...count(t) });
      // An upstream failed, or none did and one was skipped (its condition was false, or it was skipped in turn).
      const reason = t.upstreamFailed > 0 ? 'upstream-failed' : 'upstream-skipped';
      await tx.update(tasks).set({ status: 'SKIPPED', reason, message, finishedAt: step.at }).where(eq(tasks.id, t.id));
      taskStatusEvent(step, t, 'SKIPPED', reason, message);
    }
    if (!skipped.length)
      return {
        ready: rows.map((r) => r.task).filter((t) => t.status === 'READY'),
        openness: { open: answer[0]?.run_open === true, statuses: (answer[0]?.run_statuses as TaskStatus[] | null) ?? null },
      };
    frontier = skipped.map((t) => t.node);
    known = new Map(skipped.map((t) => [t.node, 'SKIPPED']));
  }
}

/** The statuses of `nodes` of a run: from `known` when it has them all, else read. */
async function endedStatuses(tx: TxContext['tx'], runId: string, nodes: string[], known: Map<string, TaskStatus> | undefined) {
  if (known && nodes.every((n) => known.has(n))) return nodes.map((node) => ({ node, status: known.get(node)! }));
  return tx
    .select({ node: tasks.node, status: tasks.status })
    .from(tasks)
    .where(and(eq(tasks.runId, runId), inArray(tasks.node, nodes)));
}

/** Ends the run when no task is open any more. */
export async function finishIfDone(tc: TxContext, run: Run, known?: Openness): Promise<void> {
  const { tx, step } = tc;
  if (run.status !== 'QUEUED' && run.status !== 'RUNNING') return;
  // One statement: whether a task is still open and, only when none is (CASE evaluates its subquery only then), every
  // status the run's tasks ended in. `known`: the answer of a statement of this transaction after its last change.
  const [row] = known ? [known] : await queryRows<Openness>(tx, openness(run.id));
  if (!row || row.open) return;
  const status = finalRunStatus(row.statuses ?? []);
  const message = status === 'FAILED' ? await firstFailures(tc, run.id) : null;
  // Nothing below reads the run's row back: the statements after it follow it without waiting.
  sentBehind(tc, runEnded(tx, { runId: run.id, status, at: step.at.toISOString(), message, startedAt: (run.startedAt ?? step.at).toISOString() }));
  step.feed.push({ kind: 'run-status', runId: run.id, status, message, at: step.at.toISOString() });
  sendEndEffects(tc, run, status, message);
  run.status = status;
  await notifyParent(tc, run, status, message);
}

/**
 * A top-level run's success, once its last open task ended, sent without waiting for anything (`ended`: what its tasks
 * ended in): the run's update, guarded in SQL (it ends only a run still open with no task open or failed), and behind
 * it its webhooks, its signal and its run-status event, each written only if the run's row shows that end. So the
 * feed's append and the COMMIT follow in the same round trip. False (nothing sent) for a run that fails (its message
 * is read from its tasks) or is nested (its parent's node is settled here too): finishIfDone ends those.
 */
function endBehind(tc: TxContext, run: Run, ended: TaskStatus[]): boolean {
  const { step } = tc;
  if (finalRunStatus(ended) !== 'SUCCEEDED' || run.parentTaskId) return false;
  const at = step.at.toISOString();
  // Sent as the run's RUNNING just before it (writeBehind, prepared), so it reaches the connection after that, not before.
  writeBehind(tc, runSucceededIfDone(run.id, at, (run.startedAt ?? step.at).toISOString()), undefined, true);
  const event = { kind: 'run-status', runId: run.id, status: 'SUCCEEDED', message: null, at } as const;
  step.feed.push(event);
  step.ifEnded.add(event);
  sendEndEffects(tc, run, 'SUCCEEDED', null);
  run.status = 'SUCCEEDED';
  return true;
}

/** A run's end as the webhooks and the triggers see it. */
function sendEndEffects({ ctx, tx, step }: TxContext, run: Run, status: 'SUCCEEDED' | 'FAILED', message: string | null): void {
  ctx.runEdges.ended(run.id);
  // The webhooks' and the triggers' writes (each one statement with its lookup) are independent of the rest of the
  // transaction: sent together and awaited only before the commit, like writeBehind's writes, so the feed's append and
  // the COMMIT follow at once.
  const signal = status === 'SUCCEEDED' ? runSucceeded(tx, run, step.at) : runFailed(tx, run, step.at, 'TASK_FAILED', message);
  const ended = Promise.all([emitRunEnded(tx, run, status, message, step.at), signal]).then(([hooked, signalled]) => {
    if (hooked || signalled) step.outbox = true; // kicks the webhook worker and the trigger dispatcher after commit
  });
  ended.catch(() => undefined); // handled: transact awaits it
  step.writes.push(ended);
}

/**
 * endBehind's update: the run succeeds only if it is still open, none of its tasks is open and none failed (the
 * statuses a run succeeds with: rules.ts finalRunStatus). One text, every value a parameter.
 */
const runSucceededIfDone = (runId: string, at: string, startedAt: string) =>
  sql`update runs set status = 'SUCCEEDED', finished_at = ${at}::timestamptz, message = null, started_at = ${startedAt}::timestamptz
    where id = ${runId}::uuid and status in ('QUEUED', 'RUNNING')
      and not exists (select 1 from tasks where run_id = ${runId}::uuid and status not in ('SUCCEEDED', 'CANCELLED', 'SKIPPED'))`;

/** A run's end, built once (server/db/prepared.ts): every run sends it. */
const runEnded = sqlOnce<{ runId: string; status: string; at: string; message: string | null; startedAt: string }>()(
  () => sql`update runs set status = ${sql.placeholder('status')}::text, finished_at = ${sql.placeholder('at')}::timestamptz,
    message = ${sql.placeholder('message')}::text, started_at = ${sql.placeholder('startedAt')}::timestamptz where id = ${sql.placeholder('runId')}::uuid`,
);

/** A failed run's message, from its first few failed tasks' node names and statuses (never their messages). */
async function firstFailures({ tx }: TxContext, runId: string): Promise<string> {
  const failed = await tx
    .select({ node: tasks.node, status: tasks.status })
    .from(tasks)
    .where(and(eq(tasks.runId, runId), inArray(tasks.status, ['FAILED', 'TIMED_OUT'])))
    .limit(5);
  return failureSummary(failed);
}

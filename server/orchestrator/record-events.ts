// Recording what executors report: each event kept once (task, attempt, sequence number), heartbeats and progress
// written in bulk, then starts and results applied per run under its lock; zombie attempts are told to stop.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../../plugins/protocol';
import { bulkInsert } from '../db/bulk';
import { moduleVersions } from '../db/tables/modules';
import { runs, type Task, tasks } from '../db/tables/runs';
import { taskEvents } from '../db/tables/task-events';
import type { FeedEvent, FeedEventBody } from '../events/feed';
import { recordDatasetWrites } from '../governance/policy';
import { stopAttempts } from './cancel';
import { completeMaps } from './composite';
import { ACTIVE, lockRun, type OrchestratorContext, type TxContext, taskStatusEvent, transact } from './context';
import { isTerminal } from './rules';
import { applyOutcome, settle } from './settle';

/** Records a batch of executor events; safe to call again with events already recorded. */
export async function recordEvents(ctx: OrchestratorContext, events: ExecutorEvent[]): Promise<void> {
  const { db, feed, cache } = ctx;
  if (!events.length) return;
  const taskIds = [...new Set(events.map((e) => e.taskId))];
  const known = new Map(
    (
      await db
        .select({ id: tasks.id, node: tasks.node, runId: tasks.runId, status: tasks.status, attempt: tasks.attempt })
        .from(tasks)
        .where(inArray(tasks.id, taskIds))
    ).map((t) => [t.id, t]),
  );
  // Heartbeats only refresh a timestamp; everything else is kept, once, as a task event.
  const kept = events.filter((e) => e.kind !== 'heartbeat' && known.has(e.taskId));
  const fresh: ExecutorEvent[] = [];
  let feedOut: FeedEvent[] = [];
  // The live events of what is new are stored in the same transaction, so they exist exactly when the events do.
  if (kept.length)
    feedOut = await db.transaction(async (tx) => {
      const inserted = await bulkInsert(
        tx,
        taskEvents,
        kept.map((e) => {
          const { taskId, runId, attempt, seq, kind, at, host, ...payload } = e;
          return { taskId, runId, attempt, seq, kind, at: new Date(at), payload: { host, ...payload } };
        }),
        { onConflictDoNothing: true, returning: sql`task_id, attempt, seq` },
      );
      const isNew = new Set(inserted.map((r) => `${r.task_id}:${r.attempt}:${Number(r.seq)}`));
      for (const e of kept) if (isNew.has(`${e.taskId}:${e.attempt}:${e.seq}`)) fresh.push(e);
      return feed.append(tx, liveEventsOf(fresh, known));
    });

  const alive = [...new Set(events.filter((e) => e.kind !== 'result' && known.get(e.taskId)?.attempt === e.attempt).map((e) => e.taskId))];
  if (alive.length) {
    await db
      .update(tasks)
      .set({ heartbeatAt: ctx.now() })
      .where(and(inArray(tasks.id, alive), inArray(tasks.status, ACTIVE)));
    await cache?.renew(db, alive, ctx.now());
  }

  const byRun = new Map<string, ExecutorEvent[]>();
  // An attempt that reports while its task was cancelled or has moved on to a later attempt is a zombie
  // (its message was already on the bus, or its host was presumed lost): stop it.
  const zombies = new Map<string, { taskId: string; attempt: number }>();
  for (const e of events) {
    const task = known.get(e.taskId);
    if (!task || e.kind === 'result') continue;
    if ((task.status === 'CANCELLED' && e.attempt === task.attempt) || e.attempt < task.attempt)
      zombies.set(`${e.taskId}:${e.attempt}`, { taskId: e.taskId, attempt: e.attempt });
  }
  // Transitions are applied for every start and result, not only fresh ones: a replica killed between
  // recording an event and applying it leaves the event recorded, and its redelivery must still move the task.
  // Applying is idempotent (the task's state and attempt decide), so a repeat changes nothing.
  for (const e of kept) {
    if (e.kind !== 'started' && e.kind !== 'result') continue;
    if (!byRun.has(e.runId)) byRun.set(e.runId, []);
    byRun.get(e.runId)!.push(e);
  }
  const progress = latestPerTask(fresh.filter((e): e is Extract<ExecutorEvent, { kind: 'progress' }> => e.kind === 'progress'));
  if (progress.length) {
    await db.execute(sql`
      update tasks as t set progress = v.fraction::real, progress_message = v.message
      from (values ${sql.join(
        progress.map((p) => sql`(${p.taskId}, ${p.attempt}, ${p.fraction}, ${p.message})`),
        sql`, `,
      )}) as v(id, attempt, fraction, message)
      where t.id = v.id::uuid and t.attempt = v.attempt::int`);
  }
  feed.publish(feedOut);

  for (const [runId, runEvents] of byRun) await transact(ctx, (tc) => applyTransitions(tc, runId, runEvents));
  if (zombies.size) await transact(ctx, (tc) => stopAttempts(tc, [...zombies.values()], 'superseded: the task was cancelled or moved to a later attempt'));
}

/** The live events of newly recorded progress, logs and metrics. */
function liveEventsOf(fresh: ExecutorEvent[], known: Map<string, { node: string }>): FeedEventBody[] {
  const out: FeedEventBody[] = [];
  for (const e of fresh) {
    const node = known.get(e.taskId)!.node;
    if (e.kind === 'progress') out.push({ kind: 'task-progress', runId: e.runId, taskId: e.taskId, node, fraction: e.fraction, message: e.message, at: e.at });
    else if (e.kind === 'log') out.push({ kind: 'task-log', runId: e.runId, taskId: e.taskId, node, stream: e.stream, lines: e.lines, at: e.at });
    else if (e.kind === 'metric') out.push({ kind: 'task-metric', runId: e.runId, taskId: e.taskId, node, metrics: e.metrics, step: e.step, at: e.at });
  }
  return out;
}

/** Applies `started` and `result` events of one run under its row lock, so joins see their upstreams consistently. */
async function applyTransitions(tc: TxContext, runId: string, events: ExecutorEvent[]): Promise<void> {
  const { ctx, tx, step } = tc;
  const run = await lockRun(tx, runId);
  if (!run) return;
  const rows = new Map(
    (
      await tx
        .select()
        .from(tasks)
        .where(inArray(tasks.id, [...new Set(events.map((e) => e.taskId))]))
    ).map((t) => [t.id, t]),
  );
  const finished: string[] = [];
  let started = false;
  // Per task, the last report of its current attempt decides; a start and a result in one batch is one update.
  const latest = new Map<string, { started?: Extract<ExecutorEvent, { kind: 'started' }>; result?: Extract<ExecutorEvent, { kind: 'result' }> }>();
  for (const e of events) {
    const task = rows.get(e.taskId);
    // Only the current attempt moves a task; reports from an older attempt or after the end are history.
    if (!task || task.attempt !== e.attempt || isTerminal(task.status) || task.status === 'RETRYING') continue;
    const entry = latest.get(task.id) ?? {};
    if (e.kind === 'started' && !entry.started) entry.started = e;
    if (e.kind === 'result' && !entry.result) entry.result = e;
    latest.set(task.id, entry);
  }
  const startedOnly: { task: Task; event: Extract<ExecutorEvent, { kind: 'started' }> }[] = [];
  const succeeded: { task: Task; event: Extract<ExecutorEvent, { kind: 'result' }> }[] = [];
  for (const [taskId, { started: s, result: r }] of latest) {
    const task = rows.get(taskId)!;
    started = true;
    if (r) {
      if (r.outcome.state === 'SUCCEEDED') succeeded.push({ task, event: r });
      else {
        const updated = await applyOutcome(tc, task, r.outcome, { at: new Date(r.at), durationMs: r.durationMs, host: r.host });
        rows.set(task.id, updated);
        if (isTerminal(updated.status)) finished.push(updated.node);
      }
    } else if (s && task.status === 'QUEUED') startedOnly.push({ task, event: s });
  }
  if (startedOnly.length) {
    await tx.execute(sql`
      update tasks as t set status = 'RUNNING', started_at = v.at::timestamptz, host = v.host, external_handle = v.handle::jsonb, heartbeat_at = ${step.at.toISOString()}::timestamptz
      from (values ${sql.join(
        startedOnly.map(({ task, event }) => sql`(${task.id}, ${event.at}, ${event.host}, ${JSON.stringify(event.handle ?? null)})`),
        sql`, `,
      )}) as v(id, at, host, handle)
      where t.id = v.id::uuid and t.status = 'QUEUED'`);
    for (const { task } of startedOnly) {
      rows.set(task.id, { ...task, status: 'RUNNING' });
      taskStatusEvent(step, task, 'RUNNING');
    }
  }
  if (succeeded.length) {
    await tx.execute(sql`
      update tasks as t set status = 'SUCCEEDED', outputs = v.outputs::jsonb, progress = 1, reason = v.reason, message = v.message,
        exit_code = v.exit_code::int, finished_at = v.finished::timestamptz, retry_at = null, host = v.host,
        started_at = coalesce(t.started_at, v.started::timestamptz)
      from (values ${sql.join(
        succeeded.map(({ task, event }) => {
          const o = event.outcome;
          const startedAt = new Date(new Date(event.at).getTime() - event.durationMs).toISOString();
          return sql`(${task.id}, ${JSON.stringify(o.outputs ?? null)}, ${o.reason ?? null}, ${o.message ?? null}, ${o.exitCode ?? null}, ${event.at}, ${event.host}, ${startedAt})`;
        }),
        sql`, `,
      )}) as v(id, outputs, reason, message, exit_code, finished, host, started)
      where t.id = v.id::uuid`);
    await ctx.cache?.record(
      tx,
      succeeded
        .filter(({ task }) => task.cacheKey)
        .map(({ task, event }) => ({ taskId: task.id, outputs: event.outcome.outputs ?? {}, durationMs: event.durationMs })),
      step.at,
    );
    const writes = succeeded.filter(({ task }) => task.dataAccess && Object.keys(task.dataAccess.outputs).length);
    if (writes.length) {
      const versions = new Map(
        (
          await tx
            .select()
            .from(moduleVersions)
            .where(
              inArray(
                moduleVersions.id,
                writes.map(({ task }) => task.moduleVersionId!),
              ),
            )
        ).map((v) => [v.id, v.manifest]),
      );
      await recordDatasetWrites(
        tx,
        writes.map(({ task, event }) => ({
          taskId: task.id,
          domain: run.domain,
          createdBy: run.createdBy,
          manifest: versions.get(task.moduleVersionId!)!,
          access: task.dataAccess!,
          outputs: event.outcome.outputs ?? {},
        })),
        ctx.catalogCeiling,
      );
    }
    for (const { task, event } of succeeded) {
      // A start and its result in one batch still show the task running, so every watcher sees the same story.
      if (task.status === 'QUEUED') taskStatusEvent(step, task, 'RUNNING');
      rows.set(task.id, { ...task, status: 'SUCCEEDED' });
      finished.push(task.node);
      taskStatusEvent(step, task, 'SUCCEEDED', event.outcome.reason ?? null, event.outcome.message ?? null);
    }
  }
  const mapParents = [...rows.values()].filter((t) => t.mapParent && isTerminal(t.status) && finished.includes(t.node)).map((t) => t.mapParent!);
  if (mapParents.length) finished.push(...(await completeMaps(tc, run, mapParents)));
  if (started && run.status === 'QUEUED') {
    await tx.update(runs).set({ status: 'RUNNING', startedAt: step.at }).where(eq(runs.id, runId));
    run.status = 'RUNNING';
    step.feed.push({ kind: 'run-status', runId, status: 'RUNNING', message: null, at: step.at.toISOString() });
  }
  await settle(tc, run, finished);
}

/** Of several progress reports per task, the one with the highest sequence number. */
export function latestPerTask<T extends { taskId: string; seq: number }>(events: T[]): T[] {
  const latest = new Map<string, T>();
  for (const e of events) {
    const prev = latest.get(e.taskId);
    if (!prev || prev.seq < e.seq) latest.set(e.taskId, e);
  }
  return [...latest.values()];
}

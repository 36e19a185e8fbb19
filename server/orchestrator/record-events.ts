// Recording what executors report: each event kept once (task, attempt, sequence number), heartbeats and progress
// written in bulk, starts and results stored and applied together per run under its lock; stale reports (another
// execution of an attempt that already has its result) refused; zombie attempts told to stop.
import { and, eq, inArray, sql } from 'drizzle-orm';
import { encodeMetricValue } from '../../plugins/metric-values';
import type { ExecutorEvent } from '../../plugins/protocol';
import { bulkInsert } from '../db/bulk';
import { queryRows } from '../db/client';
import { moduleVersions } from '../db/tables/modules';
import { runs, type Task, tasks } from '../db/tables/runs';
import { taskEvents } from '../db/tables/task-events';
import type { FeedEvent, FeedEventBody } from '../events/feed';
import { recordDatasetWrites } from '../governance/policy';
import { pointsOf } from '../tracking/metric-events';
import { type MetricPointInput, storeMetricPoints } from '../tracking/metrics';
import { isCurrent, reportVerdict, resultVerdict, seqBlock } from './attempts';
import { stopAttempts } from './cancel';
import { completeMaps } from './composite';
import { ACTIVE, lockRun, type OrchestratorContext, type TxContext, taskStatusEvent, transact } from './context';
import { crashPoint } from './crash-hook';
import { isTerminal } from './rules';
import { applyOutcome, settle } from './settle';

/** Records a batch of executor events; safe to call again with events already recorded. Returns those accepted. */
export async function recordEvents(ctx: OrchestratorContext, events: ExecutorEvent[]): Promise<ExecutorEvent[]> {
  const { db, feed, cache } = ctx;
  if (!events.length) return [];
  const taskIds = [...new Set(events.map((e) => e.taskId))];
  const known = new Map(
    (
      await db
        .select({ id: tasks.id, node: tasks.node, runId: tasks.runId, status: tasks.status, attempt: tasks.attempt })
        .from(tasks)
        .where(inArray(tasks.id, taskIds))
    ).map((t) => [t.id, t]),
  );
  // Heartbeats only refresh a timestamp; everything else is kept, once, as a task event, unless it is a stale
  // report: another execution of an attempt that already has its result (a redelivered message run again).
  const reports = events.filter((e) => e.kind !== 'heartbeat' && known.has(e.taskId));
  const resultBlocks = await resultBlocksOf(
    ctx,
    reports.filter((e) => !isCurrent(known.get(e.taskId)!, e.attempt)),
  );
  const refused = new Set<ExecutorEvent>();
  for (const e of reports) if (reportVerdict(known.get(e.taskId)!, e, resultBlocks.get(`${e.taskId}:${e.attempt}`)) === 'refuse') refused.add(e);
  const kept = reports.filter((e) => !refused.has(e));
  // Logs, progress and metrics are stored here in bulk; starts and results with the transition they cause.
  const notes = kept.filter((e) => e.kind !== 'started' && e.kind !== 'result');
  const fresh: ExecutorEvent[] = [];
  let feedOut: FeedEvent[] = [];
  // The live events of what is new are stored in the same transaction, so they exist exactly when the events do.
  if (notes.length)
    feedOut = await db.transaction(async (tx) => {
      const inserted = await bulkInsert(tx, taskEvents, notes.map(eventRow), { onConflictDoNothing: true, returning: sql`task_id, attempt, seq` });
      const isNew = new Set(inserted.map((r) => `${r.task_id}:${r.attempt}:${Number(r.seq)}`));
      for (const e of notes) if (isNew.has(`${e.taskId}:${e.attempt}:${e.seq}`)) fresh.push(e);
      // Metric points are stored with the event that carried them: a redelivered event is not new, so adds none.
      // Decoded once: stored here and sent live below.
      const decoded = new Map(fresh.filter((e) => e.kind === 'metric').map((e) => [e, pointsOf(e)]));
      await storeMetricPoints(tx, [...decoded.values()].flat());
      return feed.append(tx, liveEventsOf(fresh, known, decoded));
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
    if ((task.status === 'CANCELLED' && e.attempt === task.attempt) || e.attempt < task.attempt || refused.has(e))
      zombies.set(`${e.taskId}:${e.attempt}`, { taskId: e.taskId, attempt: e.attempt });
  }
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
      where t.id = v.id::uuid and t.attempt = v.attempt::int and t.status in ('QUEUED', 'RUNNING')`);
  }
  feed.publish(feedOut);

  for (const [runId, runEvents] of byRun) await transact(ctx, (tc) => applyTransitions(tc, runId, runEvents));
  if (zombies.size)
    await transact(ctx, (tc) => stopAttempts(tc, [...zombies.values()], 'superseded: the task was cancelled, moved to a later attempt or already finished'));
  return events.filter((e) => !refused.has(e));
}

const eventRow = (e: ExecutorEvent) => {
  const { taskId, runId, attempt, seq, kind, at, host, ...payload } = e;
  // A metric event's points live in metric_points; the event keeps where they are.
  const kept = e.kind === 'metric' ? { firstPoint: e.firstPoint, count: e.points?.length ?? 0 } : payload;
  return { taskId, runId, attempt, seq, kind, at: new Date(at), payload: { host, ...kept } };
};

/** For attempts that have ended, the sequence block of the execution whose result ended them (if one did). */
async function resultBlocksOf(ctx: OrchestratorContext, reports: ExecutorEvent[]): Promise<Map<string, number>> {
  const blocks = new Map<string, number>();
  const pairs = [...new Map(reports.map((e) => [`${e.taskId}:${e.attempt}`, e])).values()];
  if (!pairs.length) return blocks;
  const rows = await queryRows<{ task_id: string; attempt: number; seq: string | number }>(
    ctx.db,
    sql`select e.task_id, e.attempt, e.seq from task_events e
        join (values ${sql.join(
          pairs.map((e) => sql`(${e.taskId}::uuid, ${e.attempt}::int)`),
          sql`, `,
        )}) as v(task_id, attempt) on e.task_id = v.task_id and e.attempt = v.attempt
        where e.kind = 'result'`,
  );
  for (const r of rows) blocks.set(`${r.task_id}:${r.attempt}`, seqBlock(Number(r.seq)));
  return blocks;
}

/** The live events of newly recorded progress, logs and metrics. */
function liveEventsOf(fresh: ExecutorEvent[], known: Map<string, { node: string }>, decoded: Map<ExecutorEvent, MetricPointInput[]>): FeedEventBody[] {
  const out: FeedEventBody[] = [];
  for (const e of fresh) {
    const node = known.get(e.taskId)!.node;
    if (e.kind === 'progress') out.push({ kind: 'task-progress', runId: e.runId, taskId: e.taskId, node, fraction: e.fraction, message: e.message, at: e.at });
    else if (e.kind === 'log') out.push({ kind: 'task-log', runId: e.runId, taskId: e.taskId, node, stream: e.stream, lines: e.lines, at: e.at });
    else if (e.kind === 'metric') {
      const points = (decoded.get(e) ?? pointsOf(e)).map((p) => ({ name: p.name, value: encodeMetricValue(p.value), step: p.step, seq: p.seq }));
      if (!points.length) continue;
      const metrics = Object.fromEntries(points.map((p) => [p.name, p.value]));
      out.push({ kind: 'task-metric', runId: e.runId, taskId: e.taskId, node, attempt: e.attempt, points, metrics, step: points.at(-1)!.step, at: e.at });
    }
  }
  return out;
}

/** Applies `started` and `result` events of one run under its row lock, so joins see their upstreams consistently. */

/**
 * Stores and applies `started` and `result` events of one run under its row lock, in one transaction: a crash
 * leaves neither, and the redelivered events do both. Only newly stored events move a task, so a repeat changes
 * nothing; a second success for a task is refused by the database (task_events_one_success_key).
 */
async function applyTransitions(tc: TxContext, runId: string, events: ExecutorEvent[]): Promise<void> {
  const { ctx, tx, step } = tc;
  const run = await lockRun(tx, runId);
  if (!run) return;
  const inserted = await bulkInsert(tx, taskEvents, events.map(eventRow), { onConflictDoNothing: true, returning: sql`task_id, attempt, seq` });
  const isNew = new Set(inserted.map((r) => `${r.task_id}:${r.attempt}:${Number(r.seq)}`));
  const fresh = events.filter((e) => isNew.has(`${e.taskId}:${e.attempt}:${e.seq}`));
  if (!fresh.length) return;
  if (fresh.some((e) => e.kind === 'result')) crashPoint('result-stored');
  const rows = new Map(
    (
      await tx
        .select()
        .from(tasks)
        .where(inArray(tasks.id, [...new Set(fresh.map((e) => e.taskId))]))
    ).map((t) => [t.id, t]),
  );
  const finished: string[] = [];
  let started = false;
  type Result = Extract<ExecutorEvent, { kind: 'result' }>;
  // Per task, the first report of each kind decides; a start and a result in one batch is one update.
  const latest = new Map<string, { started?: Extract<ExecutorEvent, { kind: 'started' }>; result?: Result; adopt?: Result }>();
  for (const e of fresh) {
    const task = rows.get(e.taskId);
    if (!task) continue;
    const entry = latest.get(task.id) ?? {};
    // Only the current attempt moves a task; reports from an older attempt or after the end are history, except
    // a success of an attempt given up on too early, which ends the task rather than letting it run again.
    if (e.kind === 'started' && isCurrent(task, e.attempt)) entry.started ??= e;
    if (e.kind === 'result') {
      const verdict = resultVerdict(task, e);
      if (verdict === 'apply') entry.result ??= e;
      if (verdict === 'adopt') entry.adopt ??= e;
    }
    latest.set(task.id, entry);
  }
  const startedOnly: { task: Task; event: Extract<ExecutorEvent, { kind: 'started' }> }[] = [];
  const succeeded: { task: Task; event: Result; adopted: boolean }[] = [];
  const superseded: { taskId: string; attempt: number }[] = [];
  for (const [taskId, { started: s, result: r, adopt: a }] of latest) {
    const task = rows.get(taskId)!;
    if (a) {
      succeeded.push({ task, event: a, adopted: true });
      // The attempt dispatched in its place is not needed any more.
      if (ACTIVE.includes(task.status) && task.attempt !== a.attempt) superseded.push({ taskId, attempt: task.attempt });
      continue;
    }
    if (r || s) started = true;
    if (r) {
      if (r.outcome.state === 'SUCCEEDED') succeeded.push({ task, event: r, adopted: false });
      else {
        const updated = await applyOutcome(tc, task, r.outcome, { at: new Date(r.at), durationMs: r.durationMs, host: r.host });
        rows.set(task.id, updated);
        if (isTerminal(updated.status)) finished.push(updated.node);
      }
    } else if (s && task.status === 'QUEUED') startedOnly.push({ task, event: s });
  }
  if (superseded.length) await stopAttempts(tc, superseded, 'superseded: an earlier attempt of the task succeeded');
  await recordTimings(
    tc,
    [...latest.values()].map((l) => l.adopt ?? l.result).filter((r): r is Result => !!r),
  );
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
    for (const { task, event, adopted } of succeeded) {
      // A start and its result in one batch still show the task running, so every watcher sees the same story.
      if (task.status === 'QUEUED' && !adopted) taskStatusEvent(step, task, 'RUNNING');
      rows.set(task.id, { ...task, status: 'SUCCEEDED' });
      finished.push(task.node);
      taskStatusEvent(step, task, 'SUCCEEDED', event.outcome.reason ?? null, event.outcome.message ?? null);
      if (event.outcome.registrations?.length)
        step.registrations.push({ taskId: task.id, runId, attempt: event.attempt, requests: event.outcome.registrations });
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

/** The applied results' time split: provisioning (when the executor reports it), the rest execution. */
async function recordTimings({ tx }: TxContext, results: Extract<ExecutorEvent, { kind: 'result' }>[]): Promise<void> {
  if (!results.length) return;
  await tx.execute(sql`
    update tasks as t set provisioning_ms = v.provisioning::int, execution_ms = v.execution::int
    from (values ${sql.join(
      results.map((e) => {
        const provisioning = typeof e.outcome.provisioningMs === 'number' ? Math.max(0, Math.round(e.outcome.provisioningMs)) : null;
        return sql`(${e.taskId}, ${provisioning}, ${Math.max(0, Math.round(e.durationMs - (provisioning ?? 0)))})`;
      }),
      sql`, `,
    )}) as v(id, provisioning, execution)
    where t.id = v.id::uuid`);
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

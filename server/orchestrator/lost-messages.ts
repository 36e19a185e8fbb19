// The sweep's passes for QUEUED tasks whose message no host can ever pull: gone with the bus's store, or no longer on
// a bus that outlived the database's history (a database restored from a backup while NATS ran on). Each such attempt
// ends as the platform's failure and the task is retried, dispatched anew; the lost attempt can never run after (a
// claim of it is refused, claims.ts; a host that claimed it already is told to stop).
import { and, eq, lt, sql } from 'drizzle-orm';
import { taskMessageId } from '../../plugins/protocol';
import { queryRows } from '../db/client';
import { tasks } from '../db/tables/runs';
import { confirmStuck, type Suspect } from './attempts';
import type { OrchestratorContext } from './context';
import { endAttempts } from './end-attempts';
import { lostMessageOutcome, missingMessageOutcome } from './outcomes';

const TICK_BATCH = 500;

/** What these passes remember between sweeps. */
export interface LostMessageState {
  /** Since when the bus held task messages (Bus.taskStoreSince) when every task queued before then was dispatched again. */
  taskStoreSince?: number;
  /** When findMissingMessages last asked the bus (ms). */
  messagesAskedAt?: number;
  /** By `taskId:attempt`: queued tasks whose message the bus did not hold, each confirmed once the recorder caught up. */
  missing?: Map<string, Suspect & { runId: string; id: string; attempt: number }>;
}

/**
 * QUEUED tasks queued before the bus's store of task messages began (nats-server came back without its JetStream
 * store). Looked for once per store: when the bus first answers, and whenever its store has begun again.
 */
export async function redispatchLostMessages(ctx: OrchestratorContext, state: LostMessageState): Promise<void> {
  let since: Date;
  try {
    const answer = await ctx.taskStoreSince?.();
    if (!answer || answer.getTime() === state.taskStoreSince) return;
    since = answer;
  } catch {
    return; // the bus cannot say now: asked again next pass
  }
  const lost = await ctx.db
    .select({ id: tasks.id, runId: tasks.runId, attempt: tasks.attempt })
    .from(tasks)
    .where(and(eq(tasks.status, 'QUEUED'), eq(tasks.kind, 'module'), lt(tasks.queuedAt, since)))
    .limit(TICK_BATCH);
  // A host may hold the message still (pulled before the store went) and have claimed it: it is told to stop, and an
  // outbox row of it not yet published (the relay's) is withdrawn.
  await endAttempts(ctx, 'QUEUED', lost, () => ({
    reason: 'its message was lost with the bus store',
    outcome: lostMessageOutcome(),
    durationMs: 0,
    host: null,
  }));
  // A full batch leaves more for the next pass.
  if (lost.length < TICK_BATCH) state.taskStoreSince = since.getTime();
}

/**
 * QUEUED tasks whose message the bus holds no more, though its store is the same: the database went back in its
 * history (restored from a backup) while the bus ran on, and a host took and acked the message after the backup (the
 * claim it made is in the history that was lost), or the message's id was taken in that history and the bus dropped
 * it as a repeat. Nothing would ever dispatch such a task again.
 *
 * Why "not held" means lost: a message is acked only after its attempt's claim committed (the task is RUNNING then)
 * or its result was published (a host that runs unclaimed, `atelier module dev`). So a task that is QUEUED in one
 * snapshot with no outbox row (its message was published before it), whose message the bus does not hold after that
 * snapshot, and that is still QUEUED at that attempt under its run's lock, with every event published before the bus
 * was asked recorded, has no message anywhere. A message merely slow is in the outbox or on the bus, never neither.
 *
 * Asking reads the bus's task store (oldest first, up to the wanted ones), so it is asked at most once per heartbeat
 * timeout, and only about tasks queued longer than that.
 */
export async function findMissingMessages(ctx: OrchestratorContext, state: LostMessageState, at: Date): Promise<void> {
  if (!ctx.heldTaskMessages) return;
  if (state.missing?.size) await confirmMissing(ctx, state);
  if (state.messagesAskedAt !== undefined && at.getTime() - state.messagesAskedAt < ctx.heartbeatTimeoutMs) return;
  state.messagesAskedAt = at.getTime();
  const queuedBefore = new Date(at.getTime() - ctx.heartbeatTimeoutMs).toISOString();
  // One statement, so the tasks and the outbox are one snapshot. A task row's payload is one message or a batch.
  const queued = await queryRows<{ id: string; run_id: string; attempt: number }>(
    ctx.db,
    sql`with unpublished as (
          select coalesce(m.value->>'taskId', o.payload->>'taskId') as task_id
          from outbox o left join lateral json_array_elements(case when json_typeof(o.payload->'tasks') = 'array' then o.payload->'tasks' end) m(value) on true
          where o.kind = 'task')
        select t.id, t.run_id, t.attempt from tasks t
        where t.status = 'QUEUED' and t.kind = 'module' and t.queued_at < ${queuedBefore}::timestamptz
          and not exists (select 1 from unpublished u where u.task_id = t.id::text)
        order by t.queued_at limit ${TICK_BATCH}`,
  );
  if (!queued.length) return;
  const wanted = new Set(queued.map((t) => taskMessageId(t.id, t.attempt)));
  let held: Set<string>;
  let backlog: { published: number; recorded: number } | undefined;
  try {
    held = await ctx.heldTaskMessages(wanted);
    // Read after the bus was asked: an unclaimed attempt's result, published before its ack, is counted here.
    backlog = await ctx.eventBacklog?.();
  } catch {
    state.messagesAskedAt = undefined; // the bus cannot say now: asked again next pass
    return;
  }
  const missing = (state.missing ??= new Map());
  for (const t of queued) {
    const key = taskMessageId(t.id, t.attempt);
    if (held.has(key) || missing.has(key)) continue;
    missing.set(key, { ...confirmStuck(undefined, { heartbeatAt: null }, backlog).suspect, id: t.id, runId: t.run_id, attempt: t.attempt });
  }
  await confirmMissing(ctx, state);
}

/** Ends the missing attempts once every event published before the bus was asked is recorded (attempts.ts confirmStuck). */
async function confirmMissing(ctx: OrchestratorContext, state: LostMessageState): Promise<void> {
  const missing = state.missing!;
  let backlog: { published: number; recorded: number } | undefined;
  try {
    backlog = await ctx.eventBacklog?.();
  } catch {
    return; // the bus cannot say what is still on it: asked again next pass
  }
  const confirmed = [...missing].filter(([, suspect]) => confirmStuck(suspect, { heartbeatAt: null }, backlog).confirmed);
  for (const [key] of confirmed) missing.delete(key);
  // Each is ended only if still QUEUED at that attempt (endAttempts looks under its run's lock).
  await endAttempts(
    ctx,
    'QUEUED',
    confirmed.map(([, s]) => s),
    () => ({ reason: 'its message is no longer on the bus', outcome: missingMessageOutcome(), durationMs: 0, host: null }),
  );
}

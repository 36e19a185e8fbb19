// Dispatch: a run's READY tasks pass the gates (wired inputs, data access, cache), the concurrency limits, and are
// written to the outbox as bus messages; control-plane nodes (nested workflows, maps) are started here instead.
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { permanentFailure } from '../../plugins/outcomes';
import type { TaskMessage } from '../../plugins/protocol';
import { arrayOf } from '../db/arrays';
import { queryRows } from '../db/client';
import type { OutboxRow } from '../db/tables/outbox';
import { type Run, type Task, tasks } from '../db/tables/runs';
import { checkParameters } from '../modules/manifest';
import { substituteOutputs } from '../workflows/spec';
import { expandMap, startChildRun } from './composite';
import { ACTIVE, type TxContext, taskStatusEvent, writeBehind } from './context';
import { fromCache, governData } from './gates';
import { upstreamOutputs } from './known-facts';
import { limitedPools, poolQueueOrder, takePoolSlots, takeRunSlots } from './limits';
import { isTerminal } from './rules';
import { applyOutcome, settle } from './settle';
import { poolMessages, taskMessage } from './task-message';

/**
 * Hands READY tasks of a run to the bus, as far as the run's and the pools' concurrency limits allow. Returns whether
 * it queued any (the run is then still open). `readyNow`: the run's READY tasks, when the caller has just read them.
 */
export async function dispatch(tc: TxContext, run: Run, readyNow?: Task[]): Promise<boolean> {
  const { tx } = tc;
  if (!run.admitted || (run.status !== 'QUEUED' && run.status !== 'RUNNING')) return false;
  // `readyNow`: the run's READY tasks in this order, as the statement that settled the last nodes returned them.
  const all =
    readyNow ??
    (await tx
      .select()
      .from(tasks)
      .where(and(eq(tasks.runId, run.id), eq(tasks.status, 'READY')))
      .orderBy(asc(tasks.queuedAt), asc(tasks.node)));
  if (!all.length) return false;
  // Nested workflows and maps are the control plane's own work: they take no executor slot.
  const ended: string[] = [];
  let expanded = false;
  for (const task of all) {
    if (task.kind === 'workflow') {
      if (await startChildRun(tc, run, task)) ended.push(task.node);
    } else if (task.kind === 'map') {
      expanded = true;
      if (await expandMap(tc, run, task)) ended.push(task.node);
    }
  }
  let ready = expanded
    ? await tx
        .select()
        .from(tasks)
        .where(and(eq(tasks.runId, run.id), eq(tasks.status, 'READY'), eq(tasks.kind, 'module')))
        .orderBy(asc(tasks.queuedAt), asc(tasks.node))
    : all.filter((t) => t.kind === 'module');
  ready = await wireOutputs(tc, run, ready, ended);
  ready = await governData(tc, run, ready, ended);
  ready = await fromCache(tc, run, ready, ended);
  const queued = await enqueue(tc, run, await withinLimits(tc, run, ready), ended);
  // Nodes that ended here are settled only now: settling dispatches again, and must find the tasks above
  // already queued rather than queue them a second time.
  if (ended.length) await settle(tc, run, ended);
  return queued;
}

/** The part of `ready` that the run's and the pools' concurrency limits let start now. */
async function withinLimits({ ctx, tx }: TxContext, run: Run, ready: Task[]): Promise<Task[]> {
  if (!ready.length) return ready;
  if (run.maxParallelTasks) {
    const [active] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(tasks)
      .where(and(eq(tasks.runId, run.id), inArray(tasks.status, ACTIVE)));
    ready = takeRunSlots(ready, run.maxParallelTasks, active?.n ?? 0);
  }
  const limited = limitedPools(ready, ctx.poolLimits);
  if (!limited.length) return ready;
  const slotsLeft = new Map<string, number>();
  const ahead = new Map<string, Set<string>>();
  for (const pool of limited) {
    // Serialises dispatch to a limited pool across runs (and replicas) for the rest of this transaction.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`atelier-pool:${pool}`}))`);
    const [active] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(tasks)
      .where(and(eq(tasks.pool, pool), inArray(tasks.status, ACTIVE)));
    const left = ctx.poolLimits![pool]! - (active?.n ?? 0);
    slotsLeft.set(pool, left);
    ahead.set(pool, await headOfPoolQueue(tx, pool, left));
  }
  return takePoolSlots(ready, slotsLeft, ahead);
}

/**
 * The ids of the first `slots` READY tasks waiting for `pool` across all admitted runs, in priority order
 * (limits.ts poolQueueOrder). A run's task takes a free slot only when it is among them; the others' runs are
 * dispatched by the sweep, which visits runs in the same order.
 */
async function headOfPoolQueue(tx: TxContext['tx'], pool: string, slots: number): Promise<Set<string>> {
  if (slots <= 0) return new Set();
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`select t.id from tasks t join runs r on r.id = t.run_id
        where t.pool = ${pool} and t.status = 'READY' and t.kind = 'module' and r.admitted and r.status in ('QUEUED', 'RUNNING')
        order by ${poolQueueOrder} limit ${slots}`,
  );
  return new Set(rows.map((r) => r.id));
}

/**
 * Replaces "${outputs.NODE.NAME}" in task parameters with the upstream's output, now that it exists, and checks
 * the result against the module's schema. A task whose wired inputs do not fit fails here (pushed to `ended`).
 */
async function wireOutputs(tc: TxContext, run: Run, ready: Task[], ended: string[]): Promise<Task[]> {
  const { tx, step } = tc;
  const wired = ready.filter((t) => JSON.stringify(t.parameters).includes('${outputs.'));
  if (!wired.length) return ready;
  const outputs = await upstreamOutputs(tc, run, wired);
  const versions = await tc.ctx.versions.get(
    tx,
    wired.map((t) => t.moduleVersionId!),
  );
  const failed = new Set<string>();
  for (const task of wired) {
    const missing: string[] = [];
    const parameters = substituteOutputs(task.parameters, outputs, missing) as Record<string, unknown>;
    const { version } = versions.get(task.moduleVersionId!)!;
    const problems = missing.length ? [] : checkParameters(version.digest, version.manifest, parameters);
    if (missing.length || problems.length) {
      const message = missing.length
        ? `its parameters are wired to outputs that do not exist: ${missing.join(', ')}`
        : `its parameters, wired from upstream outputs, do not fit ${task.moduleRef}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`;
      const updated = await applyOutcome(tc, task, permanentFailure('inputs-invalid', message), { at: step.at, durationMs: 0, host: null });
      if (isTerminal(updated.status)) ended.push(task.node);
      failed.add(task.id);
      continue;
    }
    await tx.update(tasks).set({ parameters }).where(eq(tasks.id, task.id));
    task.parameters = parameters;
  }
  return ready.filter((t) => !failed.has(t.id));
}

/** What a task message leaves of the bus's limit to the message's headers (its id, JetStream's own). */
const HEADER_ROOM_BYTES = 4096;
const messageLimit = (tc: TxContext) => tc.ctx.maxMessageBytes() - HEADER_ROOM_BYTES;

/**
 * A task message carries its parameters, its upstreams' outputs and its models' file lists inline, so its size grows
 * with what users send; one past the bus's limit could never be published and would sit in the outbox for good
 * (retried on every relay pass, holding the rows after it back). Such a task fails here, in the dispatch's
 * transaction, saying what to do; the rest go on. Serializing each message once costs ~2 µs for a typical one.
 */
async function failOversized(tc: TxContext, ready: Task[], messages: TaskMessage[], bytes: number[], ended: string[]): Promise<Set<number>> {
  const limit = messageLimit(tc);
  const oversized = new Set<number>();
  for (let i = 0; i < messages.length; i++) {
    if (bytes[i]! <= limit) continue;
    oversized.add(i);
    const message = `its task message is ${bytes[i]} bytes, over the ${limit} the bus takes (nats-server max_payload less room for headers): parameters, upstream outputs and model file lists travel inline, so pass a large value as an artifact or a dataset and hand over its digest (or raise max_payload)`;
    const failed = await applyOutcome(tc, ready[i]!, permanentFailure('message-too-large', message), { at: tc.step.at, durationMs: 0, host: null });
    if (isTerminal(failed.status)) ended.push(ready[i]!.node);
  }
  return oversized;
}

/** Writes the bus message of each task's next attempt, with its module and its upstreams' outputs. Returns whether it queued any. */
async function enqueue(tc: TxContext, run: Pick<Run, 'id'>, all: Task[], ended: string[]): Promise<boolean> {
  const { ctx, tx, step } = tc;
  if (!all.length) return false;
  let ready = all;
  // Module versions do not change once published: read once per process (known-facts.ts), not once per edge.
  const versions = await ctx.versions.get(
    tx,
    ready.map((t) => t.moduleVersionId!),
  );
  const outputs = await upstreamOutputs(tc, run, ready);
  let messages = ready.map((task) => taskMessage(task, versions.get(task.moduleVersionId!)!.version, outputs, step.at));
  let bytes = messages.map((m) => Buffer.byteLength(JSON.stringify(m)));
  const oversized = await failOversized(tc, ready, messages, bytes, ended);
  if (oversized.size) {
    ready = ready.filter((_, i) => !oversized.has(i));
    messages = messages.filter((_, i) => !oversized.has(i));
    bytes = bytes.filter((_, i) => !oversized.has(i));
    if (!ready.length) return false;
  }
  // One outbox row per bus message: a pool's tasks in batches (protocol 3), so the direct publish and the relay's
  // fallback publish the same messages under the same ids, and the bus's dedupe drops whichever comes second.
  const batchSize = await ctx.batchSizes.forPools(
    tx,
    messages.map((m) => m.pool),
    step.at,
  );
  const rows = poolMessages(messages, bytes, messageLimit(tc), batchSize).map((m) => ({ kind: 'task' as const, ...m }));
  // Published straight after the commit when the context can (one hop less than the relay's select/publish/delete
  // pass); the rows are the fallback the relay publishes should that not happen. Nothing here needs the statement's
  // answer before the commit: it is written behind the transaction's next statements.
  queueAndWrite(
    tc,
    ready.map((t) => t.id),
    rows,
    (inserted) => {
      const ids = new Map(inserted.map((r) => [r.msg_id, Number(r.id)]));
      if (ctx.publishCommitted) for (const r of rows) step.committed.push({ id: ids.get(r.msgId)!, pool: r.pool, msgId: r.msgId, payload: r.payload });
    },
  );
  if (!ctx.publishCommitted) step.outbox = true;
  for (const t of ready) taskStatusEvent(step, { ...t, attempt: t.attempt + 1 }, 'QUEUED');
  return true;
}

/**
 * One statement for what enqueue writes: the tasks' next attempt QUEUED, their messages' outbox rows (returning their
 * ids) and, when the relay has some, the outbox rows of earlier direct publishes the bus has already taken (deleted
 * here rather than by a statement of their own: two statements less per chain edge). The tasks and the rows each
 * travel as one parameter, whatever their number.
 */
function queueAndWrite(
  tc: TxContext,
  taskIds: string[],
  rows: Omit<OutboxRow, 'id' | 'createdAt'>[],
  written: (inserted: { id: string | number; msg_id: string }[]) => void,
) {
  const { ctx, step } = tc;
  const published = ctx.publishCommitted ? ctx.takePublished?.() : undefined;
  if (published) step.deletedPublished.push(published);
  const gone = published ? sql`, gone as (delete from outbox where id = any(${arrayOf(published.ids, 'bigint')}))` : sql``;
  const json = JSON.stringify(rows.map((r) => ({ kind: r.kind, pool: r.pool, msg_id: r.msgId, payload: r.payload })));
  writeBehind<{ id: string | number; msg_id: string }>(
    tc,
    sql`with queued as (
        update tasks set status = 'QUEUED', attempt = attempt + 1, queued_at = ${step.at.toISOString()}::timestamptz, started_at = null,
          finished_at = null, retry_at = null, reason = null, message = null, exit_code = null, progress = null, progress_message = null,
          heartbeat_at = null
        where id = any(${arrayOf(taskIds, 'uuid')}))${gone}
      insert into outbox (kind, pool, msg_id, payload)
      select kind, pool, msg_id, payload from json_populate_recordset(null::outbox, ${json}::json)
      returning id, msg_id`,
    written,
  );
}

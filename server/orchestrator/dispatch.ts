// Dispatch: a run's READY tasks pass the gates (wired inputs, data access, cache), the concurrency limits, and are
// written to the outbox as bus messages; control-plane nodes (nested workflows, maps) are started here instead.
import { and, asc, eq, inArray, type SQL, sql } from 'drizzle-orm';
import { joinFlat } from '../../plugins/bus/payload-limit';
import { permanentFailure } from '../../plugins/outcomes';
import type { TaskMessage } from '../../plugins/protocol';
import { cacheable } from '../cache/key';
import { arrayOf, oneOrAny } from '../db/arrays';
import { bulkInsert, insertRows } from '../db/bulk';
import { queryRows } from '../db/client';
import { type NewTask, type Run, type Task, tasks } from '../db/tables/runs';
import { checkParameters } from '../modules/manifest';
import { substituteOutputs } from '../workflows/spec';
import { expandMap, startChildRun } from './composite';
import { decideConditions } from './conditions';
import { ACTIVE, type TxContext, taskStatusEvent, writeBehind } from './context';
import { fromCache, governData } from './gates';
import { upstreamOutputs, type VersionFacts } from './known-facts';
import { limitedPools, poolQueueOrder, takePoolSlots, takeRunSlots } from './limits';
import { noteDispatched } from './record-guesses';
import { type ReservedRow, reservingFrom } from './reservations';
import { isTerminal } from './rules';
import { applyOutcome, settle } from './settle';
import { messageTexts, outboxRowJson, type PoolMessage, poolMessages, taskMessage } from './task-message';

/**
 * New tasks not written yet, by id (a run's READY tasks from `startRun`, which `mayQueueUnwritten` chose): dispatch
 * writes the ones it queues straight as QUEUED, in enqueue's statement (one row version and one feed event less per
 * task), and the rest as READY before it returns.
 */
export type UnwrittenTasks = Map<string, NewTask & { id: string }>;

/**
 * Hands READY tasks of a run to the bus, as far as the run's and the pools' concurrency limits allow. Returns whether
 * it queued any (the run is then still open). `readyNow`: the run's READY tasks, when the caller has just read them;
 * `unwritten`: those of them that are not in the database yet.
 */
export async function dispatch(tc: TxContext, run: Run, readyNow?: Task[], unwritten?: UnwrittenTasks): Promise<boolean> {
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
  const ended: string[] = [];
  const decided = await decideConditions(tc, run, all, ended);
  // Nested workflows and maps are the control plane's own work: they take no executor slot.
  let expanded = false;
  for (const task of decided) {
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
    : decided.filter((t) => t.kind === 'module');
  ready = await wireOutputs(tc, run, ready, ended);
  ready = await governData(tc, run, ready, ended);
  ready = await fromCache(tc, run, ready, ended);
  const queuing = await withinLimits(tc, run, ready);
  const queued = await enqueue(tc, run, queuing, ended, unwritten);
  if (queued) noteDispatched(tc, run, queuing, unwritten !== undefined); // their recordings may guess their reads
  // What was not queued waits as READY, written as any other (the gates pass unwritten tasks untouched).
  if (unwritten?.size) await writeReady(tc, [...unwritten.values()], unwritten);
  // Nodes that ended here are settled only now: settling dispatches again, and must find the tasks above
  // already queued rather than queue them a second time.
  if (ended.length) await settle(tc, run, ended);
  return queued;
}

/**
 * Of a new run's READY tasks, those that dispatch may queue without their READY row ever being written: the ones
 * every gate and limit passes untouched, knowable without reading anything (no step before enqueue writes to their
 * rows): module tasks with no condition (decideConditions), no wired outputs (wireOutputs), no data access to decide (governData), no cache key
 * (fromCache), in a run with no task limit and admitted, on a pool with no limit (withinLimits). Whatever else
 * holds them back, dispatch writes them READY after all.
 */
export async function mayQueueUnwritten(
  { ctx, tx }: TxContext,
  run: Pick<Run, 'admitted' | 'maxParallelTasks' | 'status'>,
  ready: Task[],
): Promise<Set<string>> {
  if (!run.admitted || run.maxParallelTasks || (run.status !== 'QUEUED' && run.status !== 'RUNNING')) return new Set();
  // A map's expansion has dispatch read the run's READY tasks back, which would not find unwritten ones.
  if (ready.some((t) => t.kind !== 'module')) return new Set();
  let plain = ready.filter(
    (t) => t.moduleVersionId && !t.dataAccess && !t.condition && ctx.poolLimits?.[t.pool] === undefined && !JSON.stringify(t.parameters).includes('${outputs.'),
  );
  if (ctx.cache && plain.length) {
    const versions = await ctx.versions.get(
      tx,
      plain.map((t) => t.moduleVersionId!),
    );
    plain = plain.filter((t) => !cacheable(versions.get(t.moduleVersionId!)!.version.manifest));
  }
  return new Set(plain.map((t) => t.id));
}

/** Writes new tasks as READY (with their feed event), as `startRun` does for the tasks it does not hand over unwritten. */
async function writeReady(tc: TxContext, rows: (NewTask & { id: string })[], unwritten: UnwrittenTasks): Promise<void> {
  await bulkInsert(tc.tx, tasks, rows);
  for (const t of rows) {
    unwritten.delete(t.id);
    taskStatusEvent(tc.step, { id: t.id, runId: t.runId, node: t.node, attempt: 0 }, 'READY');
  }
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
export const messageLimit = (tc: TxContext) => tc.ctx.maxMessageBytes() - HEADER_ROOM_BYTES;

/**
 * A task message carries its parameters, its upstreams' outputs and its models' file lists inline, so its size grows
 * with what users send; one past the bus's limit could never be published and would sit in the outbox for good
 * (retried on every relay pass, holding the rows after it back). Such a task fails here, in the dispatch's
 * transaction, saying what to do; the rest go on. Serializing each message once costs ~2 µs for a typical one.
 */
async function failOversized(tc: TxContext, ready: Task[], messages: TaskMessage[], bytes: (number | undefined)[], ended: string[]): Promise<Set<number>> {
  const limit = messageLimit(tc);
  const oversized = new Set<number>();
  for (let i = 0; i < messages.length; i++) {
    if ((bytes[i] ?? 0) <= limit) continue;
    oversized.add(i);
    const message = `its task message is ${bytes[i]} bytes, over the ${limit} the bus takes (nats-server max_payload less room for headers): parameters, upstream outputs and model file lists travel inline, so pass a large value as an artifact or a dataset and hand over its digest (or raise max_payload)`;
    const failed = await applyOutcome(tc, ready[i]!, permanentFailure('message-too-large', message), { at: tc.step.at, durationMs: 0, host: null });
    if (isTerminal(failed.status)) ended.push(ready[i]!.node);
  }
  return oversized;
}

/**
 * How many tasks one of enqueue's statements writes. A wide run's enqueue is ~25 µs of the control plane's CPU a task
 * (its message, its JSON, its row) and ~60 µs of Postgres' (the row, its indexes, its outbox share): written as one
 * statement, Postgres waited for all of it to be built, then the control plane for Postgres. In parts, each sent as
 * soon as it is built, Postgres writes a part while the next one is built (startRun of 10,000 tasks).
 */
export const ENQUEUE_PART = 1000;

/**
 * Writes the bus message of each task's next attempt, with its module and its upstreams' outputs. Returns whether it
 * queued any. Tasks among `unwritten` are inserted QUEUED (and taken out of it) rather than updated.
 */
async function enqueue(tc: TxContext, run: Pick<Run, 'id'>, all: Task[], ended: string[], unwritten?: UnwrittenTasks): Promise<boolean> {
  const { tx } = tc;
  if (!all.length) return false;
  // Module versions do not change once published: read once per process (known-facts.ts), not once per edge.
  const versions = await tc.ctx.versions.get(
    tx,
    all.map((t) => t.moduleVersionId!),
  );
  const outputs = await upstreamOutputs(tc, run, all);
  let queued = false;
  for (let from = 0; from < all.length; from += ENQUEUE_PART) {
    // The part before has been handed to the connection (writeBehind): let it go out before building this one.
    if (from) await new Promise((resolve) => setImmediate(resolve));
    if (await enqueuePart(tc, all.slice(from, from + ENQUEUE_PART), versions, outputs, ended, unwritten)) queued = true;
  }
  return queued;
}

/** One statement's part of enqueue (ENQUEUE_PART tasks at most): their messages, the tasks queued, the outbox rows. */
async function enqueuePart(
  tc: TxContext,
  part: Task[],
  versions: Map<string, VersionFacts>,
  outputs: Map<string, Record<string, unknown>>,
  ended: string[],
  unwritten?: UnwrittenTasks,
): Promise<boolean> {
  const { ctx, tx, step } = tc;
  let ready = part;
  // Named by queueAndWrite's reserving rule, on a count that only shrinks below: a message names this replica if reserved.
  const claimAt = ctx.reservations?.claimAt(ready.length);
  let messages = ready.map((task) => taskMessage(task, versions.get(task.moduleVersionId!)!.version, outputs, step.at, claimAt));
  // Each message serialized once (measured where it can matter), then joined into its bus message's JSON for the outbox and the publish.
  const limit = messageLimit(tc);
  let { texts, bytes } = messageTexts(messages, limit);
  const tooLarge = unwritten?.size ? ready.filter((t, i) => (bytes[i] ?? 0) > limit && unwritten.has(t.id)) : [];
  // Failed below by an update of their row: written first.
  if (tooLarge.length)
    await writeReady(
      tc,
      tooLarge.map((t) => unwritten!.get(t.id)!),
      unwritten!,
    );
  const oversized = await failOversized(tc, ready, messages, bytes, ended);
  if (oversized.size) {
    ready = ready.filter((_, i) => !oversized.has(i));
    messages = messages.filter((_, i) => !oversized.has(i));
    texts = texts.filter((_, i) => !oversized.has(i));
    bytes = bytes.filter((_, i) => !oversized.has(i));
    if (!ready.length) return false;
  }
  // One outbox row per bus message: a pool's tasks in batches (protocol 3), so the direct publish and the relay's
  // fallback publish the same messages under the same ids, and the bus's dedupe drops whichever comes second.
  const batchSize = await ctx.batchSizes.forPools(
    tx,
    messages.map((m) => m.pool),
    step.at,
    { db: ctx.db, afterCommit: (work) => step.afterCommit.push(work) },
  );
  const rows = poolMessages(messages, bytes, messageLimit(tc), batchSize, texts);
  // Published straight after the commit when the context can (one hop less than the relay's select/publish/delete
  // pass); the rows are the fallback the relay publishes should that not happen. Nothing here needs the statement's
  // answer before the commit: it is written behind the transaction's next statements.
  // One pass: a task among `unwritten` is inserted QUEUED, any other updated (a filter, a set of ids and a second
  // filter over it were ~6 hash lookups a task of a wide startRun, where two do).
  const updatedIds: string[] = [];
  const newRows: NewTask[] = [];
  for (const t of ready) {
    const row = unwritten?.get(t.id);
    if (!row) {
      updatedIds.push(t.id);
      continue;
    }
    // Set QUEUED where it is, as it leaves `unwritten` (nothing else holds it): a spread copy of a row of ~30 keys went
    // V8's slow way, ~3 µs a task of a 10,000-task startRun, and its garbage.
    unwritten!.delete(t.id);
    row.status = 'QUEUED';
    row.attempt = 1;
    row.queuedAt = step.at;
    newRows.push(row);
  }
  queueAndWrite(tc, ready[0]!.runId, updatedIds, newRows, rows, (inserted) => {
    const ids = new Map(inserted.map((r) => [r.msg_id, Number(r.id)]));
    if (ctx.publishCommitted)
      for (const r of rows) step.committed.push({ id: ids.get(r.msgId)!, pool: r.pool, msgId: r.msgId, payload: r.payload, text: r.text });
  });
  if (!ctx.publishCommitted) step.outbox = true;
  // Only what the event names, not a copy of the whole row: a task row as drizzle or insertedTask builds it is a V8
  // dictionary object, and copying one by spread was ~11 µs a task (110 ms of a 10,000-task startRun).
  for (const t of ready) taskStatusEvent(step, { runId: t.runId, id: t.id, node: t.node, attempt: t.attempt + 1 }, 'QUEUED');
  return true;
}

/**
 * One statement for what enqueue writes: the tasks' next attempt QUEUED (new tasks inserted so), their messages'
 * outbox rows (returning their ids) and, when the relay has some, the outbox rows of earlier direct publishes the bus
 * has already taken (deleted here rather than by a statement of their own: two statements less per chain edge). The
 * tasks and the rows each travel as one parameter, whatever their number. `ifReady` (edge-dispatch.ts, sent before the
 * statement that makes the tasks READY has answered): only READY tasks are queued, and the outbox rows are written only
 * if all of them were.
 */
export function queueAndWrite(
  tc: TxContext,
  runId: string,
  taskIds: string[],
  newTasks: NewTask[],
  rows: PoolMessage[],
  written: (inserted: { id: string | number; msg_id: string }[]) => void,
  ifReady = false,
) {
  const { ctx, step } = tc;
  const published = ctx.publishCommitted ? ctx.takePublished?.() : undefined;
  if (published) step.deletedPublished.push(published);
  // A small dispatch reserves its attempts' first claims in this statement (reservations.ts): kept once it commits.
  // The ids listed only for a dispatch narrow enough to reserve (a wide startRun's part would list 1,000 for nothing).
  const reserve = ctx.reservations?.claimAt(taskIds.length + newTasks.length)
    ? ctx.reservations.plan(runId, [...taskIds, ...newTasks.map((t) => t.id!)], rows)
    : undefined;
  if (reserve) step.afterCommit.unshift(reserve.committed);
  const returning = reserve ? sql` returning id, attempt, timeout_ms` : ifReady ? sql` returning id` : sql``;
  const parts: SQL[] = [];
  if (taskIds.length)
    parts.push(sql`queued as (
        update tasks set status = 'QUEUED', attempt = attempt + 1, queued_at = ${step.at.toISOString()}::timestamptz, started_at = null,
          finished_at = null, retry_at = null, reason = null, message = null, exit_code = null, progress = null, progress_message = null,
          heartbeat_at = null
        where ${oneOrAny('id', taskIds, 'uuid')}${ifReady ? sql` and status = 'READY'` : sql``}${returning})`);
  if (newTasks.length) parts.push(sql`created as (${insertRows(tasks, newTasks)}${reserve ? returning : sql``})`);
  if (published) parts.push(sql`gone as (${deletePublishedRows(published.ids)})`);
  if (reserve) {
    parts.push(reservingFrom([...(taskIds.length ? (['queued'] as const) : []), ...(newTasks.length ? (['created'] as const) : [])]));
    parts.push(...reserve.ctes);
  }
  // The rows' JSON around each message's own (outboxRowJson), one flat string the driver writes without copying it.
  const json = joinFlat('[', rows.map(outboxRowJson), ',', ']');
  const outbox = sql`insert into outbox (kind, pool, msg_id, payload)
      select kind, pool, msg_id, payload from json_populate_recordset(null::outbox, ${json}::json)
      ${ifReady ? sql`where (select count(*) from queued) = ${taskIds.length}::int ` : sql``}returning id, msg_id`;
  writeBehind<{ id: string | number; msg_id: string } & Partial<ReservedRow>>(
    tc,
    reserve
      ? sql`with ${sql.join(parts, sql`, `)}, sent as (${outbox})
        select id, msg_id, null::uuid as task_id, null::int as attempt, null::int as count, null::uuid as key, null::boolean as tokened from sent
        union all ${reserve.rows}`
      : sql`with ${sql.join(parts, sql`, `)} ${outbox}`,
    reserve
      ? (rows) => {
          written(rows.filter((r) => r.msg_id !== null));
          reserve.drew(rows.filter((r) => r.msg_id === null) as ReservedRow[]);
        }
      : written,
    // Prepared, one of a few texts: new tasks' insert names the columns their rows set, and createRun's rows set all
    // theirs (null where unset). Unnamed, startRun's was planned on every call (~0.25 ms of its last round trip).
    true,
  );
}

/**
 * Deletes the outbox rows of direct publishes the bus has taken. Several rows are locked in id order first, as a
 * cancel's withdrawal takes them (cancel.ts): the two deleting the same rows in different orders met in a circle.
 */
export function deletePublishedRows(ids: readonly (string | number)[]): SQL {
  return ids.length === 1
    ? sql`delete from outbox where ${oneOrAny('id', ids, 'bigint')}`
    : sql`delete from outbox where id in (select id from outbox where id = any(${arrayOf(ids, 'bigint')}) order by id for update)`;
}

// A chain edge's dispatch decided before the counting statement answers: the recorder's read of a result's task, under
// the run's lock, returned the run's PENDING tasks downstream of it (recorded-tasks.ts), so which of them its success
// makes READY, and their task messages, are known in JS. The counting statement and the children's enqueue are then
// sent together, with the feed's append and the COMMIT right behind: the recording's second round trip is its last.
import { type SQL, sql } from 'drizzle-orm';
import { traceTaskHop, tracing } from '../../plugins/trace';
import { arrayLiteral } from '../db/arrays';
import type { Tx } from '../db/client';
import { sqlOnce } from '../db/prepared';
import type { Run } from '../db/tables/runs';
import { sentBehind, type TxContext, taskStatusEvent } from './context';
import { mayQueueUnwritten, messageLimit, queueAndWrite } from './dispatch';
import { outputKey, upstreamOutputs } from './known-facts';
import type { DownstreamRead } from './recorded-tasks';
import { readinessFromCounts, readyWhen } from './rules';
import { messageTexts, poolMessages, taskMessage } from './task-message';

/**
 * Settles the success of `node` (the only node this transaction ended) from what the read under the run's lock said of
 * its downstream (`edge`), when that read decides everything: no task downstream is skipped by it, every one it makes
 * READY is a plain module task that dispatch would queue untouched (mayQueueUnwritten: no condition, wired inputs, data
 * access, cache key, task or pool limit) with a message that fits the bus, the run has no other READY task, and the
 * fan-out is no wider than the read returns whole. Then it sends the counting statement without waiting, the enqueue
 * of the tasks it makes READY behind it (guarded in SQL on their being READY, the outbox rows written only if all are),
 * and checks the counting statement's answer against the prediction before the commit (a difference fails the
 * transaction: under the lock it cannot happen). Returns false, having sent nothing, where anything needs today's path
 * (settle's evaluate and dispatch, after the counting statement's answer).
 */
export async function dispatchBehind(tc: TxContext, run: Run, node: string, edge: DownstreamRead | undefined): Promise<boolean> {
  const { ctx, tx, step } = tc;
  // Children found by the read: where they were found by the scan (a run this process did not start), its edges are
  // read once, on a connection of their own after the commit, and its later edges read their children by key.
  if (edge && (edge.more || edge.downstream.length)) step.afterCommit.push(() => ctx.runEdges.learn(run.id));
  if (!edge || edge.more || edge.readyInRun || !run.admitted || (run.status !== 'QUEUED' && run.status !== 'RUNNING')) return false;
  const counted = edge.downstream.map((task) => {
    const n = task.dependsOn.filter((d) => d === node).length;
    const counts = { total: task.dependsOn.length, done: task.upstreamDone + n, succeeded: task.upstreamSucceeded + n, failed: task.upstreamFailed };
    return { task, counts, readiness: readinessFromCounts(task.triggerRule, counts) };
  });
  if (counted.some((c) => c.readiness === 'skip')) return false;
  const ready = counted.filter((c) => c.readiness === 'ready');
  // The rows as the counting statement leaves them (it returns them so).
  for (const { task, counts } of ready)
    Object.assign(task, { status: 'READY', queuedAt: step.at, upstreamDone: counts.done, upstreamSucceeded: counts.succeeded });
  const readyTasks = ready.map((c) => c.task);
  let queue: (() => void) | undefined;
  if (readyTasks.length) {
    if ((await mayQueueUnwritten(tc, run, readyTasks)).size !== readyTasks.length) return false;
    const versions = await ctx.versions.get(
      tx,
      readyTasks.map((t) => t.moduleVersionId!),
    );
    // Their upstreams' outputs: this task's from its success, the others' as the read returned them (else read now).
    const outputs = new Map(edge.upstreamOutputs);
    const own = step.outputs.get(outputKey(run.id, node));
    if (own) outputs.set(node, own);
    const all = readyTasks.every((t) => t.dependsOn.every((d) => outputs.has(d))) ? outputs : await upstreamOutputs(tc, run, readyTasks);
    // Their first claims asked of this replica when queueAndWrite reserves them here (the same rule decides both).
    const claimAt = ctx.reservations?.claimAt(readyTasks.length);
    const messages = readyTasks.map((t) => taskMessage(t, versions.get(t.moduleVersionId!)!.version, all, step.at, claimAt));
    const { texts, bytes } = messageTexts(messages, messageLimit(tc));
    // One past the bus's limit is failed by dispatch, saying why.
    if (bytes.some((b) => (b ?? 0) > messageLimit(tc))) return false;
    const batchSize = await ctx.batchSizes.forPools(
      tx,
      messages.map((m) => m.pool),
      step.at,
      { db: ctx.db, afterCommit: (work) => step.afterCommit.push(work) },
    );
    const rows = poolMessages(messages, bytes, messageLimit(tc), batchSize, texts);
    queue = () =>
      queueAndWrite(
        tc,
        run.id,
        readyTasks.map((t) => t.id),
        [],
        rows,
        (inserted) => {
          const ids = new Map(inserted.map((r) => [r.msg_id, Number(r.id)]));
          if (ctx.publishCommitted)
            for (const r of rows)
              if (ids.has(r.msgId)) step.committed.push({ id: ids.get(r.msgId)!, pool: r.pool, msgId: r.msgId, payload: r.payload, text: r.text });
        },
        true,
      );
  }
  // The hops settle's evaluate and dispatch stamp (bench/peers/edge-trace.ts): decided, then sent.
  if (tracing()) for (const t of readyTasks) traceTaskHop('control plane: evaluated', t.runId, t.id);
  // Nothing downstream: the counting statement would count into nothing, and the read said another task is open.
  if (counted.length) {
    const expected = new Map(counted.map((c) => [c.task.id, c.readiness === 'ready']));
    const answer = countInto(tx, node, step.at, [...expected.keys()]);
    sentBehind(
      tc,
      answer.then((rows) => checkCounted(rows, expected)),
    );
  }
  queue?.();
  if (tracing()) for (const t of readyTasks) traceTaskHop('control plane: dispatched', t.runId, t.id);
  if (readyTasks.length && !ctx.publishCommitted) step.outbox = true;
  for (const t of readyTasks) taskStatusEvent(step, t, 'READY');
  for (const t of readyTasks) taskStatusEvent(step, { runId: t.runId, id: t.id, node: t.node, attempt: t.attempt + 1 }, 'QUEUED');
  return true;
}

/**
 * The counting statement's answer as dispatchBehind predicted it: the tasks it counted into are the ones the read
 * returned, READY exactly where predicted, and the run has no other READY task.
 */
function checkCounted(rows: Record<string, unknown>[], expected: Map<string, boolean>): void {
  const got = rows.filter((r) => r.id !== null && r.id !== undefined);
  const same =
    got.length === expected.size &&
    got.every((r) => r.counted === true && expected.has(r.id as string) && expected.get(r.id as string) === (r.status === 'READY'));
  if (!same)
    throw new Error(
      `a chain edge's dispatch was decided from a read under the run's lock that the counting statement did not bear out (expected ${JSON.stringify([...expected])}, counted ${JSON.stringify(got.map((r) => [r.id, r.status, r.counted]))}): the recording is rolled back`,
    );
}

/**
 * The counting statement of settle.ts for one succeeded node, over the downstream tasks the read under the run's lock
 * returned (all of them: dispatchBehind declines a wider fan-out) instead of a scan of the run's PENDING tasks, which
 * the read has just made: each task by its key. Returns the tasks it counted into, with their statuses after.
 */
function countInto(tx: Tx, node: string, at: Date, ids: string[]) {
  const values = { node: arrayLiteral([node]), at: at.toISOString() };
  return ids.length === 1 ? countIntoOne(tx, { ...values, id: ids[0]! }) : countIntoAmong(tx, { ...values, ids: arrayLiteral(ids) });
}

const countIntoTasks = (where: SQL) => {
  const node = sql`${sql.placeholder('node')}::text[]`;
  const n = sql`(select count(*)::int from unnest(tasks.depends_on) as d(n) where d.n = any(${node}))`;
  const done = sql`tasks.upstream_done + ${n}`;
  const succeeded = sql`tasks.upstream_succeeded + ${n}`;
  const ready = readyWhen({ rule: sql`tasks.trigger_rule`, total: sql`cardinality(tasks.depends_on)`, done, succeeded, failed: sql`tasks.upstream_failed` });
  return sql`update tasks set upstream_done = ${done}, upstream_succeeded = ${succeeded},
      status = case when ${ready} then 'READY' else tasks.status end,
      queued_at = case when ${ready} then ${sql.placeholder('at')}::timestamptz else tasks.queued_at end
    where ${where} and tasks.status = 'PENDING' and tasks.depends_on && ${node}
    returning true as counted, tasks.id, tasks.status`;
};
// One id by `= $1` (a chain's edge): Postgres plans a prepared `= any($1)` holding one id anew on every call.
const countIntoOne = sqlOnce<{ node: string; at: string; id: string }>()<Record<string, unknown>>(() =>
  countIntoTasks(sql`tasks.id = ${sql.placeholder('id')}::uuid`),
);
const countIntoAmong = sqlOnce<{ node: string; at: string; ids: string }>()<Record<string, unknown>>(() =>
  countIntoTasks(sql`tasks.id = any(${sql.placeholder('ids')}::uuid[])`),
);

// A chain edge's dispatch decided before the counting statement answers: the recorder's read of a result's task, under
// the run's lock, returned the run's PENDING tasks downstream of it (recorded-tasks.ts), so which of them its success
// makes READY, and their task messages, are known in JS. The counting statement and the children's enqueue are then
// sent together, with the feed's append and the COMMIT right behind: the recording's second round trip is its last.
import { traceTaskHop, tracing } from '../../plugins/trace';
import { arrayLiteral } from '../db/arrays';
import type { Run } from '../db/tables/runs';
import { sentBehind, type TxContext, taskStatusEvent } from './context';
import { mayQueueUnwritten, messageLimit, queueAndWrite } from './dispatch';
import { outputKey, upstreamOutputs } from './known-facts';
import type { DownstreamRead } from './recorded-tasks';
import { readinessFromCounts } from './rules';
import { counting } from './settle';
import { poolMessages, taskMessage } from './task-message';

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
    const messages = readyTasks.map((t) => taskMessage(t, versions.get(t.moduleVersionId!)!.version, all, step.at));
    const texts = messages.map((m) => JSON.stringify(m));
    const bytes = texts.map((t) => Buffer.byteLength(t));
    // One past the bus's limit is failed by dispatch, saying why.
    if (bytes.some((b) => b > messageLimit(tc))) return false;
    const batchSize = await ctx.batchSizes.forPools(
      tx,
      messages.map((m) => m.pool),
      step.at,
    );
    const rows = poolMessages(messages, bytes, messageLimit(tc), batchSize, texts);
    queue = () =>
      queueAndWrite(
        tc,
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
    const answer = counting(tx, {
      endedAll: arrayLiteral([node]),
      endedOk: arrayLiteral([node]),
      endedFailed: arrayLiteral([]),
      at: step.at.toISOString(),
      runId: run.id,
    });
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

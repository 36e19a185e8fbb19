// Cancelling: a run's open tasks end CANCELLED, its nested runs with them; attempts still in the outbox are
// withdrawn and the ones already on the bus get a cancel broadcast.
import { and, eq, inArray, sql } from 'drizzle-orm';
import { type CancelMessage, taskMessageId } from '../../plugins/protocol';
import { arrayOf, jsonRows } from '../db/arrays';
import { queryRows, type Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { outbox } from '../db/tables/outbox';
import { type Run, runs, tasks } from '../db/tables/runs';
import { isUuid } from '../db/uuid';
import { AtelierError, notFound } from '../errors';
import { emitRunEnded } from '../webhooks/run-events';
import { notifyParent } from './composite';
import { ACTIVE, lockRun, OPEN, type OrchestratorContext, type TxContext, taskStatusEvent, transact } from './context';
import { lockRuns } from './recorded-tasks';
import { runFailed } from './run-signals';

export async function cancelRun(ctx: OrchestratorContext, runId: string, identity: Identity | null): Promise<Run> {
  return transact(ctx, async (tc) => {
    const run = await lockRunTree(tc.tx, runId);
    if (!run) throw notFound(`No run ${runId}; \`atelier run list\` shows the recent ones.`);
    assertCancellable(run);
    return cancelInTx(tc, run, `cancelled${identity ? ` by ${identity.name}` : ''}`);
  });
}

/**
 * The run, locked with its nested runs (through its open workflow nodes, at any depth), all in id order, as every
 * writer of several runs takes them (the recorder: a run moving and the runs whose events it stores): parent first and
 * then children, it deadlocked with a recorder holding a child and bumping the parent's event number. The tree is read
 * before its locks are taken, so a nested run started in between (its parent's lock was what the cancel waited for)
 * is missing from it: the tree is read again once locked, and if it grew, the locks are given back (to a savepoint
 * taken before them) and the whole tree locked again in id order. Locked out of order by cancelInTx instead, the new
 * child met a recorder holding it and waiting for the parent in a circle.
 */
export async function lockRunTree(tx: Tx, runId: string): Promise<Run | undefined> {
  if (!isUuid(runId)) return undefined;
  let ids = await runTree(tx, runId);
  await tx.execute(sql`savepoint lock_run_tree`);
  for (let round = 1; ; round++) {
    const locked = await lockRuns(tx, ids);
    const now = await runTree(tx, runId);
    const grown = now.filter((id) => !ids.includes(id));
    // A run's nested runs start under its lock, so once the tree is locked it grows no more: a second round is the last.
    if (!grown.length || round >= MAX_TREE_ROUNDS) {
      await tx.execute(sql`release savepoint lock_run_tree`);
      return locked.find((r) => r.id === runId);
    }
    await tx.execute(sql`rollback to savepoint lock_run_tree`);
    ids = [...ids, ...grown];
  }
}

/** Beyond this many rounds, a run still gaining nested runs is cancelled with the rest locked as cancelInTx meets them. */
const MAX_TREE_ROUNDS = 4;

/** The run and its nested runs through open workflow nodes, at any depth (a plain read: nothing locked). */
async function runTree(tx: Tx, runId: string): Promise<string[]> {
  const tree = await queryRows<{ id: string }>(
    tx,
    sql`with recursive tree(id) as (
          select ${runId}::uuid
          union
          select t.child_run_id from tasks t join tree on t.run_id = tree.id
          where t.kind = 'workflow' and t.child_run_id is not null and t.status = any(${arrayOf(OPEN, 'text')}))
        select id from tree`,
  );
  return tree.map((r) => r.id);
}

/** Throws CONFLICT unless the run is still active (the cancel mutation, and `Run.viewerCan.cancel`). */
export function assertCancellable(run: Pick<Run, 'id' | 'status'>): void {
  if (run.status !== 'QUEUED' && run.status !== 'RUNNING')
    throw new AtelierError('CONFLICT', `Run ${run.id} has already ended (${run.status}); there is nothing to cancel.`);
}

/**
 * How a run ended before its tasks did: its own status and the reason its open tasks (CANCELLED) are given. A cancel
 * ends it CANCELLED; its time limit (run-deadline.ts) ends it FAILED, the same way in every other respect.
 */
export interface RunEnding {
  status: 'CANCELLED' | 'FAILED';
  taskReason: string;
}
const CANCELLED: RunEnding = { status: 'CANCELLED', taskReason: 'cancelled' };

/** Cancels a locked, active run and, through its workflow nodes, its nested runs (`ending`: as a cancel, by default). */
export async function cancelInTx(tc: TxContext, run: Run, message: string, ending: RunEnding = CANCELLED): Promise<Run> {
  const { ctx, tx, step } = tc;
  const open = await tx
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, run.id), inArray(tasks.status, OPEN)));
  if (open.length) {
    await tx
      .update(tasks)
      .set({ status: 'CANCELLED', reason: ending.taskReason, message, finishedAt: step.at })
      .where(
        inArray(
          tasks.id,
          open.map((t) => t.id),
        ),
      );
    // Tasks still in the outbox are stopped before dispatch; the ones on the bus get a cancel broadcast.
    const dispatched = open.filter((t) => t.kind === 'module' && ACTIVE.includes(t.status));
    if (dispatched.length)
      await stopAttempts(
        tc,
        dispatched.map((t) => ({ taskId: t.id, attempt: t.attempt })),
        message,
      );
    for (const t of open) taskStatusEvent(step, t, 'CANCELLED', ending.taskReason, message);
    await ctx.cache?.release(
      tx,
      open.filter((t) => t.cacheKey).map((t) => t.id),
    );
    for (const t of open.filter((t) => t.kind === 'workflow' && t.childRunId)) {
      const child = await lockRun(tx, t.childRunId!);
      if (child && (child.status === 'QUEUED' || child.status === 'RUNNING')) await cancelInTx(tc, child, `${message} (parent run ${run.id})`, ending);
    }
  }
  const { status } = ending;
  const [updated] = await tx.update(runs).set({ status, message, finishedAt: step.at }).where(eq(runs.id, run.id)).returning();
  step.feed.push({ kind: 'run-status', runId: run.id, status, message, at: step.at.toISOString() });
  if (await emitRunEnded(tx, updated!, status, message, step.at)) step.outbox = true; // kicks the webhook worker after commit
  // Its time limit is a failure (failure triggers fire on it); a cancel is someone's choice and records no signal.
  if (status === 'FAILED' && (await runFailed(tx, updated!, step.at, 'TIME_LIMIT', message))) step.outbox = true; // and the trigger dispatcher
  await notifyParent(tc, updated!, status, message);
  return updated!;
}

/**
 * Withdraws attempts not yet published and broadcasts a cancel for the others, each naming the key this database drew
 * for its attempt (protocol 6: hosts then stop that execution only; none is named before the attempt's first claim).
 */
export async function stopAttempts({ tx, step }: TxContext, attempts: { taskId: string; attempt: number }[], reason: string): Promise<void> {
  if (!attempts.length) return;
  // Locked in id order, as an enqueue deletes the published rows it takes (dispatch.ts): deleted in the order of the
  // message ids, the same rows met an enqueue's delete in a circle, and Postgres aborted one of the two.
  const msgIds = attempts.map((a) => taskMessageId(a.taskId, a.attempt));
  const pairs = attempts.map((a) => ({ task_id: a.taskId, attempt: a.attempt }));
  const [, keys] = await Promise.all([
    tx.execute(
      sql`delete from outbox where id in (
          select id from outbox where kind = 'task' and msg_id = any(${arrayOf(msgIds, 'text')}) order by id for update)`,
    ),
    queryRows<{ task_id: string; attempt: number; key: string }>(
      tx,
      sql`select x.task_id, x.attempt, x.key from task_executions x
          join ${jsonRows(pairs)} as v(task_id uuid, attempt int) on x.task_id = v.task_id and x.attempt = v.attempt`,
    ),
  ]);
  const drawn = new Map(keys.map((k) => [taskMessageId(k.task_id, k.attempt), k.key]));
  await insertCancels(
    { tx, step },
    attempts.map((a) => {
      const key = drawn.get(taskMessageId(a.taskId, a.attempt));
      return { taskId: a.taskId, attempt: a.attempt, reason, ...(key ? { attemptKey: key } : {}) };
    }),
  );
}

/**
 * Tells the hosts of executions whose reports were refused as stale (their key is not the one this database drew for
 * their attempt: a restore undid their claim) to stop them. Only the execution holding the key stops (CancelMessage.stale):
 * the attempt's message, if still to be published, and its current execution are left alone.
 */
export async function stopStaleExecutions(
  tc: Pick<TxContext, 'tx' | 'step'>,
  executions: { taskId: string; attempt: number; attemptKey: string }[],
): Promise<void> {
  if (!executions.length) return;
  const reason = "superseded: the control plane's database was restored since this execution's claim, and hands its attempt to another";
  await insertCancels(
    tc,
    executions.map((e) => ({ ...e, reason, stale: true as const })),
  );
}

async function insertCancels({ tx, step }: Pick<TxContext, 'tx' | 'step'>, messages: CancelMessage[]): Promise<void> {
  await tx.insert(outbox).values(
    messages.map((m) => ({
      kind: 'cancel' as const,
      msgId: `cancel:${taskMessageId(m.taskId, m.attempt)}${m.stale ? `:${m.attemptKey}` : ''}:${step.at.getTime()}`,
      payload: m,
    })),
  );
  step.outbox = true;
}

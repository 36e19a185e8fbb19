// A run's time limit: checking the one asked for, the deadline it sets once the run is admitted (never later than its
// parent run's), and the sweep's pass that ends every run past its deadline FAILED, its open tasks cancelled.
// Decided from the database alone, so it holds across replicas and restarts: a control plane that was down past a
// deadline ends the run when it comes back, once (the run's lock and its status decide who does).
import { sql } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { queryRows } from '../db/client';
import type { Run } from '../db/tables/runs';
import { badInput } from '../errors';
import { TIMEOUT_MAX_SECONDS } from '../vocabulary';
import { cancelInTx, lockRunTree, type RunEnding } from './cancel';
import { type OrchestratorContext, transact } from './context';

const BATCH = 500;

/** The reason an overdue run's open tasks are given (CANCELLED, as by a cancel). */
export const RUN_TIMED_OUT = 'run-timed-out';
const TIMED_OUT: RunEnding = { status: 'FAILED', taskReason: RUN_TIMED_OUT };

/** A run's time limit asked for (startRun, `run start --timeout`), checked before anything is written. */
export function checkRunTimeout(seconds: number | undefined): void {
  if (seconds === undefined) return;
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > TIMEOUT_MAX_SECONDS)
    throw badInput(
      `timeoutSeconds must be more than 0 and at most ${TIMEOUT_MAX_SECONDS} (7 days), the bound a task's timeoutSeconds has too; got ${seconds}. Leave it out for the workflow spec's own.`,
    );
}

/** The run's time limit in ms: the one asked for, else its spec's; null when neither has one. */
export function runTimeoutMs(asked: number | undefined, specSeconds: number | undefined): number | null {
  const seconds = asked ?? specSeconds;
  return seconds === undefined ? null : Math.round(seconds * 1000);
}

/**
 * The deadline of a run admitted at `admittedAt`: counted from then (time queued behind maxActiveRuns does not count),
 * and never later than its parent's, so a nested run never outlives its parent.
 */
export function deadlineOf(admittedAt: Date, timeoutMs: number | null, parentDeadlineAt: Date | null | undefined): Date | null {
  const own = timeoutMs === null ? null : new Date(admittedAt.getTime() + timeoutMs);
  if (!parentDeadlineAt) return own;
  return own && own < parentDeadlineAt ? own : parentDeadlineAt;
}

/** What an overdue run's message says, and what its tasks and webhooks are told. */
export const timeLimitMessage = (timeoutMs: number | null) =>
  timeoutMs === null ? 'ran past its parent run’s time limit' : `ran past its time limit of ${formatSeconds(timeoutMs)} s`;

const formatSeconds = (ms: number) => String(Math.round(ms) / 1000);

/**
 * The sweep's pass: every active run whose deadline has passed ends FAILED, its open tasks cancelled (running attempts
 * told to stop as a cancel tells them) and its nested runs with it. A nested run whose parent is overdue too is left
 * to its parent's ending, which reaches it with the parent's reason.
 */
export async function endOverdueRuns(ctx: OrchestratorContext, at: Date): Promise<void> {
  const overdue = await queryRows<{ id: string }>(
    ctx.db,
    sql`select r.id from runs r
        where r.deadline_at is not null and r.status in ('QUEUED', 'RUNNING') and r.deadline_at <= ${at.toISOString()}::timestamptz
          and not exists (select 1 from runs p where p.id = r.parent_run_id and p.deadline_at is not null
                          and p.status in ('QUEUED', 'RUNNING') and p.deadline_at <= ${at.toISOString()}::timestamptz)
        order by r.deadline_at limit ${BATCH}`,
  );
  for (const { id } of overdue) await endOverdueRun(ctx, id);
}

async function endOverdueRun(ctx: OrchestratorContext, runId: string): Promise<void> {
  await transact(ctx, async (tc) => {
    // Locked with its nested runs, in id order, as a cancel takes them.
    const run = await lockRunTree(tc.tx, runId);
    if (!run || !isOverdue(run, tc.step.at)) return; // ended, or moved, since it was found: another replica's work
    const message = timeLimitMessage(run.timeoutMs);
    await cancelInTx(tc, run, message, TIMED_OUT);
    await audit(tc.tx, {
      identity: null,
      action: 'run.timeout',
      decision: 'allow',
      subject: `run:${run.id}`,
      rule: 'a run still open at its deadline (timeoutSeconds) ends FAILED',
      details: { timeoutMs: run.timeoutMs, deadlineAt: run.deadlineAt?.toISOString() ?? null, parentRunId: run.parentRunId },
    });
  });
}

const isOverdue = (run: Run, at: Date) => (run.status === 'QUEUED' || run.status === 'RUNNING') && run.deadlineAt !== null && run.deadlineAt <= at;

// Answering executor hosts' claims: before it runs an attempt, a host asks whether the attempt is still current;
// one query answers a whole batch of claims (see attempts.ts for the decision). A redelivered message the database
// lets run, or any claim of an attempt already seen to start, is held ('later') until the events published before
// its claim are recorded (attempts.ts#gateRedelivery).
import { type SQL, sql } from 'drizzle-orm';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { arrayOf } from '../db/arrays';
import { queryRows } from '../db/client';
import type { TaskStatus } from '../vocabulary';
import { claimVerdict, gateRedelivery, type HeldClaim } from './attempts';
import type { OrchestratorContext } from './context';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * One answer per claim, in order. A claim naming no task of this control plane is answered `drop`. `alongside`: a
 * data-modifying CTE run by the same statement, reading `claimed` (the claimed tasks' id, status, attempt and
 * timeout_ms): the claim server stores the attempts' MLflow tokens with it (server/tracking/task-tokens.ts).
 */
export async function answerClaims(ctx: OrchestratorContext, claims: AttemptClaim[], alongside?: (claimed: SQL) => SQL): Promise<ClaimAnswer[]> {
  const ids = [...new Set(claims.map((c) => c.taskId).filter((id) => typeof id === 'string' && UUID.test(id)))];
  const rows = ids.length
    ? await queryRows<{ id: string; status: TaskStatus; attempt: number }>(
        ctx.db,
        sql`with claimed as (select id, status, attempt, timeout_ms from tasks where id = any(${arrayOf(ids, 'uuid')}))
          ${alongside ? sql`, alongside as (${alongside(sql`claimed`)})` : sql``}
          select id, status, attempt from claimed`,
      )
    : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const answers = claims.map((c) => claimVerdict(byId.get(c.taskId), c));
  // A redelivered message the database lets run may have run already: hold it until the bus has nothing older. So
  // may one whose attempt the database saw start, whatever the bus counted: a start is recorded only once an
  // execution ran, and a bus can count a redelivery as a first delivery (the chaos suite saw JetStream do so).
  const gated = claims.flatMap((c, i) => ((c.redelivered || byId.get(c.taskId)?.status === 'RUNNING') && answers[i]!.verdict === 'run' ? [i] : []));
  if (!gated.length) return answers;
  let backlog: { published: number; recorded: number } | undefined;
  let unknown = false;
  try {
    backlog = await ctx.eventBacklog?.();
  } catch {
    unknown = true; // the bus cannot say what is still on it: run nothing redelivered now
  }
  const now = Date.now();
  forgetOldHolds(ctx.heldClaims, now);
  for (const i of gated) {
    const key = `${claims[i]!.taskId}:${claims[i]!.attempt}`;
    if (unknown) {
      answers[i] = { verdict: 'later', reason: 'recording' };
      continue;
    }
    const { answer, held } = gateRedelivery(ctx.heldClaims.get(key), backlog, now);
    if (held) ctx.heldClaims.set(key, held);
    else ctx.heldClaims.delete(key);
    answers[i] = answer;
  }
  return answers;
}

/** Holds are forgotten after this long (a host that stopped asking); a claim asked again later starts over. */
const HOLD_MEMORY_MS = 10 * 60_000;

function forgetOldHolds(held: Map<string, HeldClaim>, now: number): void {
  for (const [key, h] of held) if (now - h.since > HOLD_MEMORY_MS) held.delete(key);
}

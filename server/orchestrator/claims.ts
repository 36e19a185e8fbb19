// Answering executor hosts' claims: before it runs an attempt, a host asks whether the attempt is still current;
// one query answers a whole batch of claims (see attempts.ts for the decision). A redelivered message the database
// lets run is held ('later') until the events published before its claim are recorded (attempts.ts#gateRedelivery).
import { inArray } from 'drizzle-orm';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { tasks } from '../db/tables/runs';
import { claimVerdict, gateRedelivery, type HeldClaim } from './attempts';
import type { OrchestratorContext } from './context';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One answer per claim, in order. A claim naming no task of this control plane is answered `drop`. */
export async function answerClaims(ctx: OrchestratorContext, claims: AttemptClaim[]): Promise<ClaimAnswer[]> {
  const ids = [...new Set(claims.map((c) => c.taskId).filter((id) => typeof id === 'string' && UUID.test(id)))];
  const rows = ids.length ? await ctx.db.select({ id: tasks.id, status: tasks.status, attempt: tasks.attempt }).from(tasks).where(inArray(tasks.id, ids)) : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const answers = claims.map((c) => claimVerdict(byId.get(c.taskId), c));
  // A redelivered message the database lets run may have run already: hold it until the bus has nothing older.
  const gated = claims.flatMap((c, i) => (c.redelivered && answers[i]!.verdict === 'run' ? [i] : []));
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

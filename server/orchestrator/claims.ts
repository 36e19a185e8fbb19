// Answering executor hosts' claims: before it runs an attempt, a host asks whether the attempt is still current;
// one query answers a whole batch of claims (see attempts.ts for the decision).
import { inArray } from 'drizzle-orm';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { tasks } from '../db/tables/runs';
import { claimVerdict } from './attempts';
import type { OrchestratorContext } from './context';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One answer per claim, in order. A claim naming no task of this control plane is answered `drop`. */
export async function answerClaims(ctx: OrchestratorContext, claims: AttemptClaim[]): Promise<ClaimAnswer[]> {
  const ids = [...new Set(claims.map((c) => c.taskId).filter((id) => typeof id === 'string' && UUID.test(id)))];
  const rows = ids.length ? await ctx.db.select({ id: tasks.id, status: tasks.status, attempt: tasks.attempt }).from(tasks).where(inArray(tasks.id, ids)) : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  return claims.map((c) => claimVerdict(byId.get(c.taskId), c));
}

// A task's own MLflow token: minted when the control plane lets an attempt run (its claim's answer carries it to
// the host, which sets MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and MLFLOW_TRACKING_TOKEN for the module). The token
// belongs to a service identity with no rights (empty scopes: GraphQL gives it nothing), is bound to the task and
// attempt (server/tracking/access.ts: it reads and logs into that task only, and logs only while that attempt
// runs), and expires after the task's timeout.
import { and, inArray, isNotNull, lt } from 'drizzle-orm';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { ensureIdentity, hashToken, mintToken } from '../auth/tokens';
import type { Db } from '../db/client';
import { tasks } from '../db/tables/runs';
import { tokens } from '../db/tables/tokens';

/** The identity every task token belongs to: a viewer whose tokens carry no scopes. */
export const TASK_TRACKING_IDENTITY = 'atelier-task-tracking';
/** A task token outlives its task's timeout by this much (results may still be logged as the attempt ends). */
const GRACE_MS = 5 * 60_000;

export function taskTracking(db: Db, uri: () => string | undefined) {
  return async (claims: AttemptClaim[], answers: ClaimAnswer[]): Promise<ClaimAnswer[]> => {
    const base = uri();
    // An attempt whose executor runs no module code (claim.tracking false) gets no token: nothing in it could use one.
    const wants = (claim: AttemptClaim, i: number) => answers[i]?.verdict === 'run' && claim.tracking !== false;
    const running = claims.filter(wants);
    if (!base || !running.length) return answers;
    const identity = await ensureIdentity(db, { name: TASK_TRACKING_IDENTITY, kind: 'service', role: 'viewer' });
    const rows = await db
      .select({ id: tasks.id, timeoutMs: tasks.timeoutMs })
      .from(tasks)
      .where(inArray(tasks.id, [...new Set(running.map((c) => c.taskId))]));
    const timeouts = new Map(rows.map((r) => [r.id, r.timeoutMs]));
    const minted = answers.map((_, i) => (wants(claims[i]!, i) && timeouts.has(claims[i]!.taskId) ? mintToken() : undefined));
    // The claims answered together get their tokens in one insert: one statement per claim was, on the embedded
    // database, a quarter of the statements' time in a run of 2,000 no-op tasks (2,000 inserts, 3.2 s of 12.3 s).
    const values = claims.flatMap((claim, i) => {
      const token = minted[i];
      if (!token) return [];
      return [
        {
          identityId: identity.id,
          name: `task ${claim.taskId} attempt ${claim.attempt}`,
          hash: hashToken(token),
          expiresAt: new Date(Date.now() + (timeouts.get(claim.taskId) || 24 * 3_600_000) + GRACE_MS),
          scopes: [],
          taskId: claim.taskId,
          taskAttempt: claim.attempt,
        },
      ];
    });
    if (values.length) await db.insert(tokens).values(values).onConflictDoNothing({ target: tokens.hash });
    return answers.map((answer, i) => {
      const token = minted[i];
      return token ? { ...answer, tracking: { uri: base, runId: claims[i]!.taskId, token } } : answer;
    });
  };
}

/**
 * Deletes task tokens that expired before `now`: one is minted per attempt, and an expired one authenticates nothing
 * (the refusal reads the same for an unknown token), so keeping them would only grow the table.
 */
export async function pruneExpiredTaskTokens(db: Db, now = new Date()): Promise<number> {
  const gone = await db
    .delete(tokens)
    .where(and(isNotNull(tokens.taskId), lt(tokens.expiresAt, now)))
    .returning({ id: tokens.id });
  return gone.length;
}

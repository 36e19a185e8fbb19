// A task's own MLflow token: minted when the control plane lets an attempt run (its claim's answer carries it to
// the host, which sets MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and MLFLOW_TRACKING_TOKEN for the module). The token
// belongs to a service identity with no rights (empty scopes: GraphQL gives it nothing), is bound to the task and
// attempt (server/tracking/access.ts: it reads and logs into that task only, and logs only while that attempt
// runs), and expires after the task's timeout.
import { and, isNotNull, lt, sql } from 'drizzle-orm';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { ensureIdentity, hashToken, mintToken } from '../auth/tokens';
import { jsonRows } from '../db/arrays';
import type { Db } from '../db/client';
import { tokens } from '../db/tables/tokens';

/** The identity every task token belongs to: a viewer whose tokens carry no scopes. */
export const TASK_TRACKING_IDENTITY = 'atelier-task-tracking';
/** A task token outlives its task's timeout by this much (results may still be logged as the attempt ends). */
const GRACE_MS = 5 * 60_000;
/** A task without a timeout of its own: its token expires after this (plus the grace). */
const DEFAULT_TIMEOUT_MS = 24 * 3_600_000;

export function taskTracking(db: Db, uri: () => string | undefined) {
  // The service identity, made once: it is looked up by name only when this process has not made sure of it yet (or
  // the last insert failed, in case it was deleted meanwhile). Two statements per claim batch, on every chain edge.
  let identityId: string | undefined;
  return async (claims: AttemptClaim[], answers: ClaimAnswer[]): Promise<ClaimAnswer[]> => {
    const base = uri();
    const running = claims.filter((_, i) => answers[i]?.verdict === 'run');
    if (!base || !running.length) return answers;
    identityId ??= (await ensureIdentity(db, { name: TASK_TRACKING_IDENTITY, kind: 'service', role: 'viewer' })).id;
    const minted = answers.map((answer) => (answer.verdict === 'run' ? mintToken() : undefined));
    // The claims answered together get their tokens in one insert: one statement per claim was, on the embedded
    // database, a quarter of the statements' time in a run of 2,000 no-op tasks (2,000 inserts, 3.2 s of 12.3 s).
    // Each token's expiry comes from its task's timeout in the same statement (a task that is gone gets none: its
    // token, never stored, authenticates nothing).
    const values = claims.flatMap((claim, i) => {
      const token = minted[i];
      if (!token) return [];
      return [{ name: `task ${claim.taskId} attempt ${claim.attempt}`, hash: hashToken(token), task_id: claim.taskId, attempt: claim.attempt }];
    });
    try {
      if (values.length)
        await db.execute(sql`
          insert into tokens (identity_id, name, hash, expires_at, scopes, task_id, task_attempt)
          select ${identityId}::uuid, v.name, v.hash,
            ${new Date().toISOString()}::timestamptz + make_interval(secs => (coalesce(nullif(t.timeout_ms, 0), ${DEFAULT_TIMEOUT_MS}) + ${GRACE_MS}) / 1000.0),
            '{}'::text[], v.task_id, v.attempt
          from ${jsonRows(values)} as v(name text, hash text, task_id uuid, attempt int)
          join tasks t on t.id = v.task_id
          on conflict (hash) do nothing`);
    } catch (error) {
      identityId = undefined;
      throw error;
    }
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

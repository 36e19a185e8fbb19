// A task's own MLflow token: minted when the control plane lets an attempt run (its claim's answer carries it to
// the host, which sets MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and MLFLOW_TRACKING_TOKEN for the module). The token
// belongs to a service identity with no rights (empty scopes: GraphQL gives it nothing), is bound to the task and
// attempt (server/tracking/access.ts: it reads and logs into that task only, and logs only while that attempt
// runs), and expires after the task's timeout.
import { and, isNotNull, lt, type SQL, sql } from 'drizzle-orm';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { ensureIdentity, hashToken, mintToken } from '../auth/tokens';
import { jsonRows } from '../db/arrays';
import type { Db } from '../db/client';
import { tokens } from '../db/tables/tokens';
import { isUuid } from '../db/uuid';

/** The identity every task token belongs to: a viewer whose tokens carry no scopes. */
export const TASK_TRACKING_IDENTITY = 'atelier-task-tracking';
/** A task token outlives its task's timeout by this much (results may still be logged as the attempt ends). */
const GRACE_MS = 5 * 60_000;
/** A task without a timeout of its own: its token expires after this (plus the grace). */
const DEFAULT_TIMEOUT_MS = 24 * 3_600_000;

/**
 * Tokens minted for a batch of claims before they are answered, stored by the statement that answers them
 * (server/orchestrator/claims.ts): one statement per claim batch instead of two, on every chain edge.
 */
export interface ClaimTokens {
  /**
   * The insert, as a data-modifying CTE reading `claimed` (the claimed tasks' id, status, attempt, timeout_ms): only
   * the claims whose attempt is current get a row. A token stored for a claim that is then held ('later') is never
   * handed out: its secret stays in this process and is forgotten, so it authenticates nothing.
   */
  insert(claimed: SQL): SQL;
  /** The answers, those that run with their tokens. */
  attach(answers: ClaimAnswer[]): ClaimAnswer[];
  /** Called when the statement failed (the identity may have been deleted): it is made sure of again next time. */
  failed(): void;
}

type TokenRow = { name: string; hash: string; task_id: string; attempt: number };

/** Where a task token's row goes, and when it expires: after its task `t`'s timeout (read in the same statement) and a grace. */
const intoTokens = sql`insert into tokens (identity_id, name, hash, expires_at, scopes, task_id, task_attempt)`;
const expiresAfterTask = () =>
  sql`${new Date().toISOString()}::timestamptz + make_interval(secs => (coalesce(nullif(t.timeout_ms, 0), ${DEFAULT_TIMEOUT_MS}) + ${GRACE_MS}) / 1000.0)`;

/** The tokens' rows from `values`, each bound to its claim's attempt. */
const tokenInsert = (identityId: string, values: TokenRow[], tasks: SQL, current: boolean) => sql`
  ${intoTokens}
  select ${identityId}::uuid, v.name, v.hash, ${expiresAfterTask()}, '{}'::text[], v.task_id, v.attempt
  from ${jsonRows(values)} as v(name text, hash text, task_id uuid, attempt int)
  join ${tasks} t on t.id = v.task_id${current ? sql` and t.attempt = v.attempt and t.status in ('QUEUED', 'RUNNING')` : sql``}
  on conflict (hash) do nothing`;

/**
 * The tokens a dispatch stores for the attempts it reserves (server/orchestrator/reservations.ts), as the claim's insert
 * would: `tasks` is the dispatch's own CTE of the tasks it queued (id, attempt, timeout_ms), so each token is bound to
 * the attempt the dispatch queued.
 */
export const reservedTokenInsert = (identityId: string, values: { task_id: string; hash: string }[], tasks: SQL) => sql`
  ${intoTokens}
  select ${identityId}::uuid, 'task ' || t.id || ' attempt ' || t.attempt, v.hash, ${expiresAfterTask()}, '{}'::text[], t.id, t.attempt
  from ${jsonRows(values)} as v(task_id uuid, hash text)
  join ${tasks} t on t.id = v.task_id
  on conflict (hash) do nothing`;

const rowOf = (claim: AttemptClaim, token: string): TokenRow => ({
  name: `task ${claim.taskId} attempt ${claim.attempt}`,
  hash: hashToken(token),
  task_id: claim.taskId,
  attempt: claim.attempt,
});

/**
 * Task tokens for claims. Called with claims and their answers, it mints a token for each that runs and stores them
 * in one insert; its `prepare` mints them before the answers exist, for the claim query to store (ClaimTokens).
 */
export function taskTracking(db: Db, uriOf: () => string | undefined) {
  const uri = () => {
    try {
      return uriOf();
    } catch {
      return undefined; // not listening yet (http.url() throws): attempts run without MLflow variables
    }
  };
  // The service identity, made once: it is looked up by name only when this process has not made sure of it yet (or
  // the last insert failed, in case it was deleted meanwhile). Two statements per claim batch, on every chain edge.
  let identityId: string | undefined;
  const identity = async () => (identityId ??= (await ensureIdentity(db, { name: TASK_TRACKING_IDENTITY, kind: 'service', role: 'viewer' })).id);
  const attach = (base: string, claims: AttemptClaim[], minted: (string | undefined)[]) => (answers: ClaimAnswer[]) =>
    answers.map((answer, i) => {
      const token = minted[i];
      return token && answer.verdict === 'run' ? { ...answer, tracking: { uri: base, runId: claims[i]!.taskId, token } } : answer;
    });

  const mint = async (claims: AttemptClaim[], answers: ClaimAnswer[]): Promise<ClaimAnswer[]> => {
    const base = uri();
    // An attempt whose executor runs no module code (claim.tracking false) gets no token: nothing in it could use one.
    const wants = (claim: AttemptClaim, i: number) => answers[i]?.verdict === 'run' && claim.tracking !== false;
    const running = claims.filter(wants);
    if (!base || !running.length) return answers;
    const id = await identity();
    const minted = answers.map((_, i) => (wants(claims[i]!, i) ? mintToken() : undefined));
    // The claims answered together get their tokens in one insert: one statement per claim was, on the embedded
    // database, a quarter of the statements' time in a run of 2,000 no-op tasks (2,000 inserts, 3.2 s of 12.3 s).
    // A task that is gone gets no row: its token, never stored, authenticates nothing.
    const values = claims.flatMap((claim, i) => (minted[i] ? [rowOf(claim, minted[i]!)] : []));
    try {
      await db.execute(tokenInsert(id, values, sql`tasks`, false));
    } catch (error) {
      identityId = undefined;
      throw error;
    }
    return attach(base, claims, minted)(answers);
  };

  const prepare = async (claims: AttemptClaim[]): Promise<ClaimTokens | undefined> => {
    const base = uri();
    if (!base || !claims.length) return undefined;
    // Only claims that can name a task: a malformed one (answered `drop`) must not fail the statement for the batch;
    // and none for an executor that runs no module code (claim.tracking false): nothing in it could use one.
    const minted = claims.map((c) => (c.tracking !== false && isUuid(c.taskId) && Number.isInteger(c.attempt) ? mintToken() : undefined));
    const values = claims.flatMap((claim, i) => (minted[i] ? [rowOf(claim, minted[i]!)] : []));
    if (!values.length) return undefined;
    const id = await identity();
    return {
      insert: (claimed) => tokenInsert(id, values, claimed, true),
      attach: attach(base, claims, minted),
      failed: () => {
        identityId = undefined;
      },
    };
  };
  /** The identity and URL a dispatch stores tokens with (ClaimReservations), once both are known. */
  const known = () => {
    const base = uri();
    return identityId && base ? { identityId, uri: base } : undefined;
  };
  /** Makes sure of the identity before the first claim (a start-up's dispatches can then store tokens). */
  const ready = async () => void (await identity());
  return Object.assign(mint, { prepare, known, ready, uri });
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

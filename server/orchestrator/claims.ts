// Answering executor hosts' claims: before it runs an attempt, a host asks whether the attempt is still current;
// one query answers a whole batch of claims (see attempts.ts for the decision). A redelivered message the database
// lets run, or any claim of an attempt already seen to start, is held ('later') until the events published before
// its claim are recorded (attempts.ts#gateRedelivery). Each execution let run is numbered (protocol 4, task_executions),
// by the same statement, so two executions of one attempt never number their events alike, and given the attempt's
// key (protocol 6), drawn with the attempt's row at its first claim and kept by the row after.
import { type SQL, sql } from 'drizzle-orm';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { arrayOf, jsonRows } from '../db/arrays';
import { queryRows } from '../db/client';
import { preparedRows } from '../db/prepared';
import { isUuid } from '../db/uuid';
import type { TaskStatus } from '../vocabulary';
import { claimVerdict, gateRedelivery, type HeldClaim, numberExecutions } from './attempts';
import type { OrchestratorContext } from './context';

/**
 * One answer per claim, in order. A claim naming no task of this control plane is answered `drop`. `alongside`: a
 * data-modifying CTE run by the same statement, reading `claimed` (the claimed tasks' id, status, attempt and
 * timeout_ms): the claim server stores the attempts' MLflow tokens with it (server/tracking/task-tokens.ts).
 */
export async function answerClaims(ctx: OrchestratorContext, claims: AttemptClaim[], alongside?: (claimed: SQL) => SQL): Promise<ClaimAnswer[]> {
  const ids = [...new Set(claims.map((c) => c.taskId).filter((id) => isUuid(id)))];
  if (ctx.instruments) {
    const redelivered = claims.filter((c) => c.redelivered).length;
    if (redelivered) ctx.instruments.redelivered('task', redelivered);
  }
  // Claims that ask for an execution number, counted per task: two hosts may claim one attempt in one batch.
  const known = new Set(ids);
  const asking = [
    ...claims
      .filter((c) => c.execution === null && known.has(c.taskId) && Number.isInteger(c.attempt))
      .reduce((m, c) => m.set(c.taskId, { id: c.taskId, attempt: c.attempt, n: (m.get(c.taskId)?.n ?? 0) + 1 }), new Map<string, NumberRow>())
      .values(),
  ];
  const rows = ids.length
    ? // Prepared (its text one of two forms) unless it carries the tracking tokens' insert, whose text is the tokens'.
      await (alongside ? queryRows : preparedRows)<{ id: string; status: TaskStatus; attempt: number; executions: number | null; key: string | null }>(
        ctx.db,
        sql`with claimed as (select id, status, attempt, timeout_ms from tasks where id = any(${arrayOf(ids, 'uuid')}))
          ${asking.length ? sql`, numbered as (${numberingUpsert(asking)})` : sql``}
          ${alongside ? sql`, alongside as (${alongside(sql`claimed`)})` : sql``}
          select c.id, c.status, c.attempt, ${asking.length ? sql`n.executions, n.key` : sql`null::int as executions, null::uuid as key`} from claimed c
          ${asking.length ? sql`left join numbered n on n.id = c.id` : sql``}`,
      )
    : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const answers = await keyChecked(
    ctx,
    claims,
    numberExecutions(
      claims,
      claims.map((c) => claimVerdict(byId.get(c.taskId), c)),
      new Map(asking.map((a) => [a.id, { asked: a.n, count: byId.get(a.id)?.executions ?? undefined, key: byId.get(a.id)?.key ?? undefined }])),
    ),
    byId,
  );
  // A redelivered message the database lets run may have run already: hold it until the bus has nothing older. So
  // may one whose attempt the database saw start, or whose attempt had an execution numbered before this one,
  // whatever the bus counted: a bus can count a redelivery as a first delivery (the chaos suite saw JetStream do so).
  const gated = claims.flatMap((c, i) => {
    const answer = answers[i]!;
    if (answer.verdict !== 'run') return [];
    const earlier = c.execution === null && (answer.execution ?? 0) > 0;
    return c.redelivered || earlier || byId.get(c.taskId)?.status === 'RUNNING' ? [i] : [];
  });
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
    // Let run: the answer keeps its execution number.
    if (answer.verdict !== 'run') answers[i] = answer;
  }
  return answers;
}

/**
 * Claims asked again with the attempt's key (protocol 6; rare: after a slow download) that the answer lets run are
 * dropped as `superseded` when the database did not draw that key for the attempt: their claim was undone by a
 * restore, and the restored database hands the attempt to another execution. One small read, only for such claims.
 */
async function keyChecked(
  ctx: OrchestratorContext,
  claims: AttemptClaim[],
  answers: ClaimAnswer[],
  byId: Map<string, { status: TaskStatus; attempt: number }>,
): Promise<ClaimAnswer[]> {
  const keyed = claims.flatMap((c, i) => (c.attemptKey !== undefined && answers[i]!.verdict === 'run' ? [i] : []));
  if (!keyed.length) return answers;
  const pairs = keyed.map((i) => ({ task_id: claims[i]!.taskId, attempt: claims[i]!.attempt }));
  const drawn = await queryRows<{ task_id: string; attempt: number; key: string }>(
    ctx.db,
    sql`select x.task_id, x.attempt, x.key from task_executions x
        join ${jsonRows(pairs)} as v(task_id uuid, attempt int) on x.task_id = v.task_id and x.attempt = v.attempt`,
  );
  const keys = new Map(drawn.map((r) => [`${r.task_id}:${r.attempt}`, r.key]));
  const checked = [...answers];
  for (const i of keyed) {
    const c = claims[i]!;
    if (keys.get(`${c.taskId}:${c.attempt}`) !== c.attemptKey)
      checked[i] = { verdict: 'drop', reason: 'superseded', status: byId.get(c.taskId)?.status ?? 'QUEUED' };
  }
  return checked;
}

type NumberRow = {
  id: string;
  attempt: number;
  /** How many of the batch's claims of this attempt ask for a number. */
  n: number;
};

/**
 * Numbers the executions of current attempts (as `claimed` read them) whose claims ask for one: the attempt's count in
 * task_executions grows by its claims', and the statement returns the new count; concurrent claims of one attempt wait
 * for each other's row. In task id order, so two batches take the rows' locks in one order. A claim then held
 * ('later') has used a number up: numbers need only differ, not follow on.
 */
const numberingUpsert = (asking: NumberRow[]) => sql`
  insert into task_executions (task_id, attempt, count)
  select v.id, v.attempt, v.n from ${jsonRows(asking)} as v(id uuid, attempt int, n int)
  join claimed c on c.id = v.id and c.attempt = v.attempt and c.status in ('QUEUED', 'RUNNING')
  order by v.id
  on conflict (task_id, attempt) do update set count = task_executions.count + excluded.count
  returning task_id as id, count as executions, key`;

/** Holds are forgotten after this long (a host that stopped asking); a claim asked again later starts over. */
const HOLD_MEMORY_MS = 10 * 60_000;

function forgetOldHolds(held: Map<string, HeldClaim>, now: number): void {
  for (const [key, h] of held) if (now - h.since > HOLD_MEMORY_MS) held.delete(key);
}

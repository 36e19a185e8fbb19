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
    let redelivered = 0;
    for (const c of claims) if (c.redelivered) redelivered++;
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
  // Claims asked again with the attempt's key (protocol 6: every claim after a download) read the key drawn for the
  // task's current attempt in the same statement (one more index lookup per task, no statement more).
  const keyed = claims.some((c) => c.attemptKey !== undefined);
  const rows = ids.length
    ? // Prepared (its text one of four forms: asking or not, keyed or not) unless it carries the tracking tokens' insert, whose text is the tokens'.
      await (alongside ? queryRows : preparedRows)<ClaimedRow>(
        ctx.db,
        sql`with claimed as (${
          keyed
            ? sql`select t.id, t.status, t.attempt, t.timeout_ms, x.key as drawn from tasks t
                left join task_executions x on x.task_id = t.id and x.attempt = t.attempt where t.id = any(${arrayOf(ids, 'uuid')})`
            : sql`select id, status, attempt, timeout_ms from tasks where id = any(${arrayOf(ids, 'uuid')})`
        })
          ${asking.length ? sql`, numbered as (${numberingUpsert(asking)})` : sql``}
          ${alongside ? sql`, alongside as (${alongside(sql`claimed`)})` : sql``}
          select c.id, c.status, c.attempt, ${keyed ? sql`c.drawn` : sql`null::uuid as drawn`},
            ${asking.length ? sql`n.executions, n.key` : sql`null::int as executions, null::uuid as key`} from claimed c
          ${asking.length ? sql`left join numbered n on n.id = c.id` : sql``}`,
      )
    : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const answers = numberExecutions(
    claims,
    claims.map((c) => keyVerdict(byId.get(c.taskId), c) ?? claimVerdict(byId.get(c.taskId), c)),
    new Map(asking.map((a) => [a.id, { asked: a.n, count: byId.get(a.id)?.executions ?? undefined, key: byId.get(a.id)?.key ?? undefined }])),
  );
  // A redelivered message the database lets run may have run already: hold it until the bus has nothing older. So
  // may one whose attempt the database saw start, or whose attempt had an execution numbered before this one,
  // whatever the bus counted: a bus can count a redelivery as a first delivery (the chaos suite saw JetStream do so).
  const gated: number[] = [];
  for (let i = 0; i < claims.length; i++) {
    const c = claims[i]!;
    const answer = answers[i]!;
    if (answer.verdict !== 'run') continue;
    const earlier = c.execution === null && (answer.execution ?? 0) > 0;
    if (c.redelivered || earlier || byId.get(c.taskId)?.status === 'RUNNING') gated.push(i);
  }
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

type ClaimedRow = { id: string; status: TaskStatus; attempt: number; drawn: string | null; executions: number | null; key: string | null };

/**
 * A claim asked again with the attempt's key (protocol 6) whose key the database did not draw for the task's current
 * attempt (a restore undid its claim; the restored database hands the attempt to another execution): `drop`
 * (`superseded`), so the execution submits nothing. Undefined: the claim is decided as any other.
 */
function keyVerdict(task: ClaimedRow | undefined, claim: AttemptClaim): ClaimAnswer | undefined {
  if (claim.attemptKey === undefined || !task || task.attempt !== claim.attempt || task.drawn === claim.attemptKey) return undefined;
  return { verdict: 'drop', reason: 'superseded', status: task.status };
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

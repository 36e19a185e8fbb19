// Claims answered from the dispatch's own reservation (docs/executors.md, "Claims"): a small dispatch (a chain edge's,
// a startRun's of a few tasks) numbers execution 0 of each attempt it queues, and stores its MLflow token, in the
// statement that queues it; once that has committed this process keeps what it drew, and the attempt's first claim
// here is answered from it, with no query. The attempts' messages name this process (TaskMessage.claimAt), and hosts ask
// that first claim of it. Anything else a claim can be (asked again, redelivered, at another replica, after a restart,
// of an attempt this process has since seen end) is answered by the claim query as before.
import { randomBytes } from 'node:crypto';
import { type SQL, sql } from 'drizzle-orm';
import { type AttemptClaim, type ClaimAnswer, isTaskBatch, type TaskBatch, type TaskMessage } from '../../plugins/protocol';
import { hashToken, mintToken } from '../auth/tokens';
import type { FeedEventBody } from '../events/feed';
import { reservedTokenInsert } from '../tracking/task-tokens';

/** Dispatches of more tasks than this keep the claim's path: their claims come batched, one query for many. */
export const RESERVE_MAX_TASKS = 8;
/** A reservation no claim asked for in this long is forgotten (its host never asked, or asked another replica). */
export const RESERVATION_TTL_MS = 30_000;
/** Most reservations held at once; the oldest go first. */
const MAX_HELD = 10_000;
/** Most executor names remembered as running no module code. */
const MAX_UNTRACKED = 1_000;

/** What the dispatch drew for one attempt, kept once it committed. */
interface Reservation {
  runId: string;
  /** The task's executor, to learn from its claim whether its attempts want tokens. */
  executor: string | undefined;
  attempt: number;
  key: string;
  /** The attempt's MLflow token's secret, stored (hashed) by the dispatch; none when tracking was off then. */
  token: string | undefined;
  at: number;
}

export interface ClaimReservationsOptions {
  /**
   * The task tokens' identity and the URL MLflow clients log to, when both are known (server/tracking/task-tokens.ts
   * TaskTracking.known): the dispatch then stores a token per attempt. Undefined: tokens are off, or not ready yet.
   */
  tracking?: () => { identityId: string; uri: string } | undefined;
  now?: () => number;
  /** This process's replica id (default: random, made here): where hosts ask the claims it reserved. */
  replica?: string;
}

/** A row of the reservation's part of the dispatch's answer: an attempt numbered, or a token stored. */
export type ReservedRow = { task_id: string | null; attempt: number | null; count: number | null; key: string | null; tokened: boolean | null };

/** The statement parts one dispatch adds (queueAndWrite): CTEs reading `reserving` (id, attempt, timeout_ms). */
export interface ReservePlan {
  ctes: SQL[];
  /** Its rows, selected after the outbox's (id and msg_id null; task_id, attempt, count, key, tokened). */
  rows: SQL;
  /** Called with the statement's rows that are its own (before the commit). */
  drew(rows: ReservedRow[]): void;
  /** Called once the dispatch has committed: the reservations are kept from now. */
  committed(): void;
}

export class ClaimReservations {
  private readonly held = new Map<string, Reservation>();
  /** Executors whose last claim answered from a reservation asked for no token (Executor.tracking false, as noop). */
  private readonly untracked = new Set<string>();
  private readonly now: () => number;
  /** Subject-safe (hex), unique to this start: the claim server serves its own subject under it. */
  readonly replica: string;

  constructor(private readonly options: ClaimReservationsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.replica = options.replica ?? randomBytes(8).toString('hex');
  }

  /**
   * Where a dispatch of `tasks` attempts has their first claims asked (TaskMessage.claimAt): this replica when it
   * reserves them, undefined when it does not (too wide a dispatch). One rule with plan's, so a message names this
   * replica only when its attempt is reserved here (its message is made before the statement is).
   */
  claimAt(tasks: number): string | undefined {
    return tasks > 0 && tasks <= RESERVE_MAX_TASKS ? this.replica : undefined;
  }

  get size(): number {
    return this.held.size;
  }

  /**
   * The parts of a dispatch's statement that reserve its attempts (undefined for a dispatch too wide): execution 0
   * numbered by the claim's own upsert (an attempt numbered before keeps its count; it is not reserved) and, with
   * tracking on, a token per attempt, inserted by the claim's own insert.
   */
  plan(runId: string, taskIds: string[], messages: readonly { payload: TaskMessage | TaskBatch }[]): ReservePlan | undefined {
    if (!this.claimAt(taskIds.length)) return undefined;
    const executors = new Map(messages.flatMap((m) => (isTaskBatch(m.payload) ? m.payload.tasks : [m.payload]).map((t) => [t.taskId, t.executor] as const)));
    // No token for an attempt of an executor whose claims ask for none: it would be stored and never handed out.
    const wanting = taskIds.filter((id) => !this.untracked.has(executors.get(id) ?? ''));
    const tracking = wanting.length ? this.options.tracking?.() : undefined;
    const secrets = new Map(tracking ? wanting.map((id) => [id, mintToken()]) : []);
    const ctes = [
      sql`numbered as (insert into task_executions (task_id, attempt, count)
        select id, attempt, 1 from reserving order by id
        on conflict (task_id, attempt) do update set count = task_executions.count + 1
        returning task_id, attempt, count, key)`,
    ];
    if (tracking)
      ctes.push(
        sql`tokened as (${reservedTokenInsert(
          tracking.identityId,
          [...secrets].map(([id, secret]) => ({ task_id: id, hash: hashToken(secret) })),
          sql`reserving`,
        )} returning task_id)`,
      );
    let drawn: Reservation[] = [];
    let ids: string[] = [];
    return {
      ctes,
      rows: sql`select null::bigint as id, null::text as msg_id, task_id, attempt, count, key, false as tokened from numbered${
        tracking ? sql` union all select null::bigint, null::text, task_id, null::int, null::int, null::uuid, true from tokened` : sql``
      }`,
      drew: (rows) => {
        const at = this.now();
        // A token the insert did not store (its identity deleted meanwhile) is never handed out.
        const stored = new Set(rows.filter((r) => r.tokened).map((r) => r.task_id));
        const first = rows.filter((r) => !r.tokened && r.task_id && r.count === 1 && r.key);
        ids = first.map((r) => r.task_id!);
        drawn = first.map((r) => ({
          runId,
          executor: executors.get(r.task_id!),
          attempt: r.attempt!,
          key: r.key!,
          token: stored.has(r.task_id) ? secrets.get(r.task_id!) : undefined,
          at,
        }));
      },
      committed: () => {
        for (const [i, id] of ids.entries()) {
          this.held.delete(id); // kept in the order made, for forgetting the oldest first
          this.held.set(id, drawn[i]!);
        }
        this.forgetOld();
      },
    };
  }

  /**
   * Answers a claim from its attempt's reservation, using it up: only an attempt's first ask (no execution number, no
   * key, not redelivered), for the attempt reserved, whose tracking token (if it wants one) was stored. Undefined:
   * the claim goes to the query. `uri`: where the attempt's MLflow clients log (undefined: tracking is off now).
   */
  answer(claim: AttemptClaim, uri: string | undefined): Extract<ClaimAnswer, { verdict: 'run' }> | undefined {
    if (claim.execution !== null || claim.attemptKey !== undefined || claim.redelivered) return undefined;
    const held = this.held.get(claim.taskId);
    if (!held || held.attempt !== claim.attempt) return undefined;
    // Used up whatever comes of it: a second first ask of the attempt (a duplicate delivery) goes to the query.
    this.held.delete(claim.taskId);
    if (held.executor !== undefined) {
      if (claim.tracking !== false) this.untracked.delete(held.executor);
      else if (this.untracked.size < MAX_UNTRACKED) this.untracked.add(held.executor);
    }
    if (this.now() - held.at > RESERVATION_TTL_MS) return undefined;
    const wants = claim.tracking !== false && uri !== undefined;
    // Tracking came on since the dispatch: the query numbers and mints (execution 1, held until the backlog is recorded).
    if (wants && !held.token) return undefined;
    return {
      verdict: 'run',
      execution: 0,
      attemptKey: held.key,
      ...(wants ? { tracking: { uri: uri!, runId: claim.taskId, token: held.token! } } : {}),
    };
  }

  /**
   * Forgets the reservations a committed transaction of this process made void: a task's status changed (cancelled,
   * failed, retried, started, superseded: a new QUEUED attempt is reserved anew by its own dispatch), a run ended.
   */
  void(events: readonly FeedEventBody[]): void {
    if (!this.held.size) return;
    let ended: Set<string> | undefined;
    for (const e of events) {
      if (e.kind === 'task-status' && e.status !== 'QUEUED') this.held.delete(e.taskId);
      else if (e.kind === 'run-status' && e.status !== 'QUEUED' && e.status !== 'RUNNING') (ended ??= new Set()).add(e.runId);
    }
    if (ended) for (const [id, r] of this.held) if (ended.has(r.runId)) this.held.delete(id);
  }

  private forgetOld(): void {
    const now = this.now();
    for (const [id, r] of this.held) {
      if (this.held.size <= MAX_HELD && now - r.at <= RESERVATION_TTL_MS) break;
      this.held.delete(id);
    }
  }
}

/** The reserving CTE over a dispatch's queued and created tasks, as queueAndWrite names them. */
export const reservingFrom = (parts: ('queued' | 'created')[]) =>
  sql`reserving as (${sql.join(
    parts.map((p) => sql`select id, attempt, timeout_ms from ${sql.raw(p)}`),
    sql` union all `,
  )})`;

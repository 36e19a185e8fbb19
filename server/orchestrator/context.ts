// What every stage of the orchestrator is handed: its dependencies (database, feed, clock, limits, cache), and for
// work inside a transaction, the transaction and the effects it has produced so far, published once it commits.

import { eq, type SQL, sql } from 'drizzle-orm';
import type { ModelRegistrationRequest, TaskBatch, TaskMessage } from '../../plugins/protocol';
import { traceHop, traceTaskHop, tracing } from '../../plugins/trace';
import type { Grants, TokenScopes } from '../auth/ability';
import type { TaskCache } from '../cache/store';
import { commitBehind, type Db, queryRows, retryingTransaction, type Tx } from '../db/client';
import { builtOnce, preparedRows } from '../db/prepared';
import type { Identity } from '../db/tables/identities';
import { type Run, runs, type Task } from '../db/tables/runs';
import type { FeedEvent, FeedEventBody, RunFeed } from '../events/feed';
import type { PublishedRows } from '../events/outbox-relay';
import type { CatalogCeiling } from '../governance/catalog';
import { crashPoint } from '../lifecycle/crash-hook';
import type { TaskStatus } from '../vocabulary';
import type { PlanDefaults } from '../workflows/plan';
import type { HeldClaim } from './attempts';
import type { PoolBatchSizes } from './batch-sizes';
import type { VersionCache } from './known-facts';
import type { CutLogs } from './log-trim';
import type { RecordingGuesses } from './record-guesses';
import type { ClaimReservations } from './reservations';
import type { RunEdges } from './run-edges';
import type { StartGuesses } from './start-guesses';
import type { OrchestratorInstruments } from './step-metrics';
import { countCommitted } from './step-metrics';
import { versionUsageUpsert } from './version-usage';

/** The orchestrator's dependencies and settings, defaults applied. */
export interface OrchestratorContext {
  db: Db;
  feed: RunFeed;
  /** Called after a transaction that wrote outbox rows has committed. */
  onOutbox: () => void;
  /** Publishes a committed transaction's task messages at once (see OrchestratorOptions.publishCommitted). */
  publishCommitted: ((messages: CommittedMessage[]) => void) | undefined;
  /** Outbox rows of direct publishes the bus has taken, for the next enqueue to delete (OutboxRelay.takePublished). */
  takePublished: (() => PublishedRows | undefined) | undefined;
  defaults: PlanDefaults;
  now: () => Date;
  /** Most tasks queued or running at once per executor pool; pools not named are unlimited. */
  poolLimits: Record<string, number> | undefined;
  heartbeatTimeoutMs: number;
  /** Hosts known to have ended, whose attempts are lost without waiting for their silence (OrchestratorOptions.endedHosts). */
  endedHosts: { suffix: string; current: string } | undefined;
  deadlineGraceMs: number;
  /** How far the event recorder has got through the bus (Bus.eventBacklog); without it, stuck tasks are confirmed at once. */
  eventBacklog: (() => Promise<{ published: number; recorded: number }>) | undefined;
  /** Since when the bus holds the task messages published to it (Bus.taskStoreSince); without it, none is ever lost. */
  taskStoreSince: (() => Promise<Date>) | undefined;
  /** Which of the given attempts' messages the bus holds still (Bus.heldTaskMessages); without it, none is ever lost. */
  heldTaskMessages: ((wanted: ReadonlySet<string>) => Promise<Set<string>>) | undefined;
  /** Claims of redelivered attempts held until the events before them are recorded, by `taskId:attempt` (claims.ts). */
  heldClaims: Map<string, HeldClaim>;
  /** The task cache; without it every task executes. */
  cache: TaskCache | undefined;
  mayReuse: (identity: Identity | null, source: Run, grants?: Grants, scopes?: TokenScopes) => boolean;
  catalogCeiling: CatalogCeiling;
  /** Called after a transaction that recorded successes whose modules asked for model registrations has committed. */
  onRegistrations: ((requests: TaskRegistrations[]) => Promise<void>) | undefined;
  /** Most bytes of log lines kept per attempt (ATELIER_MAX_LOG_BYTES, plus room for a host's own lines: log-cap.ts). */
  maxLogBytes: number;
  /** Most log lines kept per attempt (ATELIER_MAX_LOG_LINES, plus room for a host's own lines: log-cap.ts). */
  maxLogLines: number;
  /** The attempts whose log this process knows to be cut (log-trim.ts): their lines are let go as they arrive. */
  cutLogs: CutLogs;
  /** The largest message the bus takes: a task message past it fails its task at dispatch (dispatch.ts). */
  maxMessageBytes: () => number;
  /** Module versions already read (immutable once published): dispatch reads each once per process, not per edge. */
  versions: VersionCache;
  /** What the last start by each workflow reference read after the workflow: the next sends it with the workflow's read. */
  startGuesses: StartGuesses;
  /** Which nodes wait on each task of the runs this process started: the recorder reads a task's children by key. */
  runEdges: RunEdges;
  /** How many tasks one bus message to a pool carries (protocol 3's TaskBatch): never more than its smallest live host runs. */
  batchSizes: PoolBatchSizes;
  /** The metrics a committed transaction adds to (step-metrics.ts); none without them. */
  instruments: OrchestratorInstruments | undefined;
  /** Small dispatches' reservations of their attempts' first claims (reservations.ts); none without it. */
  reservations: ClaimReservations | undefined;
  /** The runs whose recordings this process guesses the reads of, to record them in one round trip (record-guesses.ts). */
  recordGuesses: RecordingGuesses | undefined;
}

/** The model registrations one succeeded task's module asked for (progress line `register`). */
export interface TaskRegistrations {
  taskId: string;
  runId: string;
  attempt: number;
  requests: ModelRegistrationRequest[];
}

/** A task message (or a batch of them) written to the outbox, published straight after its transaction commits. */
export interface CommittedMessage {
  /** Its outbox row, deleted once the bus has it. */
  id: number;
  pool: string;
  msgId: string;
  payload: TaskMessage | TaskBatch;
  /** `payload`'s JSON, made once by dispatch (published as it is). */
  text?: string;
}

/** What one transaction produced, published after it commits. */
export interface Step {
  at: Date;
  /** `at` as its feed events say it, made once (taskStatusEvent): `toISOString` was ~0.4 µs a call, 2–3 a task. */
  atText?: string;
  /** Live events, stored with the transaction's changes and published once it has committed. */
  feed: FeedEventBody[];
  /** Run ends among `feed` sent before they were known to happen (settle.ts): stored only if the run's row shows them. */
  ifEnded: Set<FeedEventBody>;
  outbox: boolean;
  /** Task messages to publish right after the commit (their outbox rows are the fallback). */
  committed: CommittedMessage[];
  /** Outbox rows of earlier direct publishes this transaction deletes. */
  deletedPublished: PublishedRows[];
  /** Writes sent without waiting for their answer (writeBehind), awaited before the commit. */
  writes: Promise<unknown>[];
  /**
   * Work that may send more statements once a statement of its own has answered (a run's end: the webhooks' and the
   * triggers' lookups, then what they write): settled before the COMMIT is sent behind the feed's append.
   */
  chained: Promise<unknown>[];
  /** Model registrations of the tasks that succeeded in it, made once it has committed. */
  registrations: TaskRegistrations[];
  /** Lets the feed's reads of its runs go on once the registrations are made (set when there are some). */
  releaseFeed?: () => void;
  /** Outputs of the tasks that succeeded earlier in it, by outputKey(run, node): dispatch need not read them back. */
  outputs: Map<string, Record<string, unknown>>;
  /** Module versions the runs started in it have tasks pinned to, and how many of those runs (version-usage.ts). */
  versionsUsed: Map<string, number>;
  /** Tasks it completed from the cache, and the execution time they saved (the metrics'). */
  cacheHits: { count: number; savedMs: number };
  /** When the latest success it recorded was reported (epoch ms, the host's clock); 0 when it recorded none. */
  lastSuccessAt: number;
  /** Work started once it has committed, that nothing waits for (run-edges.ts learning a run's edges). */
  afterCommit: (() => void)[];
}

/** One transaction's work: the dependencies, the transaction, and what it has produced so far. */
export interface TxContext {
  ctx: OrchestratorContext;
  tx: Tx;
  step: Step;
}

/**
 * Runs `fn` in a transaction and publishes what it produced once it has committed. Writers take a run's row before its
 * tasks', and several runs in id order (docs/architecture.md, "Lock order"); a transaction Postgres still aborts as a
 * deadlock's victim (a circle no order rules out yet) is run again from a fresh step
 * (retryingTransaction), and its caller sees no error for it.
 */
export async function transact<T>(ctx: OrchestratorContext, fn: (tc: TxContext) => Promise<T>): Promise<T> {
  let step: Step | undefined;
  // Rows a try that rolled back was to delete go back to the relay (an idempotent delete: handing back rows that a
  // commit whose answer was lost did delete costs nothing).
  const rolledBack = () => {
    for (const rows of step?.deletedPublished.splice(0) ?? []) rows.rolledBack();
    step?.releaseFeed?.();
  };
  let result: T;
  let events: FeedEvent[];
  try {
    [result, events] = await retryingTransaction(ctx.db, async (tx) => {
      rolledBack();
      const current: Step = {
        at: ctx.now(),
        feed: [],
        ifEnded: new Set(),
        outbox: false,
        committed: [],
        deletedPublished: [],
        writes: [],
        chained: [],
        registrations: [],
        outputs: new Map(),
        versionsUsed: new Map(),
        cacheHits: { count: 0, savedMs: 0 },
        lastSuccessAt: 0,
        afterCommit: [],
      };
      step = current;
      try {
        const result = await fn({ ctx, tx, step: current });
        // Held from before the COMMIT: a subscriber reading the store sees the success no sooner than a live one.
        if (current.registrations.length) current.releaseFeed = ctx.feed.hold(current.feed.map((e) => e.runId));
        // The feed's append is the last statement: the COMMIT follows it on the connection at once (its answer is only
        // wanted after the commit), and the transaction fails with the append's or a write's error if one failed (one
        // that failed before sending anything rolls it back).
        let appendFailed = false;
        const appending = ctx.feed.append(tx, current.feed, current.ifEnded);
        appending.catch(() => (appendFailed = true));
        for (const work of current.chained) await work;
        // The usage rollup's rows are shared by every start of a module: written last, they are held only while it commits.
        if (current.versionsUsed.size) writeBehind({ ctx, tx, step: current }, versionUsageUpsert(current.versionsUsed, current.at), undefined, true);
        if (tracing())
          for (const e of current.feed) if ('taskId' in e && typeof e.taskId === 'string') traceTaskHop('control plane: commit sent', e.runId, e.taskId);
        commitBehind(tx, () => !appendFailed);
        const appended = await appending;
        for (const write of current.writes) await write;
        return [result, appended] as const;
      } catch (error) {
        // A write sent behind others fails them all (the transaction is aborted): its own error says why (and whether
        // it is a deadlock to retry), the others' only that the transaction was aborted.
        throw (await firstFailure([...current.writes, ...current.chained])) ?? error;
      }
    });
  } catch (error) {
    rolledBack();
    throw error;
  }
  const done = step!;
  if (tracing())
    for (const e of events) {
      const hop = e.kind === 'task-progress' ? 'control plane: progress committed' : 'control plane: committed';
      if ('taskId' in e && typeof e.taskId === 'string') traceTaskHop(hop, e.runId, e.taskId);
      else traceHop(hop, e.runId);
    }
  if (ctx.instruments) countCommitted(ctx.instruments, done, events);
  for (const rows of done.deletedPublished) rows.committed();
  if (done.committed.length) {
    crashPoint('tasks-committed');
    ctx.publishCommitted?.(done.committed);
  }
  if (done.outbox) ctx.onOutbox();
  // Before this transaction's own reservations are kept (afterCommit): a retry's new attempt is reserved after its old one is dropped.
  ctx.reservations?.void(done.feed);
  for (const work of done.afterCommit) work();
  // After afterCommit: a dispatch held there is then followed by what the rest of its transaction wrote.
  ctx.recordGuesses?.committed(done.feed);
  // Before the events go out (live, or read from the store on this replica): whoever sees a task succeed finds the
  // versions its module asked for registered.
  try {
    if (done.registrations.length && ctx.onRegistrations) await ctx.onRegistrations(done.registrations);
  } finally {
    done.releaseFeed?.();
  }
  ctx.feed.publish(events);
  return result;
}

/**
 * Sends a write whose answer nothing in the transaction waits for, and goes on: the statements after it follow it on
 * the transaction's connection without waiting for its round trip (postgres-js pipelines them; PGlite queues them),
 * and Postgres runs them in the order sent, so they see what it wrote. `transact` awaits it before committing and
 * fails with its error if it failed; `then` gets its rows. Statements sent after it must go through drizzle too
 * (`tx.execute`, `queryRows`, a query builder): they take the same number of steps to reach the connection, so none
 * can overtake it (test/db/write-behind.test.ts).
 */
export function writeBehind<T = Record<string, unknown>>(
  { tx, step }: TxContext,
  query: SQL,
  then?: (rows: T[]) => void,
  /** Sent as a prepared statement (`preparedRows`: its text one of a few fixed forms, every value a parameter). */
  prepared = false,
): void {
  const write = (prepared ? preparedRows<T>(tx, query) : queryRows<T>(tx, query)).then((rows) => then?.(rows));
  write.catch(() => undefined); // handled: transact awaits it
  step.writes.push(write);
}

/**
 * As `writeBehind`, for a statement already sent (a query built once, sent by calling its `then`): `transact` awaits it
 * before committing and fails with its error if it failed.
 */
export function sentBehind({ step }: TxContext, write: Promise<unknown>): void {
  write.catch(() => undefined); // handled: transact awaits it
  step.writes.push(write);
}

/** The error of the first of `writes` that failed, if one did. */
async function firstFailure(writes: Promise<unknown>[]): Promise<unknown> {
  for (const outcome of await Promise.allSettled(writes)) if (outcome.status === 'rejected') return outcome.reason;
  return undefined;
}

export const OPEN: TaskStatus[] = ['PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING'];
export const ACTIVE: TaskStatus[] = ['QUEUED', 'RUNNING'];

export const taskStatusEvent = (
  step: Step,
  t: Pick<Task, 'runId' | 'id' | 'node' | 'attempt'>,
  status: TaskStatus,
  reason: string | null = null,
  message: string | null = null,
) =>
  step.feed.push({
    kind: 'task-status',
    runId: t.runId,
    taskId: t.id,
    node: t.node,
    status,
    attempt: t.attempt,
    reason,
    message,
    at: (step.atText ??= step.at.toISOString()),
  });

/** The run's row, locked for the rest of the transaction: every change to a run's tasks happens under it. */
export async function lockRun(tx: Tx, runId: string): Promise<Run | undefined> {
  const [run] = await runLocked(tx, { id: runId });
  return run;
}

const runLocked = builtOnce<{ id: string }>()((tx) =>
  tx
    .select()
    .from(runs)
    .where(eq(runs.id, sql.placeholder('id')))
    .for('update'),
);

// The orchestrator: starts, clones, reruns and cancels runs; records what executors report (exactly once per task
// attempt and sequence number); moves tasks through their states (trigger rules, retries with backoff,
// concurrency limits); and, on a periodic sweep, retries what is due, fails over tasks whose host went silent,
// backs up deadlines, fills freed slots and admits queued runs. All state is in Postgres and every step is one
// transaction under the run's row lock that also writes the bus messages it implies (the outbox), so a crash at
// any point loses nothing and several replicas can work side by side. This file is the public interface and wires
// the stages together: start.ts, dispatch.ts, gates.ts, composite.ts, settle.ts, record-events.ts, cancel.ts, sweep.ts.

import type { SQL } from 'drizzle-orm';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../plugins/bus/payload-limit';
import type { Bus } from '../../plugins/bus/types';
import type { AttemptClaim, ClaimAnswer, ExecutorEvent } from '../../plugins/protocol';
import type { Grants, TokenScopes } from '../auth/ability';
import { readableBy } from '../cache/access';
import type { TaskCache } from '../cache/store';
import type { RunActor } from '../compute/cluster-access';
import { DEFAULT_CATALOG_CEILING, DEFAULT_HEARTBEAT_TIMEOUT_MS, DEFAULT_HOST_STALE_MS, DEFAULT_TASK_BATCH_MAX } from '../config/defaults';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import type { Run } from '../db/tables/runs';
import type { RunFeed } from '../events/feed';
import type { CatalogCeiling } from '../governance/catalog';
import type { Domain, Trigger } from '../vocabulary';
import type { PlanDefaults } from '../workflows/plan';
import { PoolBatchSizes } from './batch-sizes';
import { cancelRun } from './cancel';
import { answerClaims } from './claims';
import type { OrchestratorContext } from './context';
import { VersionCache } from './known-facts';
import { DEFAULT_MAX_LOG_BYTES, DEFAULT_MAX_LOG_LINES } from './log-cap';
import { CutLogs, trimDelivery } from './log-trim';
import { type RecordedEvents, recordEvents } from './record-events';
import { RecordingGuesses } from './record-guesses';
import type { ClaimReservations } from './reservations';
import { RunEdges, readPlan } from './run-edges';
import { cloneRun, rerunRun } from './start';
import { StartGuesses } from './start-guesses';
import { startRun } from './start-run';
import type { OrchestratorInstruments } from './step-metrics';
import { type SweepState, tick } from './sweep';

export interface StartRunInput {
  workflow: string; // name or id
  version?: number;
  parameters?: Record<string, unknown>;
  trigger: Trigger;
  /** Starting again with the same key returns the first run instead of starting a second. */
  idempotencyKey?: string;
  /** Module versions to use instead of what the spec names: `ns/name@version` replaces `ns/name` in every node. */
  useModules?: string[];
  /** Default: the workflow's domain. Cache entries never cross domains. */
  domain?: Domain;
  /** Execute cacheable tasks even when a result is cached, replacing the entries. */
  refreshCache?: boolean;
  /** Experimentation runs only: a private cache namespace, so trial results neither feed nor use the shared ones. */
  cacheNamespace?: string;
  /** Run the module nodes that name no hot cluster of their own on this one. */
  hotCluster?: string;
  /** Internal callers only (the scheduler): whom a run started without an identity acts for (a schedule's owners). */
  actingFor?: RunActor | null;
  /** The scopes of the token the starting identity came with: the run acts for no more than they allow. Default: unscoped. */
  scopes?: TokenScopes;
  /** The experiment to group the run in, by name (made on first use); default: the workflow's own. */
  experiment?: string;
  /** Higher dispatches first from a saturated pool (RUN_PRIORITY_MIN..MAX); default 0. */
  priority?: number;
  /** The run's time limit, overriding the spec's `timeoutSeconds` (more than 0, at most TIMEOUT_MAX_SECONDS). */
  timeoutSeconds?: number;
  /**
   * The caller's own checks of the workflow found (its name, the domain of the version started) and of the run's
   * domain, made before anything is written (in the run's transaction, or on the run an idempotency key returns):
   * throw to refuse. A request's checks, so that the workflow is read once.
   */
  authorize?: (workflow: { name: string; domain: Domain }, runDomain: Domain) => void;
}

export type RerunFrom = 'FAILED' | 'ALL' | 'NODES';
export interface RerunInput {
  from: RerunFrom;
  /** With `NODES`: the nodes to execute again (with everything downstream of them). */
  nodes?: string[];
  /** Swap the module of some nodes: node → `ns/name@tag-or-version`. Those nodes execute again. */
  modules?: Record<string, string>;
}

export interface Orchestrator {
  startRun(input: StartRunInput, identity: Identity | null): Promise<Run>;
  /** A new run of the same workflow version and pinned module versions, with some parameters changed. */
  cloneRun(runId: string, parameters: Record<string, unknown>, identity: Identity | null, scopes?: TokenScopes): Promise<Run>;
  /** A new run that reuses the source run's succeeded results and executes only what is asked. */
  rerunRun(runId: string, input: RerunInput, identity: Identity | null, scopes?: TokenScopes): Promise<Run>;
  cancelRun(runId: string, identity: Identity | null): Promise<Run>;
  /**
   * Records a batch of executor events; safe to call again with events already recorded. Returns the events it
   * accepted (stale reports, another execution of an attempt that already has its result, are refused) and of
   * those the starts and results of tasks on a hot cluster.
   */
  recordEvents(events: ExecutorEvent[]): Promise<RecordedEvents>;
  /** Lets go, as one bus message's events arrive, of the log lines no recording could keep (log-trim.ts). */
  admitEvents(events: ExecutorEvent[]): void;
  /** Whether each claimed attempt may run (see AttemptClaim in the protocol). */
  answerClaims(claims: AttemptClaim[], alongside?: (claimed: SQL) => SQL): Promise<ClaimAnswer[]>;
  /** One pass of the periodic work (due retries, lost hosts, deadlines, free slots, run admission). */
  tick(): Promise<void>;
}

export interface OrchestratorOptions {
  db: Db;
  feed: RunFeed;
  /** Called after a transaction that wrote outbox rows has committed. */
  onOutbox: () => void;
  /**
   * Publishes the task messages a transaction wrote to the outbox, right after it has committed (the outbox relay's
   * publishCommitted); their rows stay the fallback should that not happen. Without it the relay alone publishes.
   */
  publishCommitted?: OrchestratorContext['publishCommitted'];
  /** The rows of direct publishes the bus has taken, for the next enqueue to delete (the outbox relay's takePublished). */
  takePublished?: OrchestratorContext['takePublished'];
  defaults: PlanDefaults;
  now?: () => Date;
  /** Most tasks queued or running at once per executor pool. */
  poolLimits?: Record<string, number>;
  /** A running task whose host sent nothing for this long is presumed lost and retried. */
  heartbeatTimeoutMs?: number;
  /**
   * Hosts known to have ended, whose running attempts are lost at once rather than after `heartbeatTimeoutMs` of
   * silence: every host named `…suffix` but `current`. The embedded database is one process's at a time
   * (server/db/data-dir-lock.ts), so an embedded host of an earlier process on it lived and ended in that process: a
   * control plane stopped or killed mid-run and started again retries its tasks at once, not a minute later.
   */
  endedHosts?: { suffix: string; current: string };
  /**
   * How far the event recorder has got through the bus: a task is declared lost or past its deadline only once
   * every event published before it looked so has been recorded, so no result still on the bus is overtaken.
   */
  eventBacklog?: () => Promise<{ published: number; recorded: number }>;
  /** Since when the bus holds the task messages published to it (Bus.taskStoreSince): a task queued before lost its message. */
  taskStoreSince?: () => Promise<Date>;
  /** Which of the given attempts' messages the bus holds still (Bus.heldTaskMessages): a queued task's that it does not is lost. */
  heldTaskMessages?: (wanted: ReadonlySet<string>) => Promise<Set<string>>;
  /** How long past its own deadline a running task may go before the control plane times it out itself. */
  deadlineGraceMs?: number;
  /** What this process knows of its runs' edges (run-edges.ts); its own by default, read from `db`. */
  runEdges?: RunEdges;
  /** The task cache; without it every task executes. */
  cache?: TaskCache;
  /** Whether a run started by `identity` may reuse a result computed by `source` (default: its CASL ability reads it). */
  mayReuse?: (identity: Identity | null, source: Run, grants?: Grants, scopes?: TokenScopes) => boolean;
  /** What the interactive dataset catalog admits: a dataset a task's output puts outside it is withdrawn (default: CONFIDENTIAL, never PII). */
  catalogCeiling?: CatalogCeiling;
  /** Registers the model versions modules asked for, once their tasks' successes have committed (server/registry/from-tasks.ts). */
  onRegistrations?: OrchestratorContext['onRegistrations'];
  /** The largest message the bus takes (Bus.maxPayloadBytes; default DEFAULT_MAX_PAYLOAD_BYTES). */
  maxMessageBytes?: () => number;
  /** Most bytes of log lines recorded per attempt, whatever a host sends (ATELIER_MAX_LOG_BYTES; default DEFAULT_MAX_LOG_BYTES). */
  maxLogBytes?: number;
  /** Most log lines recorded per attempt (ATELIER_MAX_LOG_LINES; default DEFAULT_MAX_LOG_LINES). */
  maxLogLines?: number;
  /** Most tasks one bus message carries (default DEFAULT_TASK_BATCH_MAX; 1 while hosts below protocol 3 remain). */
  taskBatchMax?: number;
  /** The metrics its commits and claim answers add to (server/metrics/instruments.ts). */
  instruments?: OrchestratorInstruments;
  /** Where small dispatches keep their attempts' first claims for the claim server to answer (reservations.ts). */
  reservations?: ClaimReservations;
  /** Whether recordings of runs this process dispatched guess their reads, to take one round trip (record-guesses.ts; default true). */
  recordGuesses?: boolean;
}

/** What the sweep asks the bus: how far the recorder (`durable`) has got, since when it holds task messages, and which. */
export const busProbes = (bus: Pick<Bus, 'eventBacklog' | 'taskStoreSince' | 'heldTaskMessages'>, durable: string) => ({
  eventBacklog: () => bus.eventBacklog(durable),
  taskStoreSince: bus.taskStoreSince ? () => bus.taskStoreSince!() : undefined,
  heldTaskMessages: bus.heldTaskMessages ? (wanted: ReadonlySet<string>) => bus.heldTaskMessages!(wanted) : undefined,
});

export function createOrchestrator(options: OrchestratorOptions): Orchestrator {
  const ctx: OrchestratorContext = {
    db: options.db,
    feed: options.feed,
    onOutbox: options.onOutbox,
    publishCommitted: options.publishCommitted,
    takePublished: options.takePublished,
    defaults: options.defaults,
    now: options.now ?? (() => new Date()),
    poolLimits: options.poolLimits,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    endedHosts: options.endedHosts,
    deadlineGraceMs: options.deadlineGraceMs ?? 30_000,
    eventBacklog: options.eventBacklog,
    taskStoreSince: options.taskStoreSince,
    heldTaskMessages: options.heldTaskMessages,
    heldClaims: new Map(),
    cache: options.cache,
    mayReuse: options.mayReuse ?? readableBy,
    catalogCeiling: options.catalogCeiling ?? { ...DEFAULT_CATALOG_CEILING, deniedCategories: [...DEFAULT_CATALOG_CEILING.deniedCategories] },
    onRegistrations: options.onRegistrations,
    maxMessageBytes: options.maxMessageBytes ?? (() => DEFAULT_MAX_PAYLOAD_BYTES),
    maxLogBytes: options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES,
    maxLogLines: options.maxLogLines ?? DEFAULT_MAX_LOG_LINES,
    cutLogs: new CutLogs(),
    versions: new VersionCache(),
    startGuesses: new StartGuesses(),
    runEdges: options.runEdges ?? new RunEdges(undefined, readPlan(options.db)),
    batchSizes: new PoolBatchSizes(
      Math.max(1, Math.floor(options.taskBatchMax ?? DEFAULT_TASK_BATCH_MAX)),
      options.defaults.hostStaleMs ?? DEFAULT_HOST_STALE_MS,
    ),
    instruments: options.instruments,
    reservations: options.reservations,
    recordGuesses: options.recordGuesses === false ? undefined : new RecordingGuesses(),
  };
  const sweep: SweepState = { lastEviction: 0, suspects: new Map() };
  return {
    startRun: (input, identity) => startRun(ctx, input, identity),
    cloneRun: (runId, parameters, identity, scopes) => cloneRun(ctx, runId, parameters, identity, scopes),
    rerunRun: (runId, input, identity, scopes) => rerunRun(ctx, runId, input, identity, scopes),
    cancelRun: (runId, identity) => cancelRun(ctx, runId, identity),
    recordEvents: (events) => recordEvents(ctx, events),
    admitEvents: (events) => trimDelivery(events, { maxBytes: ctx.maxLogBytes, maxLines: ctx.maxLogLines }, ctx.cutLogs),
    answerClaims: (claims, alongside) => answerClaims(ctx, claims, alongside),
    tick: () => tick(ctx, sweep),
  };
}

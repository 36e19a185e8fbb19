// The wire protocol between the control plane and executor hosts: what travels on the TASKS stream
// (a task attempt, or a batch of them) and on the EVENTS stream (everything an attempt reports back).
import type { WireMetricValue } from './metric-values';

/**
 * The protocol's version. 1: one bus message per event. 2: a host may send several events of one attempt as one
 * message (an EventBundle), once its claim's answer says the control plane reads them (ClaimAnswer.protocol).
 * Upgrade control planes first: a host sends bundles only to a control plane that announced version 2.
 * 3: the control plane may send the tasks one transaction dispatched to a pool as one message (a TaskBatch); hosts
 * split it and claim each attempt on its own. Upgrade executor hosts first (docs/executors.md): a host below 3
 * cannot read a batch, so control planes run with ATELIER_TASK_BATCH_MAX=1 until every host is at 3.
 * 4: the control plane numbers each execution of an attempt it lets run (AttemptClaim.execution, the run answer's
 * `execution`), and the host numbers that execution's events from its block (SEQ_BLOCK). Either side may go first: a
 * host below 4 sends no `execution` and keeps numbering from its delivery count; a control plane below 4 answers none.
 * 5: a host may ask several claims in one request (ClaimBatch, answered by a ClaimBatchAnswer), once a claim's answer
 * says its control plane is at 5. Control planes at 5 serve batches on a subject of their own, so one below 5 never
 * sees one; a batch that gets no answer is asked again claim by claim. Either side may go first.
 * 6: a claim's run answer carries the attempt's key (ClaimAnswer.attemptKey), drawn at random once per attempt by the
 * control plane's database, and the host puts it on every event of that execution (EventBase.attemptKey). A keyed
 * report is recorded only if the database drew that key for that attempt: a database restored from a backup draws
 * new ones, so the reports of an execution let run in the history the restore undid are refused, though the
 * restored database hands out the same attempt numbers again. Either side may go first: a host below 6 sends no key,
 * and its reports are recorded as before; a control plane below 6 answers none. A cancel names the key of the attempt
 * it stops (CancelMessage.attemptKey), and the control plane tells the host of an execution whose report it refused as
 * stale to stop that execution alone (the `stale-execution` control topic): hosts below 6 stop attempts by number as
 * before and never read that topic.
 * 7: an EventBundle may hold the events of several attempts of one run (the host's combiner, plugins/host/
 * event-combiner.ts), under the id `<its first event's id>+<its events' count>`. A host combines only for a control
 * plane whose claim's answer said 7; one below 7 gets one message per attempt, as before. Upgrade control planes first
 * (a host at 7 needs nothing else: it reads the version from the answer).
 */
export const PROTOCOL_VERSION = 7;

/**
 * The first protocol version whose control planes read an EventBundle holding several attempts' events (the events of
 * one run that a host's attempts reported within one turn, as one message): control planes split any bundle event by
 * event, and since 7 nothing on them takes a bundle's events for one task's.
 */
export const COMBINED_EVENTS_PROTOCOL = 7;

/** The first protocol version whose control planes answer claims in batches (ClaimBatch). */
export const CLAIM_BATCH_PROTOCOL = 5;

/** Normalised terminal states of one task attempt, shared by every executor. */
export type TerminalState = 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';

/** One task attempt as an executor host receives it. Message id on the bus: `${taskId}:${attempt}`. */
export interface TaskMessage {
  taskId: string;
  runId: string;
  attempt: number;
  /** The node's name in the workflow spec. */
  node: string;
  pool: string;
  executor: string;
  module: {
    ref: string; // namespace/name@version
    digest: string; // sha256:<hex> of the artifact archive
    entrypoint: string;
    runtime: string;
  };
  parameters: Record<string, unknown>;
  /** Outputs of upstream tasks, by node name. */
  inputs: Record<string, Record<string, unknown>>;
  /** Wall-clock limit for this attempt; the host fails the attempt as TIMED_OUT past it. */
  timeoutMs: number;
  /** Per-executor settings, namespaced by executor name (STYLE.md §5). */
  settings: Record<string, unknown>;
  /** The hot cluster this attempt runs on (see HotClusterCommand): the executor skips provisioning. */
  hotCluster?: string;
  /** The datasets the module may read (only the permitted columns) and write, by the manifest's port names. */
  datasets?: {
    inputs: Record<string, { dataset: string; version: number; digest: string; columns: string[] }>;
    outputs: Record<string, { dataset: string }>;
  };
  /**
   * The models the module takes as inputs, by port, each pinned to one version when the run started: its files
   * (by content digest, fetched like the module's archive) under `models/<port>/` of the attempt directory.
   */
  models?: Record<string, { model: string; version: number; digest: string; files: { path: string; digest: string; size: number }[] }>;
  enqueuedAt: string;
  /**
   * The control-plane replica that reserved this attempt's first claim (server/orchestrator/reservations.ts): the host
   * asks that claim of it alone, and of any replica when it does not answer. Absent: ask any replica.
   */
  claimAt?: string;
  /** Set by the host from its claim's answer (never in the queued message): where the module logs MLflow data. */
  tracking?: TaskTracking;
  /** Set by the host from its claim's answer (never in the queued message): the control plane's protocol version. */
  protocol?: number;
  /** Set by the host from its claim's answer (never in the queued message): this execution's number (protocol 4). */
  execution?: number;
  /** Set by the host from its claim's answer (never in the queued message): the attempt's key (protocol 6). */
  attemptKey?: string;
  /** Set by the host from its claim's answer (never in the queued message): heartbeat at least this often. */
  heartbeatMs?: number;
}

/**
 * What a module needs to log into its own task with an MLflow client (MLFLOW_TRACKING_URI, MLFLOW_RUN_ID,
 * MLFLOW_TRACKING_TOKEN): a token that reaches this task's attempt only, while it runs, and expires after its timeout.
 */
export interface TaskTracking {
  uri: string;
  runId: string;
  token: string;
}

/** A module's request to register one of its outputs (or artifact folders) as a version of a model. */
export interface ModelRegistrationRequest {
  /** `namespace/name` of the registered model. */
  model: string;
  /** A task output's name or a folder of the task's logged artifacts. */
  output: string;
  flavor?: string | null;
  signature?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
}

/** Why an attempt ended, with enough detail to decide on a retry. */
export interface TaskOutcome {
  state: TerminalState;
  reason?: string;
  message?: string;
  exitCode?: number | null;
  /**
   * `false`: trying again cannot help (a missing entrypoint, an invalid image), so the task's retries are not
   * used. `true`: the failure is transient (infrastructure, preemption, suspected OOM). Unset: the task's retry
   * policy decides, as for an ordinary non-zero exit.
   */
  retryable?: boolean;
  /** The failure was the platform's, not the user's: it does not consume the user's retries. */
  systemFailure?: boolean;
  outputs?: Record<string, unknown>;
  /** Model versions the module asked to register (progress line `register`); the control plane registers them once
   * the task has succeeded, as the run's creator. */
  registrations?: ModelRegistrationRequest[];
  /** Time spent getting compute ready (unpacking and spawning, a cluster or pod starting) before the module
   * ran; 0 on a hot cluster. The rest of the attempt's duration is recorded as execution time. */
  provisioningMs?: number;
  /**
   * When the work itself ended (epoch ms; a local module's exit), where the executor knows it: the attempt's
   * duration ends there, not after the host has read and sent what the module reported (its last metric points).
   * The host takes it off the outcome before publishing it.
   */
  endedAt?: number;
}

/**
 * Each execution of an attempt numbers its events from a block of its own, `execution * SEQ_BLOCK` on, its execution
 * number handed out by the control plane with the claim's `run` answer (protocol 4: 0, 1, … per attempt, so two
 * executions of one attempt never share a seq, whatever the bus counted), and the control plane tells which execution
 * a report came from by `Math.floor(seq / SEQ_BLOCK)`. A host below 4, or one whose control plane answers no number
 * (below 4, or claims not verified), takes the block from the bus's delivery count instead, which a bus can get wrong
 * (a redelivery counted as a first delivery). An event's message id also names its execution
 * (plugins/host/reporter.ts), so the bus never drops one execution's event as a repeat of another's either.
 */
export const SEQ_BLOCK = 2 ** 32;

/**
 * One metric point as a host reports it. A metric event carries many (a training loop logging every step costs
 * one bus event per batch, not per point); its points are numbered `firstPoint`, `firstPoint + 1`, … in the order
 * the module reported them, from a counter of the attempt's execution (starting at its block, `execution * SEQ_BLOCK`),
 * so a redelivered event stores nothing twice. `step` is the module's (any integer, in any order; a point reported
 * without one gets its index among that metric's points); `at` is epoch milliseconds.
 */
export interface MetricPointReport {
  name: string;
  value: WireMetricValue;
  step: number;
  at: number;
}

interface EventBase {
  taskId: string;
  runId: string;
  attempt: number;
  /** Per-attempt sequence number: (taskId, attempt, seq) is the idempotency key of a recorded event. */
  seq: number;
  at: string;
  host: string;
  /** The attempt's key from the claim's answer (protocol 6): the report is recorded only under the attempt that drew it. */
  attemptKey?: string;
}

export type ExecutorEvent =
  | (EventBase & { kind: 'started'; handle: unknown })
  | (EventBase & { kind: 'heartbeat' })
  | (EventBase & { kind: 'progress'; fraction: number | null; message: string | null })
  | (EventBase & { kind: 'log'; stream: 'stdout' | 'stderr'; lines: string[] })
  | (EventBase & { kind: 'metric'; firstPoint: number; points: MetricPointReport[] })
  | (EventBase & { kind: 'result'; outcome: TaskOutcome; durationMs: number });

export type ExecutorEventKind = ExecutorEvent['kind'];

/**
 * Several task attempts of one pool in one bus message (protocol 3), in dispatch order: the tasks one transaction
 * dispatched cost one publish and one ack instead of one each. Its message id is `taskBatchMessageId` of its first
 * task and its size; a batch always fits the bus's payload limit (the control plane splits a larger one). Buses
 * hand its tasks to consumers as separate deliveries (plugins/bus/task-batch.ts); each is claimed on its own.
 */
export interface TaskBatch {
  tasks: TaskMessage[];
}

export const isTaskBatch = (message: unknown): message is TaskBatch =>
  typeof message === 'object' && message !== null && Array.isArray((message as Partial<TaskBatch>).tasks);

/**
 * Several events of one attempt in one bus message, in sequence order (protocol 2): a short attempt's start,
 * progress and result cost one publish and one ack instead of three. Its message id is its first event's. From
 * protocol 7 it may hold several attempts' events of one run, each attempt's in sequence order, under the id
 * `<first event's id>+<count>`. Buses hand its events to consumers as separate deliveries, so no consumer sees a bundle.
 */
export interface EventBundle {
  bundle: ExecutorEvent[];
}

export const isEventBundle = (message: unknown): message is EventBundle =>
  typeof message === 'object' && message !== null && Array.isArray((message as Partial<EventBundle>).bundle);

/**
 * A request from the control plane to stop an attempt, broadcast to every host. With `attemptKey` (protocol 6) it
 * names one execution: a host stops only the execution its claim's answer gave that key (or one it has no key for
 * yet, or whose control plane gave none), so an execution let run through a restore, under a key the database no
 * longer holds, is not stopped in place of the new execution of its attempt number, nor the other way round.
 */
export interface CancelMessage {
  taskId: string;
  attempt: number;
  reason: string;
  /** The key the control plane's database drew for the attempt; absent where it drew none yet (or is below 6). */
  attemptKey?: string;
  /**
   * The execution holding `attemptKey` reported under a key the database did not draw (a restore undid its claim):
   * stop it, and nothing else. Sent on the `stale-execution` control topic, which hosts below 6 never read, so a host
   * that keys nothing never stops the attempt's current execution for it.
   */
  stale?: true;
}

export const taskMessageId = (taskId: string, attempt: number) => `${taskId}:${attempt}`;

/** A batch's message id: unique, since an attempt is dispatched once, and the same whoever publishes the batch. */
export const taskBatchMessageId = (first: Pick<TaskMessage, 'taskId' | 'attempt'>, size: number) => `${taskMessageId(first.taskId, first.attempt)}+${size}`;

/**
 * Before running an attempt, a host asks the control plane whether the attempt is still current (request/reply on
 * the bus): a message redelivered after its task finished, or after the task moved on to a later attempt, must
 * not run again.
 */
export interface AttemptClaim {
  taskId: string;
  runId: string;
  attempt: number;
  host: string;
  /**
   * This delivery of the attempt's message is not its first (the bus redelivered it): an execution of the attempt
   * may already have run and reported, its events not yet recorded. Absent: a first delivery.
   */
  redelivered?: boolean;
  /** The attempt runs no module code that could log to MLflow (Executor.tracking false): mint it no token. */
  tracking?: false;
  /**
   * Protocol 4. `null`: number this execution (the run answer's `execution`). A number: the execution this host
   * already runs, asking again before it submits (after a download): it keeps its number, and none is used up.
   * Absent (a host below 4): no number is handed out.
   */
  execution?: number | null;
  /**
   * Protocol 6: the attempt's key from an earlier answer, sent when asking again with `execution`. A key the database
   * did not draw for the attempt (a restore undid its claim) is answered `drop` (`superseded`): the execution must not
   * submit what the restored database hands to another.
   */
  attemptKey?: string;
}

/**
 * The control plane's answer to a claim. `run`: the attempt is current. `drop`: it must not run (the host acks
 * the message and reports nothing): `finished` (the attempt already ended), `superseded` (the task is on a
 * later attempt) or `unknown` (no such task). A host that gets no answer runs nothing and asks again later.
 */
export type ClaimAnswer =
  /**
   * `protocol`: the control plane's PROTOCOL_VERSION (absent: 1). `execution`: this execution's number among the
   * attempt's, 0 for the first (protocol 4, for a claim that asked for one): its events are numbered from
   * `execution * SEQ_BLOCK`. `attemptKey`: the attempt's key (protocol 6), given with each number. `heartbeatMs`: the
   * longest the host may go without a heartbeat for this execution (a quarter of the control plane's heartbeat
   * timeout): a host beating less often than its control plane's timeout has its live attempts presumed lost.
   */
  | { verdict: 'run'; tracking?: TaskTracking; protocol?: number; execution?: number; attemptKey?: string; heartbeatMs?: number }
  | { verdict: 'drop'; reason: 'finished' | 'superseded' | 'unknown'; status?: string }
  /** Not yet: events published before the claim are still being recorded (a redelivery); ask again soon, run nothing. */
  | { verdict: 'later'; reason: 'recording' };

/**
 * Several claims in one request (protocol 5): the attempts a host was handed together (a task batch's) cost one
 * request and one answer instead of one each. Each claim is decided as it would be alone.
 */
export interface ClaimBatch {
  claims: AttemptClaim[];
}

/** The answers to a ClaimBatch, one per claim, in its order. */
export interface ClaimBatchAnswer {
  answers: ClaimAnswer[];
}

/**
 * What an executor host announces about itself every few seconds (broadcast, not durable): the control plane
 * keeps the latest per host and marks a host stale once its announcements stop.
 */
export interface HostHeartbeat {
  /** Unique per host process (a restart is a new id). */
  hostId: string;
  host: string;
  executors: string[];
  pools: string[];
  /** Most attempts the host runs at once, and how many run now. */
  capacity: number;
  running: number;
  /** GPUs the host can give a task (0: none); tasks asking for more GPUs are not routed to its pools. */
  gpus: number;
  /** Hot clusters this host keeps warm right now, and the executors here that can keep one. */
  hotClusters: string[];
  hotClusterExecutors: string[];
  /** Of those, the executors whose clusters are compute of their own that pulls the cluster's pool (Kubernetes pods). */
  remoteHotClusterExecutors?: string[];
  version: string;
  /** Stopping: it takes no new work and finishes what it runs (absent: a host from before this was said). */
  draining?: boolean;
  /** The host's PROTOCOL_VERSION (absent: below 3, so it cannot read task batches). */
  protocol?: number;
  startedAt: string;
  at: string;
}

/** The control plane asks the hosts of a pool to keep a hot cluster warm, or to let it go. Resent until the
 * hosts' heartbeats agree, so a host that starts later (or missed one) still converges. */
export interface HotClusterCommand {
  action: 'start' | 'end';
  name: string;
  executor: string;
  pool: string;
  /** Executor-specific: `{ workers }` for local, `{ clusterId }` for Databricks, `{ replicas }` for Kubernetes. */
  spec: Record<string, unknown>;
}

/** Best-effort broadcasts between the control plane and executor hosts, by topic. */
export interface ControlTopics {
  'host-heartbeat': HostHeartbeat;
  'hot-cluster': HotClusterCommand;
  /** Between control-plane replicas: model-registry events committed; read them (the message carries nothing else). */
  'registry-changed': { at: string };
  /** Between control-plane replicas: keys of live pages' state touched (server/events/live-changes.ts); no data. */
  'live-changed': { topic: 'deployments' | 'executors'; keys: string[]; origin: string };
  /** To executor hosts at 6: stop the execution holding this key, whose reports are refused as stale (CancelMessage.stale). */
  'stale-execution': CancelMessage & { attemptKey: string; stale: true };
}

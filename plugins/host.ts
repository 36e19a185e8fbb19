// The executor host runtime: takes task attempts from the bus for its pools, drives one executor per attempt
// (submit → wait → cancel → finalize), reports everything as events, and acks only once the result is published.
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import { BUS_DEFAULTS } from './bus/defaults';
import type { Bus, Delivery, Subscription } from './bus/types';
import type { CancelMessage, ExecutorEvent, HostHeartbeat, HotClusterCommand, TaskOutcome } from './protocol';
import { cancelled, failed, systemFailure as platformFailure, timedOut } from './outcomes';
import type { ExecutorRegistry } from './registry';
import type { AbortReason, Executor, TaskContext, TaskMessage } from './sdk';

/** Where the host gets module archives from. */
export interface ArtifactSource {
  /** Local path of the archive with this digest, already verified against it. */
  fetch(digest: string): Promise<string>;
}

export interface ExecutorHostOptions {
  bus: Bus;
  registry: ExecutorRegistry;
  /** Executor pools whose task queues this host consumes. */
  pools: string[];
  hostName?: string;
  artifacts: ArtifactSource;
  /** Parent of the per-attempt work directories. */
  workRoot: string;
  ackWaitMs?: number;
  heartbeatMs?: number;
  maxConcurrency?: number;
  logBatch?: { bytes: number; ms: number };
  /** Most log bytes published per attempt; past it one truncation notice is logged and the rest dropped. */
  maxLogBytes?: number;
  /** GPUs a task may use on this host (default 0): advertised so GPU tasks are routed to its pools. */
  gpus?: number;
  /** How often the host announces itself to the control plane (default 5 s). */
  announceMs?: number;
  /**
   * Run every attempt with this executor, whatever `task.executor` names: a kubernetes-gpu hot cluster's pods run
   * the cluster's tasks in-process with `local`. Checked against the registry at start.
   */
  executeWith?: string;
  /**
   * Hot clusters this host is part of by existing (a hot cluster's pod): listed in every heartbeat, which is what
   * marks them READY; never started or ended here.
   */
  holdsHotClusters?: string[];
  /** Where host-side problems go (a failed event publish, a failed workdir removal). Default: console.warn. */
  warn?: (message: string) => void;
}

export interface ExecutorHost {
  start(): Promise<void>;
  /** Stops consuming, stops running attempts without acking them (they are redelivered), closes executors. */
  stop(): Promise<void>;
  /** Attempts in progress on this host. */
  running(): number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type EventBody = DistributiveOmit<ExecutorEvent, 'taskId' | 'runId' | 'attempt' | 'seq' | 'at' | 'host'>;

type Stream = 'stdout' | 'stderr';

interface Attempt {
  key: string;
  task: TaskMessage;
  controller: AbortController;
  /** Calls the executor's `cancel` once; set once the attempt has a handle. */
  cancel?: () => void;
  /** The control plane's words when it asked for a cancel. */
  cancelNote?: string;
  /** The delivery was acked: a duplicate delivery of the same attempt may be acked too. */
  acked: boolean;
  /** Resolves once the attempt is fully settled (acked, nakked or left for redelivery). */
  done: Promise<void>;
}

const MIN_PROGRESS_INTERVAL_MS = 100; // at most ~10 progress events a second per attempt
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once past this; longer limits are treated as none
// Each redelivery numbers its events from a fresh block, so a re-run attempt never reuses the seq (and msgId)
// of events the previous delivery already published: those would be dropped as duplicates.
const SEQ_BLOCK = 2 ** 32;
const RESULT_PUBLISH_TRIES = 5;

const VERSION: string = createRequire(import.meta.url)('../package.json').version;

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const safePathPart = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

export function createExecutorHost(options: ExecutorHostOptions): ExecutorHost {
  const { bus, registry, artifacts } = options;
  const host = options.hostName ?? hostname();
  const ackWaitMs = options.ackWaitMs ?? BUS_DEFAULTS.ackWaitMs;
  const heartbeatEveryMs = Math.max(1, Math.min(options.heartbeatMs ?? 5_000, ackWaitMs / 3));
  const maxConcurrency = Math.max(1, options.maxConcurrency ?? availableParallelism());
  const logBatch = options.logBatch ?? { bytes: 64 * 1024, ms: 250 };
  const maxLogBytes = options.maxLogBytes ?? 10 * 1024 * 1024;
  const warn = options.warn ?? ((message: string) => console.warn(`[atelier host ${host}] ${message}`));
  const workRoot = path.resolve(options.workRoot);

  const attempts = new Map<string, Attempt>();
  /** Attempts holding a slot: an attempt gives its slot back just before its ack, since the bus may deliver the
   * next message as soon as it sees the ack. */
  let busy = 0;
  let subscriptions: Subscription[] = [];
  let cancelSubscription: Subscription | undefined;
  let clusterSubscription: Subscription | undefined;
  let announcer: NodeJS.Timeout | undefined;
  const hostId = randomUUID();
  const startedAt = new Date().toISOString();
  /** Hot clusters an executor here holds warm, by name. */
  const warm = new Map<string, Executor>();
  /** Hot clusters being started: a repeated start command meanwhile is ignored. */
  const starting = new Set<string>();
  let state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';

  function onCancel(message: CancelMessage) {
    const attempt = attempts.get(`${message.taskId}:${message.attempt}`);
    if (!attempt) return; // broadcast: the attempt runs on another host (or already ended)
    attempt.cancelNote ??= message.reason;
    abortAttempt(attempt, 'cancelled');
  }

  function announce() {
    const heartbeat: HostHeartbeat = {
      hostId,
      host,
      executors: registry.names(),
      pools: options.pools,
      capacity: maxConcurrency,
      running: attempts.size,
      gpus: options.gpus ?? 0,
      hotClusters: [...new Set([...warm.keys(), ...(options.holdsHotClusters ?? [])])],
      hotClusterExecutors: registry.names().filter((name) => registry.get(name).startHotCluster),
      remoteHotClusterExecutors: registry.names().filter((name) => registry.get(name).startHotCluster && registry.get(name).remoteHotClusters),
      version: VERSION,
      startedAt,
      at: new Date().toISOString(),
    };
    return bus.publishControl('host-heartbeat', heartbeat).catch((err) => warn(`announcing the host failed: ${errorMessage(err)}`));
  }

  /** Hot-cluster commands are broadcast to every host: a start concerns hosts serving the cluster's pool with its
   * executor; an end, whichever host holds the cluster. */
  async function onClusterCommand(command: HotClusterCommand) {
    // Held by existing (this host is one of the cluster's pods): the executor that made the pods owns its lifecycle.
    if (state !== 'running' || options.holdsHotClusters?.includes(command.name)) return;
    const held = warm.get(command.name);
    const named = registry.names().includes(command.executor) ? registry.get(command.executor) : undefined;
    // A remote cluster is its own compute: any host with the executor starts (idempotently) and ends it.
    const remote = named?.remoteHotClusters ? named : undefined;
    const executor = command.action === 'end' ? (held ?? remote) : options.pools.includes(command.pool) ? named : remote;
    if (!executor || (command.action === 'start' && (held || starting.has(command.name) || !executor.startHotCluster))) return;
    try {
      if (command.action === 'start') {
        starting.add(command.name);
        await executor.startHotCluster!({ name: command.name, pool: command.pool, spec: command.spec }).finally(() => starting.delete(command.name));
        warm.set(command.name, executor);
      } else {
        warm.delete(command.name);
        await executor.endHotCluster?.(command.name);
      }
      await announce(); // tell the control plane now rather than at the next beat
    } catch (err) {
      warn(`${executor.name}: hot cluster ${command.name}: ${command.action} failed: ${errorMessage(err)}`);
    }
  }

  function abortAttempt(attempt: Attempt, reason: AbortReason) {
    if (attempt.controller.signal.aborted) return;
    attempt.controller.abort(reason);
    attempt.cancel?.();
  }

  async function handleDelivery(delivery: Delivery<TaskMessage>) {
    const task = delivery.data;
    if (state !== 'running') {
      delivery.nak();
      return;
    }
    const key = `${task.taskId}:${task.attempt}`;
    const existing = attempts.get(key);
    if (existing) {
      // A redelivery of an attempt still running here (its ack-wait lapsed): the running one reports and acks;
      // this copy is acked with it, or left unacked if that one is.
      await existing.done;
      if (existing.acked) await delivery.ack().catch(() => undefined);
      return;
    }
    if (busy >= maxConcurrency) {
      // Several pools can together exceed the limit: hand the task to a host with room.
      delivery.nak(500);
      return;
    }
    let settle!: () => void;
    const attempt: Attempt = {
      key,
      task,
      controller: new AbortController(),
      acked: false,
      done: new Promise<void>((resolve) => (settle = resolve)),
    };
    attempts.set(key, attempt);
    busy++;
    let released = false;
    const release = () => {
      if (!released) busy--;
      released = true;
    };
    try {
      await runAttempt(attempt, delivery, release);
    } catch (err) {
      // runAttempt reports task problems itself; reaching here means the host could not (a bus failure).
      warn(`attempt ${key} failed in the host: ${errorMessage(err)}`);
      release();
      delivery.nak(1_000);
    } finally {
      release();
      attempts.delete(key);
      settle();
    }
  }

  async function runAttempt(attempt: Attempt, delivery: Delivery<TaskMessage>, release: () => void) {
    const { task, controller } = attempt;
    const { signal } = controller;
    const startedAt = Date.now();
    let seq = delivery.redeliveryCount * SEQ_BLOCK;
    const pending = new Set<Promise<unknown>>();
    let publishFailures = 0;

    const makeEvent = (body: EventBody): ExecutorEvent =>
      ({ ...body, taskId: task.taskId, runId: task.runId, attempt: task.attempt, seq: seq++, at: new Date().toISOString(), host }) as ExecutorEvent;
    const msgIdOf = (event: ExecutorEvent) => `${event.taskId}:${event.attempt}:${event.seq}`;
    // Events are published without waiting for the previous one (the bus keeps publish order per connection);
    // they are awaited together before the result.
    const publish = (body: EventBody) => {
      const event = makeEvent(body);
      const p = bus.publishEvent(event, msgIdOf(event)).catch((err) => {
        if (publishFailures++ === 0) warn(`publishing ${event.kind} event of ${attempt.key} failed: ${errorMessage(err)}`);
      });
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };

    let executor: Executor;
    try {
      executor = registry.get(options.executeWith ?? task.executor);
    } catch (err) {
      const outcome = failed('unknown-executor', `${errorMessage(err)} on host ${host}`, { retryable: false, systemFailure: false });
      await publishResult(makeEvent, msgIdOf, outcome, startedAt, signal);
      release();
      await delivery.ack();
      attempt.acked = true;
      return;
    }

    // Logs: batched per stream, capped per attempt.
    const logBuffers: Record<Stream, { lines: string[]; bytes: number }> = {
      stdout: { lines: [], bytes: 0 },
      stderr: { lines: [], bytes: 0 },
    };
    let logTimer: NodeJS.Timeout | undefined;
    let logBytes = 0;
    let logTruncated = false;
    let closed = false; // once the outcome is known, late reports from the executor are dropped
    const flushStream = (stream: Stream) => {
      const buffer = logBuffers[stream];
      if (buffer.lines.length === 0) return;
      publish({ kind: 'log', stream, lines: buffer.lines });
      logBuffers[stream] = { lines: [], bytes: 0 };
    };
    const flushLogs = () => {
      if (logTimer) clearTimeout(logTimer);
      logTimer = undefined;
      flushStream('stdout');
      flushStream('stderr');
    };
    const appendLog = (stream: Stream, line: string) => {
      const buffer = logBuffers[stream];
      const bytes = Buffer.byteLength(line) + 1;
      buffer.lines.push(line);
      buffer.bytes += bytes;
      if (buffer.bytes >= logBatch.bytes) flushStream(stream);
      else logTimer ??= setTimeout(flushLogs, logBatch.ms);
    };

    // Progress: coalesced so a chatty module costs at most ~10 events a second; the latest value wins.
    let lastProgressAt = 0;
    let pendingProgress: { fraction: number | null; message: string | null } | undefined;
    let progressTimer: NodeJS.Timeout | undefined;
    const flushProgress = () => {
      if (progressTimer) clearTimeout(progressTimer);
      progressTimer = undefined;
      if (!pendingProgress) return;
      publish({ kind: 'progress', ...pendingProgress });
      pendingProgress = undefined;
      lastProgressAt = Date.now();
    };

    const outputs: Record<string, unknown> = {};
    let artifactPath: Promise<string> | undefined;
    const workdir = path.join(workRoot, `${safePathPart(task.taskId)}-${task.attempt}`);

    const ctx: TaskContext = {
      signal,
      workdir,
      host,
      artifactPath() {
        artifactPath ??= artifacts.fetch(task.module.digest);
        return artifactPath;
      },
      log(stream, line) {
        if (closed || logTruncated) return;
        const s: Stream = stream === 'stderr' ? 'stderr' : 'stdout';
        const text = String(line);
        logBytes += Buffer.byteLength(text) + 1;
        if (logBytes > maxLogBytes) {
          logTruncated = true;
          appendLog('stderr', `[atelier] log output truncated: more than ${maxLogBytes} bytes for this attempt`);
          return;
        }
        appendLog(s, text);
      },
      progress(fraction, message) {
        if (closed) return;
        const f = typeof fraction === 'number' && Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : null;
        pendingProgress = { fraction: f, message: message ?? null };
        const wait = lastProgressAt + MIN_PROGRESS_INTERVAL_MS - Date.now();
        if (wait <= 0) flushProgress();
        else progressTimer ??= setTimeout(flushProgress, wait);
      },
      metric(metrics, step) {
        if (closed) return;
        const clean: Record<string, number> = {};
        for (const [name, value] of Object.entries(metrics ?? {})) if (typeof value === 'number') clean[name] = value;
        publish({ kind: 'metric', metrics: clean, step: typeof step === 'number' ? step : null });
      },
      output(name, value) {
        if (closed) return;
        outputs[String(name)] = value;
      },
    };

    // Heartbeats keep the delivery from being redelivered and tell the control plane the attempt is alive.
    const heartbeat = setInterval(() => {
      delivery.working();
      publish({ kind: 'heartbeat' });
    }, heartbeatEveryMs);

    const limitMs = task.timeoutMs;
    const timeout =
      typeof limitMs === 'number' && limitMs > 0 && limitMs <= MAX_TIMER_MS
        ? setTimeout(() => abortAttempt(attempt, 'timeout'), limitMs)
        : undefined;

    const systemFailure = (what: string, err: unknown): TaskOutcome =>
      platformFailure('executor-error', `${executor.name}: ${what} failed: ${errorMessage(err)}`);
    const logHostLine = (line: string) => {
      if (closed) publish({ kind: 'log', stream: 'stderr', lines: [`[atelier] ${line}`] });
      else appendLog('stderr', `[atelier] ${line}`);
    };

    let handle: unknown;
    let submitted = false;
    let outcome: TaskOutcome;
    try {
      await rm(workdir, { recursive: true, force: true }); // leftovers of an earlier delivery on this host
      await mkdir(workdir, { recursive: true });
      if (signal.aborted) {
        outcome = cancelled(String(signal.reason));
      } else {
        try {
          handle = await executor.submit(task, ctx);
          submitted = true;
        } catch (err) {
          outcome = systemFailure('submit', err);
        }
        if (submitted) {
          publish({ kind: 'started', handle: handle ?? null });
          let cancelCalled = false;
          attempt.cancel = () => {
            if (cancelCalled) return;
            cancelCalled = true;
            const reason = signal.reason as AbortReason;
            executor.cancel(handle, task, reason).catch((err) => logHostLine(`${executor.name}: cancel failed: ${errorMessage(err)}`));
          };
          if (signal.aborted) attempt.cancel(); // aborted while submit was in flight
          try {
            outcome = await executor.wait(handle, task, ctx);
            if (!outcome || typeof outcome.state !== 'string') throw new Error(`wait returned no outcome (${JSON.stringify(outcome)})`);
          } catch (err) {
            outcome = systemFailure('wait', err);
          }
        }
      }
    } catch (err) {
      outcome = systemFailure('preparing the attempt', err);
    }
    outcome = normalise(outcome!, signal, task, outputs, attempt.cancelNote);
    closed = true;
    clearInterval(heartbeat);
    if (timeout) clearTimeout(timeout);

    const shutdown = signal.aborted && signal.reason === 'shutdown';
    flushProgress();
    flushLogs();
    let resultPublished = false;
    if (!shutdown) {
      // Earlier events first, then the result: the result must not overtake the logs it concludes.
      await Promise.all([...pending]);
      resultPublished = await publishResult(makeEvent, msgIdOf, outcome, startedAt, signal);
    }

    try {
      await executor.finalize?.(submitted ? handle : undefined, task, outcome);
    } catch (err) {
      const event = makeEvent({ kind: 'log', stream: 'stderr', lines: [`[atelier] ${executor.name}: finalize failed: ${errorMessage(err)}`] });
      await bus.publishEvent(event, msgIdOf(event)).catch(() => undefined);
    }
    await Promise.all([...pending]);
    await rm(workdir, { recursive: true, force: true }).catch((err) => warn(`removing ${workdir} failed: ${errorMessage(err)}`));

    release();
    if (shutdown) {
      // Not acked: another host (or this one, restarted) runs the attempt again.
      delivery.nak();
    } else if (resultPublished) {
      await delivery.ack();
      attempt.acked = true;
    } else {
      delivery.nak(1_000);
    }
  }

  /** Publishes the result, retrying a little: an attempt whose result is lost would be re-run. */
  async function publishResult(
    makeEvent: (body: EventBody) => ExecutorEvent,
    msgIdOf: (event: ExecutorEvent) => string,
    outcome: TaskOutcome,
    startedAt: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const event = makeEvent({ kind: 'result', outcome, durationMs: Date.now() - startedAt });
    for (let attempt = 1; ; attempt++) {
      try {
        await bus.publishEvent(event, msgIdOf(event));
        return true;
      } catch (err) {
        if (attempt >= RESULT_PUBLISH_TRIES || state !== 'running' || (signal.aborted && signal.reason === 'shutdown')) {
          warn(`publishing the result of ${event.taskId}:${event.attempt} failed (${errorMessage(err)}); leaving it for redelivery`);
          return false;
        }
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  return {
    async start() {
      if (state !== 'idle') throw new Error(`executor host ${host} was already started`);
      if (options.pools.length === 0) throw new Error(`executor host ${host} has no pools to consume`);
      if (options.executeWith !== undefined && !registry.names().includes(options.executeWith)) {
        throw new Error(`executor host ${host}: executeWith names "${options.executeWith}", which is not among its executors (${registry.names().join(', ') || 'none'})`);
      }
      state = 'running';
      await mkdir(workRoot, { recursive: true });
      cancelSubscription = await bus.subscribeCancel(onCancel);
      clusterSubscription = await bus.subscribeControl('hot-cluster', (command) => void onClusterCommand(command));
      for (const pool of options.pools) {
        subscriptions.push(
          await bus.consumeTasks(pool, handleDelivery, { durable: `pool-${pool}`, ackWaitMs, maxInFlight: maxConcurrency }),
        );
      }
      // Announced once subscribed, so the control plane never routes to a host that could not yet take work.
      await announce();
      announcer = setInterval(() => void announce(), options.announceMs ?? 5_000);
      announcer.unref();
    },

    async stop() {
      if (state !== 'running') {
        state = 'stopped';
        return;
      }
      state = 'stopping';
      clearInterval(announcer);
      // Stop taking work and stop what runs at once, without awaiting the subscriptions first: a bus may wait
      // for handlers in flight before its stop() resolves.
      const stopping = subscriptions.map((s) => s.stop().catch((err) => warn(`stopping a subscription failed: ${errorMessage(err)}`)));
      subscriptions = [];
      const running = [...attempts.values()];
      for (const attempt of running) abortAttempt(attempt, 'shutdown');
      await Promise.all([...stopping, ...running.map((a) => a.done)]);
      await cancelSubscription?.stop().catch(() => undefined);
      await clusterSubscription?.stop().catch(() => undefined);
      // Remote clusters outlive this host: the next host with the executor takes them over.
      const held = [...warm].filter(([, e]) => !e.remoteHotClusters);
      warm.clear();
      await Promise.all(held.map(([name, e]) => e.endHotCluster?.(name).catch((err) => warn(`ending hot cluster ${name} failed: ${errorMessage(err)}`))));
      const executors = registry.names().map((name) => registry.get(name));
      await Promise.all(
        executors.map((e) => e.close?.().catch((err) => warn(`closing executor ${e.name} failed: ${errorMessage(err)}`))),
      );
      state = 'stopped';
    },

    running: () => attempts.size,
  };
}

/** Applies what the host knows better than the executor: why it aborted, and the outputs it collected. */
function normalise(
  outcome: TaskOutcome,
  signal: AbortSignal,
  task: TaskMessage,
  outputs: Record<string, unknown>,
  cancelNote: string | undefined,
): TaskOutcome {
  let result: TaskOutcome = { ...outcome };
  if (signal.aborted && result.state === 'CANCELLED') {
    if (signal.reason === 'timeout') {
      result = { ...result, ...timedOut(`exceeded its time limit of ${formatDuration(task.timeoutMs)} (timeoutMs ${task.timeoutMs})`) };
    } else if (signal.reason === 'shutdown') {
      result.reason = 'shutdown';
      result.message ??= 'executor host shut down';
    } else {
      result.reason = 'cancelled';
      const note = cancelNote ? `cancelled: ${cancelNote}` : 'cancelled on request';
      result.message = result.message ? `${note} (${result.message})` : note;
    }
  }
  if (Object.keys(outputs).length > 0 || result.outputs) result.outputs = { ...outputs, ...result.outputs };
  return result;
}

function formatDuration(ms: number) {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${+(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)} min`;
  return `${+(ms / 3_600_000).toFixed(1)} h`;
}

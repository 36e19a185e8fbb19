// The executor host runtime: takes task attempts from the bus for its pools, runs each through its lifecycle
// (attempt.ts: submit → wait → cancel → finalize, reported by reporter.ts), honours cancels, keeps hot clusters
// warm when the control plane asks, and announces itself; an attempt is acked only once its result is published.
// A batch of tasks (protocol 3) arrives as one delivery per task, each settled on its own; their claims go as one
// request where the control plane reads batches (protocol 5, claims.ts).
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import { BUS_DEFAULTS } from '../bus/defaults';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../bus/payload-limit';
import { isBatched } from '../bus/task-batch';
import type { Bus, Delivery, Subscription } from '../bus/types';
import { type CancelMessage, type HostHeartbeat, type HotClusterCommand, PROTOCOL_VERSION } from '../protocol';
import type { ExecutorRegistry } from '../registry';
import type { Executor, TaskMessage } from '../sdk';
import { ownedTempDir } from '../temp-dirs';
import { traceTaskHop } from '../trace';
import { type ArtifactSource, Attempt, type AttemptRuntime, abortAttempt, CLAIM_TIMEOUT_MS, claimAttempt, runAttempt } from './attempt';
import { MESSAGE_HEADER_BYTES } from './bundle';
import { RecentCancels, subscribeCancels } from './cancels';
import { createClaimAsker } from './claims';
import { createEventCombiner } from './event-combiner';

export type { ArtifactSource } from './attempt';

export interface ExecutorHostOptions {
  bus: Bus;
  registry: ExecutorRegistry;
  /** Executor pools whose task queues this host consumes. */
  pools: string[];
  hostName?: string;
  artifacts: ArtifactSource;
  /** Where the host makes its own folder (`host-<pid>-…`, removed when it stops) for its attempts' work directories. */
  workRoot: string;
  ackWaitMs?: number;
  heartbeatMs?: number;
  maxConcurrency?: number;
  /**
   * Most bytes of task messages one pool's subscription holds, taken off the bus and not yet acked (running, or waiting
   * for a slot), beside the count its slots allow; raised to one message of the bus's largest size. Default
   * BUS_DEFAULTS.hostTaskInFlightBytes (64 MiB).
   */
  maxInFlightBytes?: number;
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
  /**
   * Ask the control plane (AttemptClaim over the bus) whether each attempt is still current before running it, and
   * drop the ones that finished or were superseded (default true). Only a host with no control plane behind it
   * (the executor test kit, `atelier module run`) turns it off.
   */
  verifyClaims?: boolean;
  /**
   * How long `stop` lets attempts already running finish (and report their results) before it stops the rest and
   * hands them back for redelivery (default 0: at once). Nothing new is taken meanwhile.
   */
  stopGraceMs?: number;
  /** Where host-side problems go (a failed event publish, a failed workdir removal). Default: console.warn. */
  warn?: (message: string) => void;
  /**
   * How long an attempt's event message waits for others of its run to go with it (protocol 7, event-combiner.ts):
   * default 0, the current turn of the event loop.
   */
  combineEventsMs?: number;
}

export interface ExecutorHost {
  start(): Promise<void>;
  /**
   * Stops consuming, lets running attempts finish within `stopGraceMs`, stops the rest without acking them (they are
   * redelivered at once, to another host), closes executors.
   */
  stop(): Promise<void>;
  /** Attempts in progress on this host. */
  running(): number;
}

const VERSION: string = createRequire(import.meta.url)('../../package.json').version;

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function createExecutorHost(options: ExecutorHostOptions): ExecutorHost {
  const { bus, registry, artifacts } = options;
  const host = options.hostName ?? hostname();
  const ackWaitMs = options.ackWaitMs ?? BUS_DEFAULTS.ackWaitMs;
  const heartbeatEveryMs = Math.max(1, Math.min(options.heartbeatMs ?? 5_000, ackWaitMs / 3));
  const maxConcurrency = Math.max(1, options.maxConcurrency ?? availableParallelism());
  const maxInFlightBytes = options.maxInFlightBytes ?? BUS_DEFAULTS.hostTaskInFlightBytes;
  const logBatch = options.logBatch ?? { bytes: 64 * 1024, ms: 250 };
  const maxLogBytes = options.maxLogBytes ?? 10 * 1024 * 1024;
  const warn = options.warn ?? ((message: string) => console.warn(`[atelier host ${host}] ${message}`));
  const workRoot = path.resolve(options.workRoot);

  const attempts = new Map<string, Attempt>();
  /** Cancels of attempts not running here when they came (their messages may still come). */
  const recentCancels = new RecentCancels();
  /** Attempts holding a slot: an attempt gives its slot back just before its ack, since the bus may deliver the
   * next message as soon as it sees the ack. */
  let busy = 0;
  /** Batched tasks (protocol 3) waiting for a slot, woken one per slot given back. */
  const waiters: (() => void)[] = [];
  /** Executors that declared slots of their own (`Executor.maxConcurrency`): their attempts in flight, by name. */
  const ownSlots = new Map<string, { limit: number; busy: number }>();
  for (const name of options.executeWith !== undefined ? [options.executeWith] : registry.names()) {
    const limit = registry.names().includes(name) ? registry.get(name).maxConcurrency : undefined;
    if (typeof limit === 'number' && limit >= 1) ownSlots.set(name, { limit: Math.floor(limit), busy: 0 });
  }
  /**
   * What a pool's subscription may hold at once: the host's slots, plus the own slots of the executor the pool is
   * named after (a task's pool is its executor's name unless it names another). Other pools keep the host's count, so
   * a pool of local work never takes more than it can run and gives the rest back.
   */
  const inFlight = (pool: string) => maxConcurrency + (ownSlots.get(pool)?.limit ?? 0);
  let subscriptions: Subscription[] = [];
  let cancelSubscriptions: Subscription[] = [];
  let clusterSubscription: Subscription | undefined;
  let announcer: NodeJS.Timeout | undefined;
  const hostId = randomUUID();
  const startedAt = new Date().toISOString();
  /** Hot clusters an executor here holds warm, by name. */
  const warm = new Map<string, Executor>();
  /** Hot clusters being started: a repeated start command meanwhile is ignored. */
  const starting = new Set<string>();
  // draining: stop() waits for the attempts running (stopGraceMs), which report as usual; nothing new starts.
  let state: 'idle' | 'running' | 'draining' | 'stopping' | 'stopped' = 'idle';
  const runtime: AttemptRuntime = {
    bus,
    registry,
    host,
    artifacts,
    workRoot,
    executeWith: options.executeWith,
    heartbeatEveryMs,
    logBatch,
    maxLogBytes,
    warn,
    running: () => state === 'running' || state === 'draining',
    verifyClaims: options.verifyClaims ?? true,
    askClaim: createClaimAsker(bus, CLAIM_TIMEOUT_MS),
    // One for the host: the messages its attempts of one run send in the same turn go as one (protocol 7).
    combiner: bus.publishEvents
      ? createEventCombiner({
          bus,
          maxBytes: () => (bus.maxPayloadBytes?.() ?? DEFAULT_MAX_PAYLOAD_BYTES) - MESSAGE_HEADER_BYTES,
          windowMs: options.combineEventsMs,
        })
      : undefined,
  };

  function onCancel(attempt: Attempt, message: CancelMessage) {
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
      draining: state !== 'idle' && state !== 'running',
      protocol: PROTOCOL_VERSION,
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

  /**
   * A delivery of an attempt that already runs here (its ack-wait lapsed and the bus redelivered it): the running one
   * reports and acks; this copy is acked with it, or left unacked if that one is.
   */
  async function settledAsDuplicate(key: string, delivery: Delivery<TaskMessage>): Promise<boolean> {
    const existing = attempts.get(key);
    if (!existing) return false;
    await existing.done;
    if (existing.acked) await delivery.ack().catch(() => undefined);
    return true;
  }

  /** Waits until `free()`, keeping the delivery's message from being redelivered meanwhile; false when the host stops. */
  async function waitForSlot(delivery: Delivery<TaskMessage>, free: () => boolean): Promise<boolean> {
    const keepAlive = setInterval(() => delivery.working(), heartbeatEveryMs);
    try {
      while (state === 'running' && !free()) await new Promise<void>((resolve) => waiters.push(resolve));
    } finally {
      clearInterval(keepAlive);
    }
    if (state === 'running') return true;
    delivery.nak();
    return false;
  }

  /** Whether an attempt may take a slot: one of its executor's own (`mine`), else one of the host's. */
  function hasRoom(mine: { limit: number; busy: number } | undefined) {
    return (mine !== undefined && mine.busy < mine.limit) || busy < maxConcurrency;
  }

  async function handleDelivery(delivery: Delivery<TaskMessage>) {
    const task = delivery.data;
    traceTaskHop('host: task delivered', task.runId, task.taskId);
    if (state !== 'running') {
      delivery.nak();
      return;
    }
    const key = `${task.taskId}:${task.attempt}`;
    // Looked up first: most deliveries are no duplicate, and awaiting the check made a promise and a turn each.
    if (attempts.has(key) && (await settledAsDuplicate(key, delivery))) return;
    // An executor's own slots first; once they are full its attempts may take the host's, as any attempt does.
    const mine = ownSlots.get(options.executeWith ?? task.executor);
    if (!hasRoom(mine)) {
      if (!isBatched(delivery)) {
        // Several pools can together exceed the limit: hand the task to a host with room.
        delivery.nak(500);
        return;
      }
      // A batch's task waits here for a slot instead: handing it back would hold its whole message until every
      // other task of it has ended (plugins/bus/task-batch.ts), and the host's flow control counted it already.
      if (!(await waitForSlot(delivery, () => hasRoom(mine)))) return;
      if (await settledAsDuplicate(key, delivery)) return;
    }
    const own = mine && mine.busy < mine.limit ? mine : undefined;
    const attempt = new Attempt(key, task);
    attempts.set(key, attempt);
    if (own) own.busy++;
    else busy++;
    let released = false;
    const release = () => {
      if (!released) {
        if (own) own.busy--;
        else busy--;
        // The next batched task waiting for a slot; with executors' own slots in play the slot freed may not be the
        // one the first waiter can take, so they all look again.
        if (ownSlots.size) for (const wake of waiters.splice(0)) wake();
        else waiters.shift()?.();
      }
      released = true;
    };
    try {
      // A cancel that came before the delivery: its claim might still be answered run (RecentCancels says why).
      if (recentCancels.has(key)) {
        await delivery.ack();
        warn(`dropped ${key} without running it: cancelled before it was delivered`);
        return;
      }
      // Registered first, so a cancel that arrives while the claim is asked is not missed.
      if (await claimAttempt(runtime, delivery)) {
        if (state === 'running') await runAttempt(runtime, attempt, delivery, release);
        else delivery.nak();
      }
    } catch (err) {
      // runAttempt reports task problems itself; reaching here means the host could not (a bus failure).
      warn(`attempt ${key} failed in the host: ${errorMessage(err)}`);
      release();
      delivery.nak(1_000);
    } finally {
      release();
      attempts.delete(key);
      attempt.settle();
    }
  }

  return {
    async start() {
      if (state !== 'idle') throw new Error(`executor host ${host} was already started`);
      if (options.pools.length === 0) throw new Error(`executor host ${host} has no pools to consume`);
      if (options.executeWith !== undefined && !registry.names().includes(options.executeWith)) {
        throw new Error(
          `executor host ${host}: executeWith names "${options.executeWith}", which is not among its executors (${registry.names().join(', ') || 'none'})`,
        );
      }
      state = 'running';
      await mkdir(workRoot, { recursive: true });
      // A folder of this host's own under it, for its attempts' folders: two hosts given one work root (two `atelier
      // executor` started from one folder) both running one attempt (a redelivered message) never remove or mix each
      // other's; a gone host's folder is swept by the next host started there.
      runtime.workRoot = await ownedTempDir('host-', workRoot);
      cancelSubscriptions = await subscribeCancels(bus, (taskId, attempt) => attempts.get(`${taskId}:${attempt}`), onCancel, recentCancels);
      clusterSubscription = await bus.subscribeControl('hot-cluster', (command) => void onClusterCommand(command));
      for (const pool of options.pools) {
        subscriptions.push(await bus.consumeTasks(pool, handleDelivery, { durable: `pool-${pool}`, ackWaitMs, maxInFlight: inFlight(pool), maxInFlightBytes }));
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
      state = 'draining';
      void announce(); // the control plane shows it draining now, not at the next beat
      // Stop taking work at once, without awaiting the subscriptions first: a bus may wait for handlers in flight
      // before its stop() resolves.
      const stopping = subscriptions.map((s) => s.stop().catch((err) => warn(`stopping a subscription failed: ${errorMessage(err)}`)));
      subscriptions = [];
      for (const wake of waiters.splice(0)) wake(); // waiting batched tasks go back to the bus
      if (attempts.size && (options.stopGraceMs ?? 0) > 0)
        await settledWithin(
          [...attempts.values()].map((a) => a.done),
          options.stopGraceMs!,
        );
      state = 'stopping';
      clearInterval(announcer);
      const running = [...attempts.values()];
      for (const attempt of running) abortAttempt(attempt, 'shutdown');
      await Promise.all([...stopping, ...running.map((a) => a.done)]);
      await Promise.all(cancelSubscriptions.map((s) => s.stop().catch(() => undefined)));
      await clusterSubscription?.stop().catch(() => undefined);
      // Remote clusters outlive this host: the next host with the executor takes them over.
      const held = [...warm].filter(([, e]) => !e.remoteHotClusters);
      warm.clear();
      await Promise.all(held.map(([name, e]) => e.endHotCluster?.(name).catch((err) => warn(`ending hot cluster ${name} failed: ${errorMessage(err)}`))));
      const executors = registry.names().map((name) => registry.get(name));
      await Promise.all(executors.map((e) => e.close?.().catch((err) => warn(`closing executor ${e.name} failed: ${errorMessage(err)}`))));
      await rm(runtime.workRoot, { recursive: true, force: true }).catch((err) => warn(`removing ${runtime.workRoot} failed: ${errorMessage(err)}`));
      state = 'stopped';
    },

    running: () => attempts.size,
  };
}

/** Resolves when every one of `done` has, or after `ms`, whichever comes first. */
async function settledWithin(done: Promise<void>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(done), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

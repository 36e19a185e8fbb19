// The executor contract: a vitest suite every executor must pass, run through the real executor host on the
// in-process bus. Each executor maps four scenarios onto its backend (a child process, a stand-in's scripted run);
// the suite checks outcomes, streaming, cancel, timeout, idempotent submit and re-attach after a host restart, and
// prints the executor's overhead (submit → running → result).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryBus } from './bus/memory';
import type { Bus, Subscription } from './bus/types';
import { createExecutorHost, type ExecutorHost, type ExecutorHostOptions } from './host';
import { type ExecutorEvent, taskMessageId } from './protocol';
import { createExecutorRegistry } from './registry';
import type { Executor, TaskContext, TaskMessage } from './sdk';

/** What a scenario asks of the executor's backend. */
export type ContractScenario = 'succeed' | 'fail-permanent' | 'fail-retryable' | 'run-long';

/** The parts of a task message that make the backend behave as a scenario says. */
export interface ScenarioTask {
  parameters?: Record<string, unknown>;
  settings?: Record<string, unknown>;
  module?: Partial<TaskMessage['module']>;
}

export interface ContractSetup {
  /** The executor under test. */
  executor: Executor;
  /**
   * The task that makes the backend:
   * - `succeed`: log at least one line, report progress, record at least one output, and succeed;
   * - `fail-permanent`: fail in a way retrying cannot fix or the task's policy decides (`retryable` false or unset);
   * - `fail-retryable`: fail transiently (`retryable: true`, e.g. infrastructure);
   * - `run-long`: log and report progress, then run until stopped (longer than any test).
   */
  scenario(kind: ContractScenario): ScenarioTask | Promise<ScenarioTask>;
  /** Module archives the host can hand out (`ctx.artifactPath()`), by digest. */
  artifacts?: Record<string, string>;
  /**
   * How many pieces of external work were started since setup: runs created, processes launched. A submit that
   * adopts existing work must not add one.
   */
  submissions(): number | Promise<number>;
  /**
   * What a restarted host finds. `adopt` (default): the work outlives its host (a remote run), and the restarted
   * host's submit adopts it: one submission in all. `rerun`: the host's shutdown stops the work (a local child
   * process), and the restarted host starts it again: two submissions.
   */
  reattach?: 'adopt' | 'rerun';
  /**
   * The executor the restarted host uses, as a restarted process would build it (no memory of the first).
   * Default: the same instance, shared by both hosts (as when both hosts live in one process).
   */
  restartedExecutor?(): Executor;
  /** Attempt time limit for the timeout case: long enough for the work to start. Default 1500 ms. */
  timeoutMs?: number;
  /** Called after each case (stop stand-ins, remove files). */
  cleanup?(): Promise<void>;
}

export interface ContractOptions {
  /** Most time a case may take. Default 20 s. */
  caseTimeoutMs?: number;
}

const POOL = 'contract';
const WAIT_MS = 10_000;
const SETTLE_MS = 150; // after the expected count is reached, a duplicate would show up within this

type ResultEvent = Extract<ExecutorEvent, { kind: 'result' }>;

let taskCounter = 0;

/** Registers the contract suite for one executor; call it at the top level of a test file. */
export function executorContract(name: string, setup: () => ContractSetup | Promise<ContractSetup>, options: ContractOptions = {}) {
  const caseTimeout = options.caseTimeoutMs ?? 20_000;

  describe(`executor contract: ${name}`, { timeout: caseTimeout }, () => {
    let world: ContractWorld;
    beforeEach(async () => {
      world = await createContractWorld(await setup());
    });
    afterEach(async () => {
      await world.close();
    });

    it('succeeds, with logs, progress and outputs published before the result', async () => {
      await world.startHost('contract-host');
      const first = await world.timedRun('succeed');
      const { result, events } = first;
      expect(result.outcome.state, result.outcome.message).toBe('SUCCEEDED');
      expect(Object.keys(result.outcome.outputs ?? {}).length, 'outputs').toBeGreaterThan(0);
      const resultAt = events.indexOf(result);
      const firstLog = events.findIndex((e) => e.kind === 'log');
      const firstProgress = events.findIndex((e) => e.kind === 'progress');
      expect(firstLog, 'a log event before the result').toBeGreaterThanOrEqual(0);
      expect(firstLog).toBeLessThan(resultAt);
      expect(firstProgress, 'a progress event before the result').toBeGreaterThanOrEqual(0);
      expect(firstProgress).toBeLessThan(resultAt);
      expect(JSON.parse(JSON.stringify(first.started.handle)), 'the handle is plain JSON').toEqual(first.started.handle);
      await world.expectSubmissions(1);

      // Overhead: submit → running is until the executor's submit returned a handle (the `started` event); running →
      // result is until the result event. The median of a few runs, so one cold start does not dominate.
      const runs = [first, await world.timedRun('succeed'), await world.timedRun('succeed')];
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const toRunning = median(runs.map((r) => r.runningAt - r.submittedAt));
      const toResult = median(runs.map((r) => r.resultAt - r.runningAt));
      // The time the executor says went on getting compute ready (in submit for a local process, in wait for a remote
      // cluster), when it reports one.
      const provisioning = runs.map((r) => r.result.outcome.provisioningMs).filter((ms): ms is number => typeof ms === 'number');
      const provisioningNote = provisioning.length ? `; provisioning ${median(provisioning)} ms as the executor reported` : '';
      console.log(`testkit[${name}] overhead: submit→running ${toRunning} ms, running→result ${toResult} ms${provisioningNote} (median of ${runs.length})`);
    });

    it('fails permanently: FAILED, not marked retryable', async () => {
      const task = await world.task('fail-permanent');
      await world.startHost('contract-host');
      await world.publish(task);
      const { outcome } = await world.result(task.taskId);
      expect(outcome.state).toBe('FAILED');
      expect(outcome.retryable, 'retryable must be false or unset').not.toBe(true);
      expect(outcome.message, 'a message saying why').toEqual(expect.any(String));
    });

    it('fails transiently: FAILED and retryable', async () => {
      const task = await world.task('fail-retryable');
      await world.startHost('contract-host');
      await world.publish(task);
      const { outcome } = await world.result(task.taskId);
      expect(outcome.state).toBe('FAILED');
      expect(outcome.retryable).toBe(true);
      expect(outcome.message).toEqual(expect.any(String));
    });

    it('streams logs and progress while the work runs, before any result', async () => {
      const task = await world.task('run-long');
      await world.startHost('contract-host');
      await world.publish(task);
      await waitFor(() => world.eventsOf(task.taskId).some((e) => e.kind === 'log'), 'a log event while running');
      await waitFor(() => world.eventsOf(task.taskId).some((e) => e.kind === 'progress'), 'a progress event while running');
      expect(world.resultOf(task.taskId)).toBeUndefined();
      await world.bus.publishCancel({ taskId: task.taskId, attempt: task.attempt, reason: 'contract: end of the streaming case' });
      expect((await world.result(task.taskId)).outcome.state).toBe('CANCELLED');
    });

    it('cancels mid-run: CANCELLED, and the work is not started again', async () => {
      const task = await world.task('run-long');
      await world.startHost('contract-host');
      await world.publish(task);
      await world.running(task.taskId);
      const ctx = world.contextOf(task.taskId);
      expect(ctx.aborted, 'ctx.aborted while the work runs').toBe(false);
      await world.bus.publishCancel({ taskId: task.taskId, attempt: task.attempt, reason: 'contract: cancel mid-run' });
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
      expect(outcome.message).toContain('contract: cancel mid-run');
      // `aborted` is read first: it must not wait for something to have made the signal.
      expect({ aborted: ctx.aborted, signal: ctx.signal.aborted }, 'ctx.aborted and ctx.signal.aborted after the cancel').toEqual({
        aborted: true,
        signal: true,
      });
      await world.expectSubmissions(1);
    });

    it('times out: TIMED_OUT once the attempt outlives its limit', async () => {
      const task = await world.task('run-long', { timeoutMs: world.setup.timeoutMs ?? 1_500 });
      await world.startHost('contract-host');
      await world.publish(task);
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'TIMED_OUT', reason: 'timeout' });
    });

    it('survives a host restart: the redelivered attempt adopts its work (`rerun` executors: runs it once more)', async () => {
      const task = await world.task('run-long');
      await world.startHost('contract-host-a');
      await world.publish(task);
      const first = await world.running(task.taskId, 'contract-host-a');
      await world.stopHosts();
      expect(world.resultOf(task.taskId), 'a stopping host publishes no result').toBeUndefined();

      // The stopped host left the message unacked: the bus redelivers it to the restarted host.
      await world.startHost('contract-host-b', world.setup.restartedExecutor?.() ?? world.setup.executor);
      const second = await world.running(task.taskId, 'contract-host-b');
      if ((world.setup.reattach ?? 'adopt') === 'adopt') {
        expect(second.handle, 'the restarted host adopts the same work').toEqual(first.handle);
        await world.expectSubmissions(1);
      } else {
        await world.expectSubmissions(2);
      }
      await world.bus.publishCancel({ taskId: task.taskId, attempt: task.attempt, reason: 'contract: end of the re-attach case' });
      const result = await world.result(task.taskId);
      expect(result).toMatchObject({ host: 'contract-host-b', outcome: { state: 'CANCELLED' } });
    });

    it('submit is idempotent per attempt, and cancel accepts work that has ended', async () => {
      const { executor } = world.setup;
      const task = await world.task('run-long');
      const ctx = await world.directContext(task);
      const handle = await executor.submit(task, ctx);
      const again = await executor.submit(task, ctx);
      expect(again, 'the same attempt submitted twice gives the same handle').toEqual(handle);
      await world.expectSubmissions(1);
      const waiting = executor.wait(handle, task, ctx);
      await executor.cancel(handle, task, 'cancelled');
      await executor.cancel(handle, task, 'cancelled');
      const outcome = await waiting;
      expect(outcome.state).toBe('CANCELLED');
      await executor.finalize?.(handle, task, outcome);
      await executor.cancel(handle, task, 'cancelled'); // the work is gone: still fine
    });
  });
}

type ContractWorld = Awaited<ReturnType<typeof createContractWorld>>;

async function createContractWorld(setup: ContractSetup) {
  const bus: Bus = createMemoryBus();
  const workRoot = await mkdtemp(path.join(tmpdir(), 'atelier-contract-'));
  const events: ExecutorEvent[] = [];
  const arrivals = new Map<ExecutorEvent, number>();
  const collector: Subscription = await bus.consumeEvents(
    async (deliveries) => {
      for (const d of deliveries) {
        events.push(d.data);
        arrivals.set(d.data, Date.now());
        await d.ack();
      }
    },
    { durable: 'contract-collector' },
  );
  const hosts: ExecutorHost[] = [];
  /** The context the host handed each task's `wait` (the latest attempt's), for the cases that check it. */
  const contexts = new Map<string, TaskContext>();
  const controllers: AbortController[] = [];
  const artifacts = setup.artifacts ?? {};
  const resultOf = (taskId: string) => events.find((e): e is ResultEvent => e.kind === 'result' && e.taskId === taskId);
  const eventsOf = (taskId: string) => events.filter((e) => e.taskId === taskId);
  const arrivedAt = (event: ExecutorEvent) => arrivals.get(event) ?? Date.now();

  return {
    setup,
    bus,
    eventsOf,
    resultOf,

    contextOf(taskId: string): TaskContext {
      const ctx = contexts.get(taskId);
      if (!ctx) throw new Error(`contract: the host never called wait for ${taskId}`);
      return ctx;
    },

    async task(kind: ContractScenario, overrides: Partial<TaskMessage> = {}): Promise<TaskMessage> {
      const scenario = await setup.scenario(kind);
      const n = ++taskCounter;
      return {
        taskId: `contract-${n}-${Math.random().toString(36).slice(2, 8)}`,
        runId: `contract-run-${n}`,
        attempt: 1,
        node: `${kind.replace(/-/g, '_')}_${n}`,
        pool: POOL,
        executor: setup.executor.name,
        module: { ref: 'contract/module@1.0.0', digest: 'sha256:none', entrypoint: 'main', runtime: 'python3', ...scenario.module },
        parameters: scenario.parameters ?? {},
        inputs: {},
        timeoutMs: 60_000,
        settings: scenario.settings ?? {},
        enqueuedAt: new Date().toISOString(),
        ...overrides,
      };
    },

    async startHost(hostName: string, executor: Executor = setup.executor) {
      const options: ExecutorHostOptions = {
        bus,
        registry: createExecutorRegistry([watchingContexts(executor, contexts)]),
        pools: [POOL],
        hostName,
        artifacts: {
          async fetch(digest) {
            const found = artifacts[digest];
            if (!found) throw new Error(`the contract setup has no artifact ${digest}`);
            return found;
          },
        },
        workRoot: path.join(workRoot, hostName),
        ackWaitMs: 5_000,
        heartbeatMs: 1_000,
        logBatch: { bytes: 64 * 1024, ms: 20 },
        warn: () => undefined,
        // The kit plays the control plane's part itself: there is no one to claim attempts from.
        verifyClaims: false,
      };
      const host = createExecutorHost(options);
      await host.start();
      hosts.push(host);
      return host;
    },

    async stopHosts() {
      for (const host of hosts.splice(0)) await host.stop();
    },

    publish: (task: TaskMessage) => bus.publishTask(task.pool, task, taskMessageId(task.taskId, task.attempt)),

    /** Runs one task of a scenario on the started host, timing submit → started → result. */
    async timedRun(kind: ContractScenario) {
      const task = await this.task(kind);
      const submittedAt = Date.now();
      await this.publish(task);
      const result = await this.result(task.taskId);
      const events = eventsOf(task.taskId);
      const started = events.find((e): e is Extract<ExecutorEvent, { kind: 'started' }> => e.kind === 'started');
      if (!started) throw new Error(`contract: no started event for ${task.taskId}`);
      return { task, result, events, started, submittedAt, runningAt: arrivedAt(started), resultAt: arrivedAt(result) };
    },

    /** The `started` event of a host (the attempt's handle), once the work has shown signs of life. */
    async running(taskId: string, host?: string) {
      const started = await waitFor(
        () => events.find((e): e is Extract<ExecutorEvent, { kind: 'started' }> => e.kind === 'started' && e.taskId === taskId && (!host || e.host === host)),
        `the started event of ${taskId}${host ? ` on ${host}` : ''}`,
      );
      await waitFor(
        () => events.some((e) => e.taskId === taskId && e.host === started.host && (e.kind === 'log' || e.kind === 'progress')),
        `a log or progress event of ${taskId} on ${started.host}`,
      );
      return started;
    },

    async result(taskId: string) {
      return waitFor(() => resultOf(taskId), `the result of ${taskId}`, WAIT_MS);
    },

    /** Waits for `n` submissions, then a little longer to see that no more arrive. */
    async expectSubmissions(n: number) {
      const deadline = Date.now() + WAIT_MS;
      while ((await setup.submissions()) < n && Date.now() < deadline) await sleep(10);
      await sleep(SETTLE_MS);
      expect(await setup.submissions(), 'pieces of external work started').toBe(n);
    },

    /** A task context for calling hooks directly, as a host would build it. */
    async directContext(task: TaskMessage): Promise<TaskContext> {
      const controller = new AbortController();
      controllers.push(controller);
      const workdir = path.join(workRoot, 'direct', task.taskId);
      return {
        signal: controller.signal,
        get aborted() {
          return controller.signal.aborted;
        },
        workdir,
        host: 'contract-direct',
        async artifactPath() {
          const found = artifacts[task.module.digest];
          if (!found) throw new Error(`the contract setup has no artifact ${task.module.digest}`);
          return found;
        },
        log: () => undefined,
        progress: () => undefined,
        metric: () => undefined,
        output: () => undefined,
      };
    },

    async close() {
      for (const c of controllers) c.abort('shutdown');
      for (const host of hosts.splice(0)) await host.stop();
      await collector.stop();
      await bus.close();
      await setup.executor.close?.();
      await setup.cleanup?.();
      await rm(workRoot, { recursive: true, force: true });
    },
  };
}

/** The executor as it is, but for `wait`, which first keeps the context the host handed it by task. */
function watchingContexts(executor: Executor, contexts: Map<string, TaskContext>): Executor {
  return new Proxy(executor, {
    get(target, key, receiver) {
      if (key !== 'wait') return Reflect.get(target, key, receiver);
      return (handle: unknown, task: TaskMessage, ctx: TaskContext) => {
        contexts.set(task.taskId, ctx);
        return target.wait(handle, task, ctx);
      };
    },
  });
}

async function waitFor<T>(probe: () => T | undefined | null | false, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`contract: timed out waiting for ${what}`);
    await sleep(10);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

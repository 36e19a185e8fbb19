// The executor contract's world (testkit.ts runs its cases in it): the in-process bus, the real executor hosts it
// starts and stops, every event they publish as they arrived, the contexts the hosts handed the executor, and the
// task messages of each scenario.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { createMemoryBus } from './bus/memory';
import type { Bus, Subscription } from './bus/types';
import { createExecutorHost, type ExecutorHost, type ExecutorHostOptions } from './host';
import { type ExecutorEvent, taskMessageId } from './protocol';
import { createExecutorRegistry } from './registry';
import type { Executor, TaskContext, TaskMessage } from './sdk';
import type { ContractScenario, ContractSetup } from './testkit';

const POOL = 'contract';
const WAIT_MS = 10_000;
const SETTLE_MS = 150; // after the expected count is reached, a duplicate would show up within this

type ResultEvent = Extract<ExecutorEvent, { kind: 'result' }>;

let taskCounter = 0;

export type ContractWorld = Awaited<ReturnType<typeof createContractWorld>>;

export async function createContractWorld(setup: ContractSetup) {
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

export async function waitFor<T>(probe: () => T | undefined | null | false, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`contract: timed out waiting for ${what}`);
    await sleep(10);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

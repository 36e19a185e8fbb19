// The executor contract: a vitest suite every executor must pass, run through the real executor host on the
// in-process bus. Each executor maps four scenarios onto its backend (a child process, a stand-in's scripted run);
// the suite checks outcomes, streaming, cancel, timeout, idempotent submit and re-attach after a host restart, and
// prints the executor's overhead (submit → running → result). The world the cases run in is testkit-world.ts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Executor, TaskMessage } from './sdk';
import { type ContractWorld, createContractWorld, waitFor } from './testkit-world';

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

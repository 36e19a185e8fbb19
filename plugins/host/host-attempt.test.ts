import { describe, expect, it, vi } from 'vitest';
import type { Delivery } from '../bus/types';
import type { Executor, TaskMessage } from '../sdk';
import type { AttemptRuntime } from './attempt';
import { AttemptContext } from './attempt-context';
import { Attempt } from './host-attempt';
import type { Reporter } from './reporter';

const task = { taskId: 't', runId: 'r', attempt: 1, module: { digest: 'd' } } as TaskMessage;

function cancelling() {
  const calls: unknown[][] = [];
  const executor = { name: 'x', cancel: async (...args: unknown[]) => void calls.push(args) } as unknown as Executor;
  return { executor, calls };
}

describe('Attempt', () => {
  it('makes its signal at the first read, aborted with the reason already given when stopped before', () => {
    const attempt = new Attempt('t:1', task);
    attempt.abort('timeout');
    attempt.abort('cancelled'); // the first reason stays
    expect(attempt.abortReason).toBe('timeout');
    expect(attempt.signal.aborted).toBe(true);
    expect(attempt.signal.reason).toBe('timeout');
  });

  it('aborts a signal already read, and asks the executor to cancel once, whether stopped before or after submit returned', () => {
    const read = new Attempt('t:1', task);
    const signal = read.signal;
    const before = cancelling();
    read.submitted(before.executor, 'h1', { hostLine: () => undefined });
    read.abort('cancelled');
    read.abort('shutdown');
    expect(signal.aborted).toBe(true);
    expect(before.calls).toEqual([['h1', task, 'cancelled']]);

    const early = new Attempt('t:1', task);
    early.abort('shutdown');
    const after = cancelling();
    early.submitted(after.executor, 'h2', { hostLine: () => undefined });
    expect(after.calls).toEqual([['h2', task, 'shutdown']]);
  });

  it('answers aborted on its context from its state, making no signal, and its signal agrees once read', () => {
    const attempt = new Attempt('t:1', task);
    const ctx = new AttemptContext({ host: 'h' } as AttemptRuntime, attempt, {} as Delivery<TaskMessage>, { name: 'x' } as Executor, undefined, {} as Reporter);
    let made = 0;
    vi.stubGlobal(
      'AbortController',
      class extends AbortController {
        constructor() {
          super();
          made++;
        }
      },
    );
    try {
      expect(ctx.aborted).toBe(false);
      attempt.abort('cancelled');
      expect(ctx.aborted).toBe(true);
      expect(made, 'AbortControllers made').toBe(0);
      expect(ctx.signal.aborted).toBe(true);
      expect(made, 'AbortControllers made').toBe(1);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('resolves done once settled, for a waiter from before and one from after', async () => {
    const attempt = new Attempt('t:1', task);
    const waiting = attempt.done;
    attempt.settle();
    await expect(Promise.all([waiting, attempt.done])).resolves.toEqual([undefined, undefined]);
  });
});

describe('AttemptContext', () => {
  it('hands out its methods bound, so one passed on unbound still reports, and keeps outputs and registrations while open', () => {
    const reports: unknown[][] = [];
    let open = true;
    const reporter = {
      get open() {
        return open;
      },
      log: (...args: unknown[]) => reports.push(['log', ...args]),
      progress: (...args: unknown[]) => reports.push(['progress', ...args]),
      metric: (...args: unknown[]) => reports.push(['metric', ...args]),
      metricSeries: (...args: unknown[]) => reports.push(['metricSeries', ...args]),
    } as unknown as Reporter;
    const rt = { host: 'h' } as AttemptRuntime;
    const ctx = new AttemptContext(rt, new Attempt('t:1', task), {} as Delivery<TaskMessage>, { name: 'x' } as Executor, undefined, reporter);
    const { log, progress, metric, metricSeries, output, registerModel } = ctx;
    log('stdout', 'a line');
    progress(0.5, 'half');
    metric({ loss: 1 }, 3);
    metricSeries('loss', null, [1, 2]);
    output('o', 1);
    registerModel({ name: 'm' } as never);
    expect(ctx.log).toBe(log);
    expect(ctx.host).toBe('h');
    expect(() => ctx.workdir).toThrow(/workdir: false/);
    expect(reports).toEqual([
      ['log', 'stdout', 'a line'],
      ['progress', 0.5, 'half'],
      ['metric', { loss: 1 }, 3],
      ['metricSeries', 'loss', null, [1, 2]],
    ]);
    open = false;
    output('late', 2);
    registerModel({ name: 'late' } as never);
    expect(ctx.outputs).toEqual({ o: 1 });
    expect(ctx.registrations).toEqual([{ name: 'm' }]);
  });
});

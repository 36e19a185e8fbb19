// The no-op executor alone: its handle, and what `wait` answers, without a host.
import { describe, expect, it } from 'vitest';
import type { TaskContext, TaskMessage } from '../../plugins/sdk';
import { createNoopExecutor } from './index';

const task = { taskId: 't', runId: 'r', attempt: 1, parameters: {} } as unknown as TaskMessage;

function context(aborted = false) {
  const progress: [number | null | undefined, string | null | undefined][] = [];
  const outputs: Record<string, unknown> = {};
  const ctx = {
    aborted,
    signal: AbortSignal.abort('cancelled'),
    progress: (fraction: number | null | undefined, message?: string | null) => void progress.push([fraction, message]),
    output: (name: string, value: unknown) => void (outputs[name] = value),
  } as unknown as TaskContext;
  return { ctx, progress, outputs };
}

describe('noop executor', () => {
  it('hands back when it was submitted as a number of ms since the epoch (no ISO string made per attempt)', async () => {
    const noop = createNoopExecutor();
    const before = Date.now();
    const handle = await noop.submit(task, context().ctx);
    expect(handle).toEqual({ startedAt: expect.any(Number) });
    expect(handle.startedAt).toBeGreaterThanOrEqual(before);
    expect(handle.startedAt).toBeLessThanOrEqual(Date.now());
  });

  it('reports its progress and echoes the parameters, or answers CANCELLED once aborted', async () => {
    const noop = createNoopExecutor();
    const running = context();
    const withParameters = { ...task, parameters: { n: 1 } } as TaskMessage;
    expect(await noop.wait({ startedAt: 0 }, withParameters, running.ctx)).toMatchObject({ state: 'SUCCEEDED' });
    expect(running.progress).toEqual([[1, 'done']]);
    expect(running.outputs).toEqual({ echo: { n: 1 } });
    expect(await noop.wait({ startedAt: 0 }, task, context(true).ctx)).toMatchObject({ state: 'CANCELLED' });
  });
});

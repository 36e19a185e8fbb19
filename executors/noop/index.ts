// The `noop` executor: runs nothing and answers at once (or after a sleep), so benchmarks and tests measure
// the control plane and the host alone. Parameters: `fail: true` fails the task, `sleepMs` sleeps first.
import { cancelled, defineExecutor, type Executor, failed, succeeded, type TaskContext } from '../../plugins/sdk';

export interface NoopExecutorOptions {
  /** Sleep this long in every `wait` (abortable). */
  delayMs?: number;
}

export interface NoopHandle {
  /** When `submit` ran, in ms since the epoch: a number, not an ISO string, whose formatting was ~2 µs of S1's host a task. */
  startedAt: number;
}

export function createNoopExecutor(options: NoopExecutorOptions = {}): Executor<NoopHandle> {
  const delayMs = options.delayMs ?? 0;

  return defineExecutor<NoopHandle>({
    name: 'noop',
    // Runs nothing and writes nothing: no work directory, and its attempts need none of the host's CPU slots.
    workdir: false,
    // Nor does it run module code that could log to MLflow: its claims need no task token.
    tracking: false,
    maxConcurrency: 256,

    async submit() {
      return { startedAt: Date.now() };
    },

    async wait(_handle, task, ctx) {
      ctx.progress(1, 'done');
      const sleepMs = task.parameters.sleepMs;
      const slept = (await sleep(delayMs, ctx)) && (typeof sleepMs === 'number' ? await sleep(sleepMs, ctx) : true);
      if (!slept) return cancelled(String(ctx.signal.reason ?? 'cancelled'));
      if (task.parameters.fail === true) {
        return failed('asked-to-fail', 'asked to fail');
      }
      ctx.output('echo', task.parameters);
      return succeeded();
    },

    // Nothing runs outside `wait`; the host's abort signal already ends its sleep.
    async cancel() {},
  });
}

/** Sleeps `ms`; false when the attempt was aborted first. */
function sleep(ms: number, ctx: TaskContext): Promise<boolean> {
  // `aborted`, not `signal.aborted`: a zero-length sleep then makes no signal (most attempts never read it).
  if (ctx.aborted) return Promise.resolve(false);
  if (!(ms > 0)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}

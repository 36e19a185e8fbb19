// One worker thread for work that may run long on what users send (YAML parses, workflow conditions over task
// outputs): the event loop stays free, and a call past its deadline ends the thread (the next call starts a fresh one)
// instead of holding every later call. Calls go to the thread in turn. The worker answers `{ id, value }` or
// `{ id, error: { name, message, code } }` for each `{ id, ...payload }` it is sent.
import { type ResourceLimits, Worker } from 'node:worker_threads';

/** A call's failure: the worker's own error carried over (`name`, `code`), or the thread's deadline or end. */
export class ThreadCallError extends Error {
  constructor(
    message: string,
    readonly errorName: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ThreadCallError';
  }
  get timedOut(): boolean {
    return this.code === 'DEADLINE';
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

type Answer = { id: number; value?: unknown; error?: { name: string; message: string; code?: string } };

class Thread {
  readonly pending = new Map<number, Pending>();
  private readonly worker: Worker;
  private nextId = 0;

  constructor(
    script: URL,
    resourceLimits: ResourceLimits | undefined,
    private readonly onGone: (thread: Thread) => void,
  ) {
    this.worker = new Worker(script, { resourceLimits });
    this.worker.unref(); // a worker thread never keeps the process alive
    this.worker.on('message', ({ id, value, error }: Answer) => {
      const p = this.settle(id);
      if (!p) return;
      if (error) p.reject(new ThreadCallError(error.message, error.name, error.code));
      else p.resolve(value);
    });
    // Out of memory (resourceLimits) ends the thread with an error: every call it owed fails with it.
    this.worker.on('error', (error) => this.end(error));
    this.worker.on('exit', (code) => this.end(new Error(`exit code ${code}`)));
  }

  call(payload: Record<string, unknown>, deadlineMs: number, what: string): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // This call holds the thread and every call after it: end the thread, the next call starts another.
        this.settle(id)?.reject(new ThreadCallError(`${what} took longer than ${deadlineMs / 1000} s`, 'Error', 'DEADLINE'));
        this.end(new Error(`${what} ran past its deadline`));
      }, deadlineMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.worker.postMessage({ ...payload, id });
    });
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  private end(error: Error & { code?: string }) {
    this.onGone(this);
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(new ThreadCallError(`the worker thread stopped: ${error.message}`, 'Error', error.code));
    void this.worker.terminate();
  }
}

/** A lazily started worker thread running `script`, restarted after a call that ran past its deadline or crashed it. */
export class DeadlineThread {
  private current: Thread | null = null;

  constructor(
    private readonly script: URL,
    private readonly what: string,
    private readonly resourceLimits?: ResourceLimits,
  ) {}

  /** Sends `payload` to the thread; rejects with a ThreadCallError. */
  call(payload: Record<string, unknown>, deadlineMs: number): Promise<unknown> {
    this.current ??= new Thread(this.script, this.resourceLimits, (gone) => {
      if (this.current === gone) this.current = null;
    });
    return this.current.call(payload, deadlineMs, this.what);
  }
}

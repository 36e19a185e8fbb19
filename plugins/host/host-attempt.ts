// An attempt as the host holds it while it runs: which one it is, how it is stopped (the executor's cancel once it
// has a handle, and an abort signal made only when something reads it), and when it is settled. A class, its methods
// shared: ~400 attempts are in flight on a busy host and each outlives a scavenge, so what one holds is copied and
// promoted with it (docs/performance.md, session 32); most attempts are never stopped and never waited for.
import type { AbortReason, Executor, TaskMessage } from '../sdk';
import type { Reporter } from './reporter-types';

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class Attempt {
  /** The delivery was acked: a duplicate delivery of the same attempt may be acked too. */
  acked = false;
  /** The control plane's words when it asked for a cancel. */
  cancelNote: string | undefined = undefined;
  private reason: AbortReason | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  /** Set once submit returned: the executor is asked to cancel this handle when the attempt is stopped, once. */
  private executor: Executor | undefined = undefined;
  private handle: unknown = undefined;
  /** Where a failed cancel is said (the attempt's log). */
  private reporter: Pick<Reporter, 'hostLine'> | undefined = undefined;
  private cancelAsked = false;
  private settled = false;
  private whenDone: Promise<void> | undefined = undefined;
  private resolveDone: (() => void) | undefined = undefined;

  constructor(
    readonly key: string,
    readonly task: TaskMessage,
  ) {}

  /** Why the attempt was stopped; undefined while it was not. */
  get abortReason(): AbortReason | undefined {
    return this.reason;
  }

  /** The executor's signal (TaskContext.signal): made at the first read, aborted already if the attempt was stopped. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Stops the attempt: aborts its signal and asks the executor to cancel (once it has a handle). The first reason stays. */
  abort(reason: AbortReason) {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
    this.cancelExecutor();
  }

  /** Submit returned `handle`: a stop from now on (or one that came while submit was in flight) cancels it. */
  submitted(executor: Executor, handle: unknown, reporter: Pick<Reporter, 'hostLine'>) {
    this.executor = executor;
    this.handle = handle;
    this.reporter = reporter;
    if (this.reason !== undefined) this.cancelExecutor();
  }

  private cancelExecutor() {
    if (!this.executor || this.cancelAsked) return;
    this.cancelAsked = true;
    const { executor, reporter } = this;
    executor.cancel(this.handle, this.task, this.reason!).catch((err) => reporter?.hostLine(`${executor.name}: cancel failed: ${errorMessage(err)}`));
  }

  /** Resolves once the attempt is fully settled (acked, nakked or left for redelivery). */
  get done(): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.whenDone ??= new Promise<void>((resolve) => (this.resolveDone = resolve));
    return this.whenDone;
  }

  settle() {
    this.settled = true;
    this.resolveDone?.();
  }
}

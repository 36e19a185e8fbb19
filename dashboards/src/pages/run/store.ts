// One run's live state outside the component tree: the run and its tasks as last fetched, overlaid by the
// live events (statuses, progress), plus each task's log buffer and metric series. Status changes notify
// subscribers at once; the high-volume streams (logs, metrics, progress) at most once per frame.
import type { ResultOf } from '../../graphql';
import { LogBuffer } from '../../lib/log-buffer';
import { MetricSeries, type PointIn } from '../../lib/metric-series';
import { perf, type StatusSample } from '../../lib/perf';
import type { RUN, RUN_EVENTS, TaskFields } from './documents';

export type RunData = NonNullable<ResultOf<typeof RUN>['run']>;
export type TaskData = ResultOf<typeof TaskFields>;
export type RunEvent = ResultOf<typeof RUN_EVENTS>['runEvents'];
export type TaskStatus = TaskData['status'];
export type RunStatus = RunData['status'];

const terminal = new Set<string>(['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'SKIPPED']);

/** What the live events said about a task since the page opened. */
interface Live {
  status?: TaskStatus;
  attempt?: number;
  message?: string | null;
  reason?: string | null;
  progress?: number | null;
  progressMessage?: string | null;
  startedAt?: string | null;
  finishedAt?: string | null;
}

/** A task as the page shows it: fetched details with live fields on top. */
export type TaskView = Omit<TaskData, 'id'> & { id: string | null };

export class RunStore {
  run: RunData | null = null;
  liveStatus: { status: RunStatus; message: string | null; at: string } | null = null;
  /** The deadline the run's latest event that said one set (its admission's, a snapshot's); null: none said yet. */
  private liveDeadlineAt: string | null = null;
  private details = new Map<string, TaskData>();
  private live = new Map<string, Live>();
  private order: string[] = [];
  /** Views stay the same object until their task changes, so rows and nodes can skip re-rendering. */
  private views = new Map<string, TaskView>();
  readonly logs = new Map<string, LogBuffer>();
  readonly metrics = new Map<string, MetricSeries>();
  /** True once the subscription's opening snapshot (task statuses, then the run's) has arrived. */
  snapshotDone = false;
  version = 0;
  /** Status changes received but not yet shown; see {@link markRendered}. */
  private unrendered: StatusSample[] = [];
  private listeners = new Set<() => void>();
  private scheduled: 'none' | 'frame' | 'now' = 'none';
  /** Called when a task ends or is retried, so attempts and timings can be fetched again. */
  onTaskSettled?: () => void;
  /** Called when a task starts waiting (READY, QUEUED): why it waits is read with the run, not carried by events. */
  onTaskWaiting?: () => void;

  subscribe(listener: () => void) {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Takes a freshly fetched run; `silent` when called during a render, which shows it anyway. */
  setRun(run: RunData, options: { silent?: boolean } = {}) {
    if (run === this.run) return;
    this.run = run;
    this.details = new Map(run.tasks.map((t) => [t.node, t]));
    this.views.clear();
    this.order = topological(run.tasks);
    for (const node of this.live.keys()) if (!this.details.has(node)) this.order.push(node);
    if (!options.silent) this.notify('now');
  }

  get status(): RunStatus | null {
    return this.liveStatus?.status ?? this.run?.status ?? null;
  }

  /** When an open run ends by: live from its admission's event, so a run admitted while the page is open shows it. */
  get deadlineAt(): string | null {
    return this.liveDeadlineAt ?? this.run?.deadlineAt ?? null;
  }

  get message(): string | null {
    return this.liveStatus ? this.liveStatus.message : (this.run?.message ?? null);
  }

  tasks(): TaskView[] {
    return this.order.map((node) => this.task(node)!);
  }

  task(node: string): TaskView | null {
    let view = this.views.get(node);
    if (!view) {
      view = this.merge(node) ?? undefined;
      if (view) this.views.set(node, view);
    }
    return view ?? null;
  }

  private merge(node: string): TaskView | null {
    const d = this.details.get(node);
    const l = this.live.get(node);
    if (!d && !l) return null;
    const base: TaskView = d ?? placeholderTask(node);
    if (!l) return base;
    const sameAttempt = l.attempt === undefined || l.attempt === base.attempt;
    return {
      ...base,
      status: l.status ?? base.status,
      attempt: l.attempt ?? base.attempt,
      message: l.message !== undefined ? l.message : base.message,
      reason: l.reason !== undefined ? l.reason : base.reason,
      progress: l.progress !== undefined ? l.progress : base.progress,
      progressMessage: l.progressMessage !== undefined ? l.progressMessage : base.progressMessage,
      // the fetched times win for the attempt they describe; a newer attempt's come from its events
      startedAt: sameAttempt && base.startedAt ? base.startedAt : l.startedAt !== undefined ? l.startedAt : base.startedAt,
      finishedAt: sameAttempt && base.finishedAt ? base.finishedAt : l.finishedAt !== undefined ? l.finishedAt : base.finishedAt,
    };
  }

  logsOf(node: string): LogBuffer {
    let buffer = this.logs.get(node);
    if (!buffer) this.logs.set(node, (buffer = new LogBuffer()));
    return buffer;
  }

  metricsOf(node: string): MetricSeries {
    let series = this.metrics.get(node);
    if (!series) this.metrics.set(node, (series = new MetricSeries()));
    return series;
  }

  /** Stored metric history was merged into a task's series: redraw on the next frame. */
  metricsLoaded() {
    this.notify('frame');
  }

  apply(event: RunEvent, receivedAt = Date.now()) {
    switch (event.__typename) {
      case 'RunStatusEvent': {
        this.liveStatus = { status: event.runStatus, message: event.message ?? null, at: event.at };
        if (event.deadlineAt) this.liveDeadlineAt = event.deadlineAt;
        this.sample(`run:${event.runStatus}`, event.at, receivedAt);
        this.snapshotDone = true;
        this.notify('frame');
        return;
      }
      case 'TaskStatusEvent': {
        const previous = this.task(event.node);
        const l = this.liveOf(event.node);
        const changedAttempt = l.attempt !== undefined && event.attempt !== l.attempt;
        l.status = event.status;
        l.attempt = event.attempt;
        l.message = event.message ?? null;
        l.reason = event.reason ?? null;
        if (event.status === 'RUNNING' && (changedAttempt || !previous?.startedAt || previous.status !== 'RUNNING')) {
          l.startedAt = event.at;
          l.finishedAt = null;
          if (changedAttempt || previous?.status === 'RETRYING')
            this.logsOf(event.node).append('stderr', [`── attempt ${event.attempt} ──`], Date.parse(event.at));
        }
        if (event.status === 'QUEUED' || event.status === 'RETRYING') l.progress = null;
        if (terminal.has(event.status)) l.finishedAt = event.at;
        this.sample(`${event.node}:${event.status}:${event.attempt}`, event.at, receivedAt);
        if (this.snapshotDone && (terminal.has(event.status) || event.status === 'RETRYING')) this.onTaskSettled?.();
        else if (this.snapshotDone && waitingStatuses.has(event.status) && previous?.status !== event.status) this.onTaskWaiting?.();
        this.notify('frame');
        return;
      }
      case 'TaskProgressEvent': {
        const l = this.liveOf(event.node);
        l.progress = event.fraction ?? null;
        l.progressMessage = event.message ?? null;
        this.notify('frame');
        return;
      }
      case 'TaskLogEvent': {
        this.logsOf(event.node).append(event.stream, event.lines, Date.parse(event.at));
        this.notify('frame');
        return;
      }
      case 'TaskMetricEvent': {
        if (Array.isArray(event.points)) this.metricsOf(event.node).addPoints(event.points as PointIn[]);
        else this.metricsOf(event.node).add(event.metrics, event.step);
        this.notify('frame');
        return;
      }
    }
  }

  /** Called after the DOM shows the latest state: records how long each status change took to appear. */
  markRendered() {
    if (!this.unrendered.length) return;
    const now = Date.now();
    for (const sample of this.unrendered) sample.rendered = now;
    this.unrendered = [];
  }

  private sample(key: string, at: string, receivedAt: number) {
    if (!this.snapshotDone) return; // the opening snapshot is stamped "now", not when the change happened
    const sample: StatusSample = { key, at: Date.parse(at), received: receivedAt, rendered: null };
    perf.status.push(sample);
    this.unrendered.push(sample);
  }

  /** The live overlay of a task, about to change: its cached view is dropped (do not read `task()` until done). */
  private liveOf(node: string): Live {
    this.views.delete(node);
    let l = this.live.get(node);
    if (!l) {
      this.live.set(node, (l = {}));
      if (!this.details.has(node) && !this.order.includes(node)) this.order.push(node);
    }
    return l;
  }

  /**
   * Re-renders once per frame at most: a burst of events (a fan-out queues dozens of tasks in one step) costs one
   * render, not one each. `now` is for the first data, which should not wait for a frame.
   */
  private notify(when: 'now' | 'frame') {
    if (this.scheduled === 'now' || (this.scheduled === 'frame' && when === 'frame')) return;
    const flush = () => {
      if (this.scheduled === 'none') return;
      this.scheduled = 'none';
      this.version++;
      for (const listener of this.listeners) listener();
    };
    this.scheduled = when;
    if (when === 'now') queueMicrotask(flush);
    else requestAnimationFrame(flush);
  }
}

/** Served from cache: the fetched hit, or the live status event's reason before the hit is fetched. */
export const fromCache = (t: TaskView) => Boolean(t.cacheHit) || (t.status === 'SUCCEEDED' && t.reason === 'cache-hit');

export const waitingStatuses = new Set<string>(['READY', 'QUEUED']);

/** Why a task that has not started is waiting, while it still waits (the reason is fetched, the status live). */
export function waitingReasonOf(t: TaskView): string | null {
  return waitingStatuses.has(t.status) ? (t.waitingReason ?? null) : null;
}

function placeholderTask(node: string): TaskView {
  return {
    id: null,
    node,
    kind: 'module',
    status: 'PENDING',
    attempt: 0,
    maxAttempts: 1,
    dependsOn: [],
    triggerRule: 'all_succeeded',
    condition: null,
    moduleRef: null,
    moduleVersion: null,
    workflowRef: null,
    childRun: null,
    mapParent: null,
    mapIndex: null,
    progress: null,
    progressMessage: null,
    message: null,
    reason: null,
    exitCode: null,
    queuedAt: null,
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    retryAt: null,
    executor: '',
    pool: '',
    host: null,
    reusedFromTaskId: null,
    cacheHit: null,
    waitingReason: null,
    provisioningMs: null,
    executionMs: null,
    parameters: {},
    outputs: null,
    declaredDatasets: [],
    attempts: [],
  };
}

const natural = new Intl.Collator(undefined, { numeric: true });

/** Nodes upstream first (by depth, then by name with numbers in order: w2 before w10), as people read a DAG. */
function topological(tasks: readonly { node: string; dependsOn: readonly string[] }[]): string[] {
  const depth = new Map<string, number>();
  const byNode = new Map(tasks.map((t) => [t.node, t]));
  const visit = (node: string, seen: Set<string>): number => {
    const known = depth.get(node);
    if (known !== undefined) return known;
    if (seen.has(node)) return 0; // a cycle cannot come from the API; do not loop if it did
    seen.add(node);
    const deps = byNode.get(node)?.dependsOn ?? [];
    const d = deps.length ? 1 + Math.max(...deps.filter((x) => byNode.has(x)).map((x) => visit(x, seen)), -1) : 0;
    depth.set(node, d);
    return d;
  };
  for (const t of tasks) visit(t.node, new Set());
  return tasks.map((t) => t.node).sort((a, b) => depth.get(a)! - depth.get(b)! || natural.compare(a, b));
}

// Following a run live (`run start --watch`, `run watch`): the state of each task built from runEvents, drawn in
// place on a terminal (log-update) or as plain lines elsewhere (watch-view.ts draws), and the summary at the end.
import { terminalRunStatuses } from '../vocabulary';
import type { Client } from './client';
import { ApiError } from './errors';
import {
  dagOrder,
  deadlineLine,
  printProgress,
  printStatus,
  printSummary,
  render,
  runLabel,
  styled,
  type TaskState,
  terminalTask,
  withoutShownStderr,
} from './watch-view';

const RUN_FIELDS = /* GraphQL */ `
  id status message createdAt startedAt finishedAt timeoutSeconds deadlineAt
  workflow { name }
  workflowVersion { version }
  tasks { id node dependsOn status attempt maxAttempts progress progressMessage startedAt finishedAt durationMs message reason mapParent waitingReason }
`;

const RUN_QUERY = /* GraphQL */ `query ($id: ID!) { run(id: $id) { ${RUN_FIELDS} } }`;
// The summary's metrics are what the store kept, not only what arrived live: a task that reported before the watch
// subscribed (or a run watched after it ended) has events the live feed never carries again.
const RUN_WITH_METRICS_QUERY = /* GraphQL */ `query ($id: ID!) { run(id: $id) { ${RUN_FIELDS} tasks { node metrics } } }`;

const RUN_EVENTS = /* GraphQL */ `
  subscription ($runId: ID!) {
    runEvents(runId: $runId) {
      __typename
      ... on RunStatusEvent { runStatus message at deadlineAt }
      ... on TaskStatusEvent { node status attempt reason message at }
      ... on TaskProgressEvent { node fraction message at }
      ... on TaskLogEvent { node stream lines at }
      ... on TaskMetricEvent { node metrics step at }
    }
  }
`;

export interface RunTask {
  id: string;
  node: string;
  dependsOn: string[];
  status: string;
  attempt: number;
  maxAttempts: number;
  progress: number | null;
  progressMessage: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  message: string | null;
  reason: string | null;
  mapParent: string | null;
  /** Why a READY or QUEUED task has not started (no live host for its pool, …). */
  waitingReason: string | null;
  /** The latest value of each metric (a cached task: its source's), fetched for the summary only. */
  metrics?: StoredMetrics | null;
}

/** Task.metrics: `{ name: { value, step } }`, NaN and ±Infinity as strings. */
export type StoredMetrics = Record<string, { value: number | string; step: number | null }>;

export interface RunView {
  id: string;
  status: string;
  message: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Its time limit, and the deadline it set once admitted (null: none, or not admitted yet). */
  timeoutSeconds?: number | null;
  deadlineAt?: string | null;
  /** Null for a run logged from outside a workflow. */
  workflow: { name: string } | null;
  workflowVersion: { version: number } | null;
  tasks: RunTask[];
}

type RunEvent =
  | { __typename: 'RunStatusEvent'; runStatus: string; message: string | null; at: string; deadlineAt?: string | null }
  | { __typename: 'TaskStatusEvent'; node: string; status: string; attempt: number; reason: string | null; message: string | null; at: string }
  | { __typename: 'TaskProgressEvent'; node: string; fraction: number | null; message: string | null; at: string }
  | { __typename: 'TaskLogEvent'; node: string; stream: string; lines: string[]; at: string }
  | { __typename: 'TaskMetricEvent'; node: string; metrics: Record<string, number>; step: number | null; at: string };

export interface WatchOptions {
  /** Print log lines, prefixed with their node. */
  logs: boolean;
  /** Draw in place (a terminal) rather than printing lines. */
  tty: boolean;
  out: NodeJS.WriteStream;
  signal?: AbortSignal;
}

export const terminalRun = new Set<string>(terminalRunStatuses);

/** A run id that names no run the caller may read (the API answers both alike): where to find the right one. */
export const noSuchRun = (id: string) => new ApiError(`There is no run ${id} that you may read; \`atelier run list\` lists the recent ones.`, 'NOT_FOUND');

export async function fetchRun(client: Client, id: string, options: { metrics?: boolean } = {}): Promise<RunView> {
  const { run } = await client.request<{ run: RunView | null }>(options.metrics ? RUN_WITH_METRICS_QUERY : RUN_QUERY, { id });
  if (!run) throw noSuchRun(id);
  return run;
}

/** Follows a run until it ends (or `signal` aborts) and returns its final state, having printed the summary. */
export async function watchRun(client: Client, runId: string, options: WatchOptions): Promise<RunView> {
  const initial = await fetchRun(client, runId);
  const tasks = new Map<string, TaskState>();
  for (const t of dagOrder(initial.tasks)) tasks.set(t.node, fromTask(t));
  let runStatus = initial.status;
  // Its time limit and deadline (set on admission, which an event of the watch may bring): the time left is redrawn.
  let deadlineAt = initial.deadlineAt ?? null;
  const deadline = () => deadlineLine({ status: runStatus, timeoutSeconds: initial.timeoutSeconds ?? null, deadlineAt }, Date.now());
  const runStartedAt = initial.startedAt ? Date.parse(initial.startedAt) : Date.parse(initial.createdAt);
  const title = `run ${initial.id} · ${runLabel(initial)}`;
  const print = (line: string) => options.out.write(`${line}\n`);
  // The stderr lines printed live, by node: a failure message quoting them is not printed with them again.
  const stderrShown = new Map<string, Set<string>>();

  const live = options.tty ? (await import('log-update')).createLogUpdate(options.out) : undefined;
  let frame = 0;
  const draw = () =>
    live?.(
      render(
        deadline() ? `${title} · ${deadline()}` : title,
        runStatus,
        runStartedAt,
        [...tasks.values()],
        frame++,
        options.out.columns || 100,
        options.out.rows || 30,
      ),
    );
  const timer = live ? setInterval(draw, 100) : undefined;
  if (!live) {
    print(`${title}: ${runStatus}`);
    const limit = deadline();
    if (limit) print(limit);
    // What had happened before the watch began, upstream first (the snapshot's events repeat it in no set order).
    for (const task of tasks.values()) printStatus(task, print);
  }

  const taskFor = (node: string) => {
    let task = tasks.get(node);
    if (!task) {
      // Map items appear once the run has created them.
      task = {
        node,
        status: 'PENDING',
        attempt: 1,
        maxAttempts: 1,
        fraction: null,
        progressMessage: null,
        startedAt: null,
        finishedAt: null,
        durationMs: null,
        message: null,
        metrics: {},
      };
      tasks.set(node, task);
    }
    return task;
  };

  const onEvent = (event: RunEvent) => {
    if (event.__typename === 'RunStatusEvent') {
      runStatus = event.runStatus;
      if (event.deadlineAt && event.deadlineAt !== deadlineAt) {
        deadlineAt = event.deadlineAt;
        const limit = deadline();
        if (!live && limit) print(limit);
      }
      return;
    }
    const task = taskFor(event.node);
    if (event.__typename !== 'TaskStatusEvent' && ['PENDING', 'READY', 'QUEUED'].includes(task.status)) {
      // The control plane records a start and a result that reach it together as one change, with no RUNNING
      // event in between; the task's first report is then the best sign that it started.
      task.status = 'RUNNING';
      task.startedAt = Date.parse(event.at);
      task.startInferred = true;
      if (!live) printStatus(task, print);
    }
    if (event.__typename === 'TaskLogEvent') {
      if (!options.logs) return;
      if (event.stream === 'stderr') for (const l of event.lines) stderrShown.set(event.node, (stderrShown.get(event.node) ?? new Set()).add(l));
      const lines = event.lines.map(
        (l) => `${styled(options.tty, 'dim', `[${event.node}]`)} ${event.stream === 'stderr' ? styled(options.tty, 'yellow', l) : l}`,
      );
      if (live) live.persist(lines.join('\n'));
      else for (const l of lines) print(l);
      return;
    }
    if (event.__typename === 'TaskStatusEvent') {
      const at = Date.parse(event.at);
      if (event.status === 'RUNNING' && (task.status !== 'RUNNING' || event.attempt !== task.attempt)) {
        if (event.attempt !== task.attempt || task.startedAt === null || task.startInferred) task.startedAt = at;
        task.startInferred = false;
        if (event.attempt !== task.attempt) task.fraction = null;
        task.finishedAt = null;
        task.durationMs = null;
      }
      if (terminalTask.has(event.status) && task.status !== event.status) task.finishedAt = at;
      task.status = event.status;
      task.attempt = event.attempt;
      task.message = event.message && withoutShownStderr(event.message, stderrShown.get(event.node));
      task.fromCache = event.status === 'SUCCEEDED' && event.reason === 'cache-hit';
      if (!live) printStatus(task, print);
    } else if (event.__typename === 'TaskProgressEvent') {
      task.fraction = event.fraction;
      if (event.message) task.progressMessage = event.message;
      if (!live) printProgress(task, print);
    } else if (event.__typename === 'TaskMetricEvent') {
      Object.assign(task.metrics, event.metrics);
    }
  };

  try {
    await client.subscribe<{ runEvents: RunEvent }>(RUN_EVENTS, { runId }, (data) => onEvent(data.runEvents), { signal: options.signal });
  } finally {
    if (timer) clearInterval(timer);
    if (live) {
      draw();
      live.done();
    }
  }
  if (options.signal?.aborted) return { ...initial, status: runStatus };

  const final = await fetchRun(client, runId, { metrics: true });
  const shown = { ...final, tasks: final.tasks.map((t) => ({ ...t, message: t.message && withoutShownStderr(t.message, stderrShown.get(t.node)) })) };
  printSummary(shown, tasks, options.tty, print);
  return final;
}

function fromTask(t: RunTask): TaskState {
  return {
    node: t.node,
    status: t.status,
    attempt: t.attempt,
    maxAttempts: t.maxAttempts,
    fraction: t.progress,
    progressMessage: t.progressMessage,
    startedAt: t.startedAt ? Date.parse(t.startedAt) : null,
    finishedAt: t.finishedAt ? Date.parse(t.finishedAt) : null,
    durationMs: terminalTask.has(t.status) ? t.durationMs : null,
    message: t.message,
    fromCache: t.status === 'SUCCEEDED' && t.reason === 'cache-hit',
    metrics: {},
  };
}

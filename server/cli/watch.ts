// Following a run live (`run start --watch`, `run watch`): the state of each task built from runEvents, drawn in
// place on a terminal (log-update) or as plain lines elsewhere, and the summary printed when the run ends.
// Long because: the formatter writes its task-state literals and status ternaries one item per line (387 lines
// before Biome); splitting the drawing from the event folding is the follow-up.
import { styleText } from 'node:util';
import { terminalRunStatuses, terminalTaskStatuses } from '../vocabulary';
import type { Client } from './client';
import { ApiError } from './errors';

export const RUN_FIELDS = /* GraphQL */ `
  id status message createdAt startedAt finishedAt
  workflow { name }
  workflowVersion { version }
  tasks { id node dependsOn status attempt maxAttempts progress progressMessage startedAt finishedAt durationMs message reason mapParent waitingReason }
`;

const RUN_QUERY = /* GraphQL */ `query ($id: ID!) { run(id: $id) { ${RUN_FIELDS} } }`;

const RUN_EVENTS = /* GraphQL */ `
  subscription ($runId: ID!) {
    runEvents(runId: $runId) {
      __typename
      ... on RunStatusEvent { runStatus message at }
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
}

export interface RunView {
  id: string;
  status: string;
  message: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  workflow: { name: string };
  workflowVersion: { version: number };
  tasks: RunTask[];
}

type RunEvent =
  | { __typename: 'RunStatusEvent'; runStatus: string; message: string | null; at: string }
  | { __typename: 'TaskStatusEvent'; node: string; status: string; attempt: number; reason: string | null; message: string | null; at: string }
  | { __typename: 'TaskProgressEvent'; node: string; fraction: number | null; message: string | null; at: string }
  | { __typename: 'TaskLogEvent'; node: string; stream: string; lines: string[]; at: string }
  | { __typename: 'TaskMetricEvent'; node: string; metrics: Record<string, number>; step: number | null; at: string };

interface TaskState {
  node: string;
  status: string;
  attempt: number;
  maxAttempts: number;
  fraction: number | null;
  progressMessage: string | null;
  /** Server times (ms) of the current attempt, so durations do not depend on this machine's clock. */
  startedAt: number | null;
  finishedAt: number | null;
  /** The server's duration, known when the task had ended before we started watching. */
  durationMs: number | null;
  /** The start time is that of the task's first report, not of its start: too late to time it by. */
  startInferred?: boolean;
  message: string | null;
  metrics: Record<string, number>;
  // non-TTY bookkeeping: what was last printed, so each change is printed once
  printedStatus?: string;
  printedBucket?: number;
  printedMessageAt?: number;
}

export interface WatchOptions {
  /** Print log lines, prefixed with their node. */
  logs: boolean;
  /** Draw in place (a terminal) rather than printing lines. */
  tty: boolean;
  out: NodeJS.WriteStream;
  signal?: AbortSignal;
}

export const terminalRun = new Set<string>(terminalRunStatuses);
const terminalTask = new Set<string>(terminalTaskStatuses);
const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export async function fetchRun(client: Client, id: string): Promise<RunView> {
  const { run } = await client.request<{ run: RunView | null }>(RUN_QUERY, { id });
  if (!run) throw new ApiError(`There is no run ${id}.`, 'NOT_FOUND');
  return run;
}

/** Follows a run until it ends (or `signal` aborts) and returns its final state, having printed the summary. */
export async function watchRun(client: Client, runId: string, options: WatchOptions): Promise<RunView> {
  const initial = await fetchRun(client, runId);
  const tasks = new Map<string, TaskState>();
  for (const t of dagOrder(initial.tasks)) tasks.set(t.node, fromTask(t));
  let runStatus = initial.status;
  const runStartedAt = initial.startedAt ? Date.parse(initial.startedAt) : Date.parse(initial.createdAt);
  const title = `run ${initial.id} · ${initial.workflow.name} v${initial.workflowVersion.version}`;
  const print = (line: string) => options.out.write(`${line}\n`);

  const live = options.tty ? (await import('log-update')).createLogUpdate(options.out) : undefined;
  let frame = 0;
  const draw = () => live?.(render(title, runStatus, runStartedAt, [...tasks.values()], frame++, options.out.columns || 100, options.out.rows || 30));
  const timer = live ? setInterval(draw, 100) : undefined;
  if (!live) print(`${title}: ${runStatus}`);

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
      task.message = event.message;
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

  const final = await fetchRun(client, runId);
  printSummary(final, tasks, options.tty, print);
  return final;
}

/** Upstream tasks before the tasks that depend on them, by name among equals: the order a reader expects. */
export function dagOrder<T extends { node: string; dependsOn: string[] }>(tasks: T[]): T[] {
  const sorted = [...tasks].sort((a, b) => a.node.localeCompare(b.node));
  const known = new Set(sorted.map((t) => t.node));
  const waiting = new Map(sorted.map((t) => [t.node, t.dependsOn.filter((d) => known.has(d)).length]));
  const downstream = new Map<string, T[]>();
  for (const t of sorted) {
    for (const d of t.dependsOn) {
      if (!known.has(d)) continue;
      const list = downstream.get(d);
      if (list) list.push(t);
      else downstream.set(d, [t]);
    }
  }
  // Kahn's algorithm, iterative: a run may have thousands of tasks in a chain.
  const out = sorted.filter((t) => waiting.get(t.node) === 0);
  for (let i = 0; i < out.length; i++) {
    for (const next of downstream.get(out[i]!.node) ?? []) {
      const left = waiting.get(next.node)! - 1;
      waiting.set(next.node, left);
      if (left === 0) out.push(next);
    }
  }
  // Whatever a cycle (never allowed by the server) would have left out still gets shown.
  if (out.length === sorted.length) return out;
  const placed = new Set(out);
  return [...out, ...sorted.filter((t) => !placed.has(t))];
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
    metrics: {},
  };
}

function elapsed(task: TaskState, now = Date.now()): number | null {
  if (task.durationMs !== null) return task.durationMs;
  if (task.startedAt === null) return null;
  return Math.max(0, (task.finishedAt ?? now) - task.startedAt);
}

function printStatus(task: TaskState, print: (line: string) => void) {
  if (task.printedStatus === task.status || ['PENDING', 'READY', 'QUEUED'].includes(task.status)) return;
  task.printedStatus = task.status;
  const took = task.startInferred && task.durationMs === null ? null : elapsed(task);
  const attempt = task.maxAttempts > 1 || task.attempt > 1 ? ` (attempt ${task.attempt})` : '';
  if (task.status === 'RUNNING') {
    task.printedBucket = undefined;
    print(`[${task.node}] RUNNING${attempt}`);
  } else if (task.status === 'SUCCEEDED') {
    print(`[${task.node}] SUCCEEDED${took !== null ? ` in ${formatDuration(took)}` : ''}`);
  } else {
    const after = took !== null && task.status !== 'SKIPPED' && task.status !== 'RETRYING' ? ` after ${formatDuration(took)}` : '';
    print(`[${task.node}] ${task.status}${attempt}${after}${task.message ? `: ${oneLine(task.message)}` : ''}`);
  }
}

/** Plain output prints a task's progress at most once per 10% step, so a chatty module stays readable in CI logs. */
function printProgress(task: TaskState, print: (line: string) => void) {
  if (task.fraction === null) {
    const now = Date.now();
    if (!task.progressMessage || (task.printedMessageAt && now - task.printedMessageAt < 2000)) return;
    task.printedMessageAt = now;
    print(`[${task.node}] ${task.progressMessage}`);
    return;
  }
  const bucket = Math.floor(task.fraction * 10);
  if (bucket === task.printedBucket) return;
  task.printedBucket = bucket;
  print(`[${task.node}] ${Math.round(task.fraction * 100)}%${task.progressMessage ? ` ${task.progressMessage}` : ''}`);
}

function render(title: string, runStatus: string, runStartedAt: number, tasks: TaskState[], frame: number, columns: number, rows: number): string {
  const now = Date.now();
  const width = Math.max(20, columns - 1);
  const lines = [`${styleText('bold', title)} · ${colorStatus(runStatus)} · ${formatDuration(now - runStartedAt)}`];
  const nodeWidth = Math.min(24, Math.max(4, ...tasks.map((t) => t.node.length)));
  const room = Math.max(3, rows - 3);
  // Too many tasks for the screen (a wide map): the active and failed ones first, the rest counted.
  const rank = (t: TaskState) =>
    ['RUNNING', 'RETRYING'].includes(t.status) ? 0 : ['FAILED', 'TIMED_OUT'].includes(t.status) ? 1 : t.status === 'QUEUED' ? 2 : 3;
  const shown = tasks.length <= room ? tasks : [...tasks].sort((a, b) => rank(a) - rank(b)).slice(0, room - 1);
  for (const task of shown) {
    const symbol = symbolFor(task.status, frame);
    const node = task.node.length > nodeWidth ? `${task.node.slice(0, nodeWidth - 1)}…` : task.node.padEnd(nodeWidth);
    const fraction = task.status === 'SUCCEEDED' ? 1 : task.fraction;
    const bar = progressBar(fraction, 20);
    const pct = fraction === null ? '   ' : `${Math.round(fraction * 100)}%`.padStart(4);
    const took = elapsed(task, now);
    const duration = (took === null ? '' : formatDuration(took)).padStart(7);
    const note =
      terminalTask.has(task.status) && task.status !== 'SUCCEEDED'
        ? `${task.status}${task.message ? `: ${oneLine(task.message)}` : ''}`
        : (task.progressMessage ?? (task.status === 'RUNNING' ? '' : task.status));
    const fixed = 2 + nodeWidth + 1 + 20 + 1 + 4 + 1 + 7 + 2;
    const text = truncate(note, width - fixed);
    lines.push(
      `${symbol} ${node} ${bar} ${pct} ${styleText('dim', duration)}  ${task.status === 'FAILED' || task.status === 'TIMED_OUT' ? styleText('red', text) : text}`,
    );
  }
  if (shown.length < tasks.length) {
    const counts = new Map<string, number>();
    for (const t of tasks) if (!shown.includes(t)) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
    lines.push(styleText('dim', `  … ${tasks.length - shown.length} more: ${[...counts].map(([s, n]) => `${n} ${s.toLowerCase()}`).join(', ')}`));
  }
  return lines.join('\n');
}

function printSummary(run: RunView, live: Map<string, TaskState>, tty: boolean, print: (line: string) => void) {
  const started = run.startedAt ? Date.parse(run.startedAt) : Date.parse(run.createdAt);
  const took = run.finishedAt ? ` in ${formatDuration(Date.parse(run.finishedAt) - started)}` : '';
  print('');
  print(`run ${run.id} ${tty ? colorStatus(run.status) : run.status}${took} (${run.workflow.name} v${run.workflowVersion.version})`);
  const tasks = dagOrder(run.tasks.filter((t) => !t.mapParent));
  const nodeWidth = Math.max(4, ...tasks.map((t) => t.node.length));
  for (const task of tasks) {
    const metrics = Object.entries(live.get(task.node)?.metrics ?? {})
      .map(([name, value]) => `${name}=${formatNumber(value)}`)
      .join(' ');
    const duration = task.durationMs !== null ? formatDuration(task.durationMs) : '';
    const status = tty ? `${symbolFor(task.status, 0)} ${colorStatus(task.status.padEnd(9))}` : task.status.padEnd(9);
    print(`  ${task.node.padEnd(nodeWidth)}  ${status}  ${duration.padStart(7)}  ${metrics}`.trimEnd());
    if (task.message && task.status !== 'SUCCEEDED') for (const line of task.message.split('\n')) print(`      ${line}`);
  }
  const mapItems = run.tasks.length - tasks.length;
  if (mapItems) print(`  (+ ${mapItems} map items)`);
  if (run.status !== 'SUCCEEDED' && run.message) print(`run ${run.status.toLowerCase()}: ${run.message}`);
}

function progressBar(fraction: number | null, width: number): string {
  if (fraction === null) return styleText('dim', '░'.repeat(width));
  const full = Math.round(fraction * width);
  return `${styleText('cyan', '█'.repeat(full))}${styleText('dim', '░'.repeat(width - full))}`;
}

function symbolFor(status: string, frame: number): string {
  switch (status) {
    case 'RUNNING':
      return styleText('cyan', spinner[frame % spinner.length]!);
    case 'SUCCEEDED':
      return styleText('green', '✔');
    case 'FAILED':
    case 'TIMED_OUT':
      return styleText('red', '✖');
    case 'CANCELLED':
      return styleText('yellow', '⊘');
    case 'RETRYING':
      return styleText('yellow', '↻');
    case 'SKIPPED':
      return styleText('dim', '↷');
    case 'QUEUED':
    case 'READY':
      return styleText('dim', '○');
    default:
      return styleText('dim', '·');
  }
}

function colorStatus(status: string): string {
  const s = status.trim();
  const color =
    s === 'SUCCEEDED'
      ? 'green'
      : s === 'FAILED' || s === 'TIMED_OUT'
        ? 'red'
        : s === 'RUNNING'
          ? 'cyan'
          : s === 'CANCELLED' || s === 'RETRYING'
            ? 'yellow'
            : 'dim';
  return styleText(color, status);
}

function styled(enabled: boolean, format: Parameters<typeof styleText>[0], text: string): string {
  return enabled ? styleText(format, text) : text;
}

export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(ms / 3_600_000)}h${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(+value.toPrecision(4));
}

/** A multi-line message (an exit code, then stderr's last lines) as its first and last lines: the why is last. */
export function oneLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length <= 1) return lines[0] ?? '';
  return `${lines[0]} ${lines.length > 2 ? '… ' : ''}${lines.at(-1)}`;
}

function truncate(text: string, max: number): string {
  if (max <= 1) return '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

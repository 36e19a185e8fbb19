// Drawing a followed run: the task lines, progress bars and spinner drawn in place on a terminal, the plain lines
// printed elsewhere, and the summary when the run ends. The state it draws is folded from runEvents in watch.ts.
import { styleText } from 'node:util';
import { terminalTaskStatuses } from '../vocabulary';
import type { RunView, StoredMetrics } from './watch';

/** `name vN`, or `external` for a run logged from outside a workflow. */
export function runLabel(run: Pick<RunView, 'workflow' | 'workflowVersion'>): string {
  return run.workflow && run.workflowVersion ? `${run.workflow.name} v${run.workflowVersion.version}` : 'external';
}

export const terminalTask = new Set<string>(terminalTaskStatuses);
const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface TaskState {
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
  /** Completed from the cache (its status event's reason is `cache-hit`): it ran nothing, so it has no duration. */
  fromCache?: boolean;
  metrics: Record<string, number>;
  // non-TTY bookkeeping: what was last printed, so each change is printed once
  printedStatus?: string;
  printedBucket?: number;
  printedMessageAt?: number;
}

export function elapsed(task: TaskState, now = Date.now()): number | null {
  if (task.fromCache) return null;
  if (task.durationMs !== null) return task.durationMs;
  if (task.startedAt === null) return null;
  return Math.max(0, (task.finishedAt ?? now) - task.startedAt);
}

export function printStatus(task: TaskState, print: (line: string) => void) {
  if (task.printedStatus === task.status || ['PENDING', 'READY', 'QUEUED'].includes(task.status)) return;
  task.printedStatus = task.status;
  const took = task.startInferred && task.durationMs === null ? null : elapsed(task);
  const attempt = task.maxAttempts > 1 || task.attempt > 1 ? ` (attempt ${task.attempt})` : '';
  if (task.status === 'RUNNING') {
    task.printedBucket = undefined;
    print(`[${task.node}] RUNNING${attempt}`);
  } else if (task.status === 'SUCCEEDED' && task.fromCache) {
    print(`[${task.node}] SUCCEEDED from cache${cacheNote(task.message)}`);
  } else if (task.status === 'SUCCEEDED') {
    print(`[${task.node}] SUCCEEDED${took !== null ? ` in ${formatDuration(took)}` : ''}`);
  } else {
    const after = took !== null && task.status !== 'SKIPPED' && task.status !== 'RETRYING' ? ` after ${formatDuration(took)}` : '';
    print(`[${task.node}] ${task.status}${attempt}${after}${task.message ? `: ${oneLine(task.message)}` : ''}`);
  }
}

/** Plain output prints a task's progress at most once per 10% step, so a chatty module stays readable in CI logs. */
export function printProgress(task: TaskState, print: (line: string) => void) {
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

export function render(title: string, runStatus: string, runStartedAt: number, tasks: TaskState[], frame: number, columns: number, rows: number): string {
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
    const duration = (task.fromCache ? 'cached' : took === null ? '' : formatDuration(took)).padStart(7);
    const note = task.fromCache
      ? `from cache${cacheNote(task.message)}`
      : terminalTask.has(task.status) && task.status !== 'SUCCEEDED'
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

export function printSummary(run: RunView, live: Map<string, TaskState>, tty: boolean, print: (line: string) => void) {
  const started = run.startedAt ? Date.parse(run.startedAt) : Date.parse(run.createdAt);
  const took = run.finishedAt ? ` in ${formatDuration(Date.parse(run.finishedAt) - started)}` : '';
  print('');
  print(`run ${run.id} ${tty ? colorStatus(run.status) : run.status}${took} (${runLabel(run)})`);
  const tasks = dagOrder(run.tasks.filter((t) => !t.mapParent));
  const nodeWidth = Math.max(4, ...tasks.map((t) => t.node.length));
  for (const task of tasks) {
    // By name: the same line whether the events came live or were read back from the store (jsonb keeps no order).
    // The store's latest values when the server sent them: it also has what was reported before the watch began.
    const metrics = Object.entries(task.metrics ? storedValues(task.metrics) : (live.get(task.node)?.metrics ?? {}))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => `${name}=${formatNumber(value)}`)
      .join(' ');
    const cached = task.reason === 'cache-hit';
    const seen = live.get(task.node);
    // The duration the live lines showed, when they saw the attempt start and end (so the two never disagree);
    // otherwise the server's.
    const shown = seen && !seen.startInferred && seen.startedAt !== null && seen.finishedAt !== null ? elapsed(seen) : null;
    const took = shown ?? task.durationMs;
    const duration = cached ? 'cached' : took !== null ? formatDuration(took) : '';
    const status = tty ? `${symbolFor(task.status, 0)} ${colorStatus(task.status.padEnd(9))}` : task.status.padEnd(9);
    print(`  ${task.node.padEnd(nodeWidth)}  ${status}  ${duration.padStart(7)}  ${metrics}`.trimEnd());
    if (task.message && task.status !== 'SUCCEEDED') for (const line of task.message.split('\n')) print(`      ${line}`);
  }
  const fromCache = tasks.filter((t) => t.reason === 'cache-hit').length;
  if (fromCache) print(`  (${fromCache} of ${tasks.length} task${tasks.length > 1 ? 's' : ''} served from cache)`);
  const mapItems = run.tasks.length - tasks.length;
  if (mapItems) print(`  (+ ${mapItems} map items)`);
  if (run.status !== 'SUCCEEDED' && run.message) print(`run ${run.status.toLowerCase()}: ${run.message}`);
}

function storedValues(metrics: StoredMetrics): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).map(([name, { value }]) => [name, Number(value)]));
}

export function progressBar(fraction: number | null, width: number): string {
  if (fraction === null) return styleText('dim', '░'.repeat(width));
  const full = Math.round(fraction * width);
  return `${styleText('cyan', '█'.repeat(full))}${styleText('dim', '░'.repeat(width - full))}`;
}

export function symbolFor(status: string, frame: number): string {
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

export function colorStatus(status: string): string {
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

const STDERR_TAIL = '; last stderr lines:\n';

/**
 * A failure message without the stderr lines it quotes (the local executor's `exited with code 1; last stderr
 * lines:\n…`) when every one of them was printed already, live (`--logs`, `module run`): else the same lines showed
 * twice or three times over. A line cut or changed on the way keeps the quote whole.
 */
export function withoutShownStderr(message: string, shown: ReadonlySet<string> | undefined): string {
  const at = message.indexOf(STDERR_TAIL);
  if (at < 0 || !shown?.size) return message;
  const tail = message.slice(at + STDERR_TAIL.length).split('\n');
  return tail.every((line) => shown.has(line)) ? `${message.slice(0, at)} (its stderr is above)` : message;
}

export function styled(enabled: boolean, format: Parameters<typeof styleText>[0], text: string): string {
  return enabled ? styleText(format, text) : text;
}

export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(ms / 3_600_000)}h${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
}

/**
 * What `run show` says of a run's time limit: for an open run, when it ends by ("ends by …, in 12m00s"), or that the
 * limit counts from admission while it waits for one; nothing for a run without one or that has ended (its message
 * says whether the limit ended it).
 */
export function deadlineLine(run: Pick<RunView, 'status' | 'timeoutSeconds' | 'deadlineAt'>, now: number): string | null {
  if (!run.timeoutSeconds || (run.status !== 'QUEUED' && run.status !== 'RUNNING')) return null;
  if (!run.deadlineAt) return `time limit ${run.timeoutSeconds} s, counted from its admission`;
  const left = Date.parse(run.deadlineAt) - now;
  return `ends by ${run.deadlineAt} (time limit ${run.timeoutSeconds} s), ${left > 0 ? `in ${formatDuration(left)}` : 'now'}`;
}

/** What a cache hit's message says after "served from cache: " (the source task and run, the time saved). */
function cacheNote(message: string | null): string {
  const rest = message?.replace(/^served from cache:\s*/, '').replace(/\(saved (\d+) ms\)/, (_, ms) => `(saved ${formatDuration(Number(ms))})`);
  return rest ? ` (${rest})` : '';
}

export function formatNumber(value: number): string {
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

export function truncate(text: string, max: number): string {
  if (max <= 1) return '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
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

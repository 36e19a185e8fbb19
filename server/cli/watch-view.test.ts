import { describe, expect, it } from 'vitest';
import { hours } from './cache';
import type { RunTask, RunView } from './watch';
import { deadlineLine, printStatus, printSummary, type TaskState, withoutShownStderr } from './watch-view';

const task = (node: string, over: Partial<RunTask> = {}): RunTask => ({
  id: node,
  node,
  dependsOn: [],
  status: 'SUCCEEDED',
  attempt: 1,
  maxAttempts: 1,
  progress: 1,
  progressMessage: null,
  startedAt: '2026-12-04T10:00:00.000Z',
  finishedAt: '2026-12-04T10:00:02.000Z',
  durationMs: 2000,
  message: null,
  reason: null,
  mapParent: null,
  waitingReason: null,
  ...over,
});
const run = (tasks: RunTask[]): RunView => ({
  id: 'r1',
  status: 'SUCCEEDED',
  message: null,
  createdAt: '2026-12-04T10:00:00.000Z',
  startedAt: '2026-12-04T10:00:00.000Z',
  finishedAt: '2026-12-04T10:00:03.000Z',
  workflow: { name: 'w' },
  workflowVersion: { version: 1 },
  tasks,
});
const state = (over: Partial<TaskState>): TaskState => ({
  node: 'a',
  status: 'SUCCEEDED',
  attempt: 1,
  maxAttempts: 1,
  fraction: 1,
  progressMessage: null,
  startedAt: null,
  finishedAt: null,
  durationMs: null,
  message: null,
  metrics: {},
  ...over,
});

const lines = (fn: (print: (line: string) => void) => void) => {
  const out: string[] = [];
  fn((l) => out.push(l));
  return out;
};

describe('the watch view', () => {
  it('says "from cache" for a cache hit, live and in the summary, with no duration', () => {
    const message = 'served from cache: the result of task t0 of run r0 (saved 1500 ms)';
    expect(lines((p) => printStatus(state({ fromCache: true, message }), p))).toEqual([
      '[a] SUCCEEDED from cache (the result of task t0 of run r0 (saved 1.5s))',
    ]);
    const summary = lines((p) => printSummary(run([task('a', { reason: 'cache-hit', message }), task('b')]), new Map(), false, p));
    expect(summary).toContain('  a     SUCCEEDED   cached');
    expect(summary).toContain('  (1 of 2 tasks served from cache)');
  });

  it('shows in the summary the duration the live lines showed for a task it saw start and end', () => {
    const seen = state({ startedAt: Date.parse('2026-12-04T10:00:00.100Z'), finishedAt: Date.parse('2026-12-04T10:00:01.900Z') });
    const live = lines((p) => printStatus(seen, p));
    const summary = lines((p) => printSummary(run([task('a')]), new Map([['a', seen]]), false, p));
    expect(live).toEqual(['[a] SUCCEEDED in 1.8s']);
    expect(summary).toContain('  a     SUCCEEDED     1.8s');
    // A task the view did not see run shows the server's duration.
    expect(lines((p) => printSummary(run([task('a')]), new Map(), false, p))).toContain('  a     SUCCEEDED     2.0s');
  });

  it('reads time saved in seconds, minutes or hours', () => {
    expect([hours(2 / 3600), hours(42 / 3600), hours(90 / 3600), hours(0.5), hours(3.25)]).toEqual(['2.0 s', '42 s', '1.5 min', '30 min', '3.3 h']);
  });
});

it('leaves out the stderr lines a failure quotes only when every one of them was printed already', () => {
  const message = 'exited with code 1; last stderr lines:\nfirst\nsecond';
  expect(withoutShownStderr(message, new Set(['first', 'second', 'other']))).toBe('exited with code 1 (its stderr is above)');
  expect(withoutShownStderr(message, new Set(['second']))).toBe(message);
  expect(withoutShownStderr(message, undefined)).toBe(message);
  expect(withoutShownStderr('exited with code 1 (no stderr output)', new Set(['x']))).toBe('exited with code 1 (no stderr output)');
});

describe('deadlineLine', () => {
  const now = Date.parse('2026-12-04T10:00:00.000Z');
  it('says when an open run ends by, and in how long', () => {
    expect(deadlineLine({ status: 'RUNNING', timeoutSeconds: 900, deadlineAt: '2026-12-04T10:12:00.000Z' }, now)).toBe(
      'ends by 2026-12-04T10:12:00.000Z (time limit 900 s), in 12m00s',
    );
  });
  it('says the limit counts from admission while the run waits for it', () => {
    expect(deadlineLine({ status: 'QUEUED', timeoutSeconds: 60, deadlineAt: null }, now)).toBe('time limit 60 s, counted from its admission');
  });
  it('says nothing for a run without a limit or one that has ended', () => {
    expect(deadlineLine({ status: 'RUNNING', timeoutSeconds: null, deadlineAt: null }, now)).toBeNull();
    expect(deadlineLine({ status: 'FAILED', timeoutSeconds: 60, deadlineAt: '2026-12-04T09:00:00.000Z' }, now)).toBeNull();
  });
});

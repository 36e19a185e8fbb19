import { describe, expect, it } from 'vitest';
import { type ExecutorEvent, SEQ_BLOCK } from '../../plugins/protocol';
import type { TaskStatus } from '../vocabulary';
import { secondResults } from './attempts';
import { secondCurrentResults, walkFresh, walkReports } from './batch-walk';
import type { RecordedTask } from './recorded-tasks';

const base = (taskId: string, attempt = 1) => ({ taskId, runId: 'r', attempt, host: 'h', at: '2026-01-01T00:00:00.000Z' });
const started = (taskId: string, seq = 1, attempt = 1): ExecutorEvent => ({ ...base(taskId, attempt), kind: 'started', seq, handle: null });
const heartbeat = (taskId: string, seq: number, attempt = 1): ExecutorEvent => ({ ...base(taskId, attempt), kind: 'heartbeat', seq });
const progress = (taskId: string, seq: number, attempt = 1): ExecutorEvent => ({
  ...base(taskId, attempt),
  kind: 'progress',
  seq,
  fraction: seq / 10,
  message: `${seq}`,
});
const result = (taskId: string, seq: number, state: 'SUCCEEDED' | 'FAILED' = 'SUCCEEDED', attempt = 1): ExecutorEvent => ({
  ...base(taskId, attempt),
  kind: 'result',
  seq,
  durationMs: 1,
  outcome: { state },
});
const task = (id: string, status: TaskStatus = 'RUNNING', attempt = 1) => ({ id, status, attempt }) as RecordedTask;
const known = (...tasks: RecordedTask[]) => new Map(tasks.map((t) => [t.id, t]));

describe('walkReports: one walk sorts a batch', () => {
  it('says a batch of current attempts is all current: its reports as they came, heartbeats and unknown tasks left out', () => {
    const events = [started('a'), heartbeat('a', 2), progress('b', 1), result('a', 3), started('x')];
    const walk = walkReports(events, known(task('a', 'QUEUED'), task('b')));
    expect(walk).toEqual({ reports: [events[0], events[2], events[3]], notCurrent: [], allCurrent: true });
  });

  it("is not all current for a stale attempt's report, an ended task's, a later attempt's, or a stale attempt's heartbeat alone", () => {
    const tasks = known(task('moved', 'QUEUED', 2), task('done', 'SUCCEEDED'), task('early', 'RUNNING', 1), task('a'));
    const stale = progress('moved', 1);
    const late = progress('done', 5);
    const later = started('early', 1, 2);
    expect(walkReports([started('a'), stale, late, later], tasks)).toMatchObject({ notCurrent: [stale, late, later], allCurrent: false });
    // A heartbeat is no report, but it makes a zombie: the batch takes the ended attempts' checks.
    expect(walkReports([started('a'), heartbeat('moved', 3)], tasks)).toEqual({ reports: [started('a')], notCurrent: [], allCurrent: false });
  });
});

describe('secondCurrentResults: second results among current attempts, by task', () => {
  it('agrees with secondResults: the first execution decides, the same execution twice is no second', () => {
    const first = result('a', 2);
    const again = result('a', 2);
    const other = result('a', SEQ_BLOCK + 2, 'FAILED');
    const reports = [started('a'), first, again, other, result('b', 4), started('b')];
    const seconds = secondCurrentResults(reports);
    expect([...seconds]).toEqual([[other, 0]]);
    expect(seconds).toEqual(secondResults(reports, () => 1, new Map()));
  });
});

describe('walkFresh: what is new, sorted once', () => {
  it("sorts notes and moves, takes each task's latest progress by number, and gives a success its own attempt's progress", () => {
    const p5 = progress('a', 5);
    const p3 = progress('a', 3);
    const p7 = progress('a', 7);
    const old = progress('b', 2, 1);
    const fresh = [started('a'), p5, p3, result('a', 6), p7, old, { ...result('b', 3, 'SUCCEEDED', 2), runId: 's' }, progress('c', 1)];
    const walk = walkFresh(fresh);
    expect(walk.notes).toEqual([p5, p3, p7, old, fresh[7]]);
    expect([...walk.moves]).toEqual([
      ['r', [fresh[0], fresh[3]]],
      ['s', [fresh[6]]],
    ]);
    expect(walk.hasResult).toBe(true);
    // `b`'s progress is its attempt 1's, its success attempt 2's: written by the heartbeat's update, not the success's.
    expect([...walk.withSuccess]).toEqual([['a', p7]]);
    expect(walk.alive).toEqual([old, fresh[7]]);
  });

  it('has no result and no success for a batch of starts and progress', () => {
    const walk = walkFresh([started('a'), progress('a', 2)]);
    expect(walk).toMatchObject({ hasResult: false, withSuccess: new Map(), alive: [progress('a', 2)] });
  });
});

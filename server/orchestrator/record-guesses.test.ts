// What the recorder's guesses hold and which batches they cover (record-guesses.ts), without a database: a dispatch
// held, followed by the feed events of later commits, let go at the run's end and past the bound; batches it does not
// cover answered undefined (the ordinary path). The guard itself is tested on Postgres (test/db/recording-guesses).
import { describe, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import type { Run, Task } from '../db/tables/runs';
import { RecordingGuesses } from './record-guesses';

const run = (id = 'run-1'): Run => ({ id, status: 'QUEUED', startedAt: null, createdAt: new Date(0), parentTaskId: null }) as unknown as Run;
const task = (id = 'task-1', runId = 'run-1'): Task =>
  ({
    id,
    runId,
    node: 'work',
    attempt: 0,
    kind: 'module',
    cacheKey: null,
    mapParent: null,
    dataAccess: null,
    hotCluster: null,
    moduleVersionId: 'v',
  }) as unknown as Task;
const base = { taskId: 'task-1', runId: 'run-1', attempt: 1, host: 'h', at: '2026-01-01T00:00:00.000Z' };
const started: ExecutorEvent = { ...base, kind: 'started', seq: 1, handle: null };
const progress: ExecutorEvent = { ...base, kind: 'progress', seq: 2, fraction: 0.5, message: null };
const success: ExecutorEvent = { ...base, kind: 'result', seq: 3, durationMs: 1, outcome: { state: 'SUCCEEDED', outputs: {} } };

describe('RecordingGuesses', () => {
  it("guesses a held task's next attempt, queued, and its run's end for a single run", () => {
    const guesses = new RecordingGuesses();
    guesses.dispatched(run(), [task()], true);
    const guess = guesses.guess([started, progress, success])!;
    expect(guess.task).toMatchObject({ id: 'task-1', status: 'QUEUED', attempt: 1, cacheKey: null, othersEnded: [], attemptKey: null });
    expect(guess.ending).toBe(true);
    // Not single: a success is not guessed (its run has other tasks); a start and progress are.
    const other = new RecordingGuesses();
    other.dispatched(run(), [task()], false);
    expect(other.guess([started, progress, success])).toBeUndefined();
    expect(other.guess([started, progress])?.ending).toBe(false);
  });

  it('follows the feed of later commits, and lets a run go at its end', () => {
    const guesses = new RecordingGuesses();
    guesses.dispatched(run(), [task()], true);
    const at = '2026-01-01T00:00:01.000Z';
    guesses.committed([
      { kind: 'task-status', runId: 'run-1', taskId: 'task-1', node: 'work', status: 'RUNNING', attempt: 1, reason: null, message: null, at },
      { kind: 'run-status', runId: 'run-1', status: 'RUNNING', message: null, at },
    ]);
    const guess = guesses.guess([progress])!;
    expect(guess.task.status).toBe('RUNNING');
    expect(guess.run).toMatchObject({ status: 'RUNNING', startedAt: new Date(at) });
    guesses.committed([{ kind: 'run-status', runId: 'run-1', status: 'CANCELLED', message: null, at }]);
    expect(guesses.size).toBe(0);
    expect(guesses.guess([progress])).toBeUndefined();
  });

  it('covers only one current attempt of one held task, its starts, progress and one success', () => {
    const guesses = new RecordingGuesses();
    guesses.dispatched(run(), [task()], true);
    const failure: ExecutorEvent = { ...success, outcome: { state: 'FAILED', reason: 'x' } } as ExecutorEvent;
    expect(guesses.guess([failure])).toBeUndefined();
    expect(guesses.guess([{ ...progress, attempt: 2 }])).toBeUndefined();
    expect(guesses.guess([{ ...progress, taskId: 'task-2' }])).toBeUndefined();
    expect(guesses.guess([{ ...base, kind: 'heartbeat', seq: 0 } as ExecutorEvent])).toBeUndefined();
    expect(guesses.guess([progress, { ...progress }])).toBeUndefined(); // one seq twice
    expect(guesses.guess([{ ...progress, attemptKey: 'not-a-key' }])).toBeUndefined();
    expect(guesses.guess([started, { ...progress, attemptKey: '00000000-0000-4000-8000-000000000000' }])).toBeUndefined();
    // A miss lets the run go.
    guesses.missed('run-1');
    expect(guesses.guess([progress])).toBeUndefined();
  });

  it('holds no dispatch wider than a few tasks, nor a task with a cache key, and at most 1,000 runs', () => {
    const guesses = new RecordingGuesses();
    guesses.dispatched(
      run(),
      Array.from({ length: 9 }, (_, i) => task(`t${i}`)),
      false,
    );
    guesses.dispatched(run('run-2'), [{ ...task('c', 'run-2'), cacheKey: 'k' } as Task], false);
    expect(guesses.size).toBe(0);
    for (let i = 0; i < 1_005; i++) guesses.dispatched(run(`r${i}`), [task(`t${i}`, `r${i}`)], true);
    expect(guesses.size).toBe(1_000);
    expect(guesses.guess([{ ...progress, runId: 'r0', taskId: 't0' }])).toBeUndefined();
    expect(guesses.guess([{ ...progress, runId: 'r1004', taskId: 't1004' }])).toBeDefined();
  });
});

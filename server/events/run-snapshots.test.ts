// Snapshots shared by the subscribers who ask while a read waits its turn: never a read that began before one asked.
import { describe, expect, it } from 'vitest';
import type { SnapshotState } from './run-event-log';
import { createRunSnapshots } from './run-snapshots';

const state = (seq: number, taskStatus = 'RUNNING'): SnapshotState => ({
  run: { status: 'RUNNING', message: null, eventSeq: seq, deadlineAt: null },
  tasks: [{ id: 't1', node: 'a', status: taskStatus as SnapshotState['tasks'][number]['status'], attempt: 1, reason: null, message: null }],
});

/** A store whose reads are answered by the test, one at a time, with whatever state it holds then. */
function store() {
  let current = state(1);
  const pending: (() => void)[] = [];
  let begun = 0;
  return {
    set: (s: SnapshotState) => void (current = s),
    begun: () => begun,
    read: (_runId: string) => {
      begun++;
      const seen = current; // the state as of the read's beginning, as a transaction's snapshot
      return new Promise<SnapshotState>((resolve) => pending.push(() => resolve(seen)));
    },
    /** Answers the oldest read, once one has begun. */
    answer: async () => {
      while (!pending.length) await new Promise((r) => setTimeout(r, 0));
      pending.shift()!();
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

describe('run snapshots', () => {
  it('joins only a read that has not begun: who asks during a read gets the next one, shared', async () => {
    const db = store();
    const snapshots = createRunSnapshots(db.read, () => true);
    const first = snapshots.snapshot('r');
    await new Promise((r) => setTimeout(r, 0));
    expect(db.begun()).toBe(1);
    // Asked once the first read began: a change stored meanwhile must be in what they get.
    db.set(state(2));
    const second = snapshots.snapshot('r');
    const third = snapshots.snapshot('r');
    expect(second).toBe(third);
    await db.answer();
    expect((await first)?.seq).toBe(1);
    expect(db.begun()).toBe(2);
    await db.answer();
    expect((await second)?.seq).toBe(2);
    expect(await third).toBe(await second);
  });

  it('hands out the same event objects while the state is unchanged, new ones once it changed', async () => {
    const db = store();
    const snapshots = createRunSnapshots(db.read, () => true);
    const one = snapshots.snapshot('r');
    await db.answer();
    const two = snapshots.snapshot('r');
    await db.answer();
    expect((await two)?.events).toBe((await one)?.events);
    expect((await one)?.events.map((e) => e.kind)).toEqual(['task-status', 'run-status']);

    db.set(state(1, 'SUCCEEDED')); // a field changed under the same number: not the same state
    const three = snapshots.snapshot('r');
    await db.answer();
    expect((await three)?.events).not.toBe((await one)?.events);
    expect((await three)?.events[0]).toMatchObject({ status: 'SUCCEEDED', seq: 1 });
  });

  it('keeps nothing of a run nobody watches', async () => {
    const db = store();
    const snapshots = createRunSnapshots(db.read, () => false);
    const one = snapshots.snapshot('r');
    await db.answer();
    const two = snapshots.snapshot('r');
    await db.answer();
    expect((await two)?.events).not.toBe((await one)?.events);
  });
});

// A run's current state as events (each task's status, then the run's), read for the subscribers who start watching
// the run: one read for all who asked while the one before it was under way, and the same event objects handed to
// every subscriber whose read found the run as the last read did. The edge executes and serializes an event object
// once for all who share it (server/http/shared-results.ts), so a thousand dashboards opening one run cost a few
// reads and one execution of each snapshot event, not a thousand of each.
//
// Why sharing is safe: a subscriber asks for its snapshot only once it listens to the run's feed, and joins only a
// read that has not begun, so whatever is stored after the state that read sees reaches it from the feed (or from
// the store, for a number it finds skipped), as with a read of its own. A read that finds the same event number and
// the same fields as the last one hands out the last one's objects, `at` included: when that state was first read.
import type { RunStatus } from '../vocabulary';
import type { FeedEvent } from './feed';
import type { SnapshotState } from './run-event-log';

/** A run's state as events, all carrying the number of the latest event stored when it was read. */
export interface RunSnapshot {
  seq: number;
  status: RunStatus;
  events: readonly FeedEvent[];
}

/** The snapshot's events for a run's state read at `at` (ISO). */
export function snapshotEvents(runId: string, state: SnapshotState, at: string): RunSnapshot {
  const seq = state.run.eventSeq;
  const events: FeedEvent[] = state.tasks.map(
    ({ id: taskId, node, status, attempt, reason, message }) =>
      ({ kind: 'task-status', runId, taskId, node, status, attempt, reason, message, at, seq }) as FeedEvent,
  );
  const deadlineAt = state.run.deadlineAt?.toISOString() ?? null;
  events.push({ kind: 'run-status', runId, status: state.run.status, message: state.run.message, deadlineAt, at, seq } as FeedEvent);
  return { seq, status: state.run.status, events };
}

/** Whether two snapshots of a run show the same thing (their `at` aside). */
function sameState(a: RunSnapshot, b: RunSnapshot): boolean {
  if (a.seq !== b.seq || a.events.length !== b.events.length) return false;
  return a.events.every((event, i) => {
    const other = b.events[i]!;
    for (const key of Object.keys(event) as (keyof FeedEvent)[]) if (key !== 'at' && event[key] !== other[key]) return false;
    return true;
  });
}

export interface RunSnapshots {
  /** The run's state now (null: no such run), read after this call: ask only once listening to the run's feed. */
  snapshot(runId: string): Promise<RunSnapshot | null>;
  /** Drops what is kept of a run (its last snapshot) once nobody on this replica watches it. */
  forget(runId: string): void;
}

/**
 * `read` is one read of a run's stored state (the feed's `settled` read of `runSnapshot`); a run's last snapshot is
 * kept only while `watched` says someone on this replica watches it.
 */
export function createRunSnapshots(
  read: (runId: string) => Promise<SnapshotState | null>,
  watched: (runId: string) => boolean,
  now = () => new Date(),
): RunSnapshots {
  /** Per run: the read not yet begun, which a subscriber asking now joins. */
  const waiting = new Map<string, Promise<RunSnapshot | null>>();
  /** Per run: the read under way (the next one begins after it). */
  const underWay = new Map<string, Promise<unknown>>();
  const last = new Map<string, RunSnapshot>();
  return {
    snapshot(runId) {
      const joined = waiting.get(runId);
      if (joined) return joined;
      const before = underWay.get(runId) ?? Promise.resolve();
      const snapshot: Promise<RunSnapshot | null> = before.then(async () => {
        if (waiting.get(runId) === snapshot) waiting.delete(runId); // begun: nobody joins it any more
        const state = await read(runId);
        if (!state) return null;
        const fresh = snapshotEvents(runId, state, now().toISOString());
        const previous = last.get(runId);
        if (previous && sameState(previous, fresh)) return previous;
        if (watched(runId)) last.set(runId, fresh);
        return fresh;
      });
      waiting.set(runId, snapshot);
      const settled = snapshot.then(
        () => undefined,
        () => undefined,
      );
      underWay.set(runId, settled);
      void settled.then(() => {
        if (underWay.get(runId) === settled) underWay.delete(runId);
      });
      return snapshot;
    },
    forget(runId) {
      last.delete(runId);
    },
  };
}

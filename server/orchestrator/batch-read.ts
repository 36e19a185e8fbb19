// The recorder's ordinary first round trip (record-events.ts): a batch's reads under its run's lock, its log caps'
// counts and its early insert, sent at once. The guessed path (record-guesses.ts) sends none of the reads and returns
// the same answer as guessed.
import type { ExecutorEvent } from '../../plugins/protocol';
import type { Run } from '../db/tables/runs';
import { isUuid } from '../db/uuid';
import type { BatchScan } from './batch-walk';
import type { TxContext } from './context';
import { type EarlyInsert, insertIfCurrent } from './event-insert';
import { type CappedLogs, capLogs } from './log-cap';
import { lockRuns, type RecordedTask, recordedTasks } from './recorded-tasks';

/** A batch's reads, as read (or as guessed): its log events capped, the runs locked, the tasks, the early insert. */
export interface BatchRead {
  capped: CappedLogs;
  lockedRuns: Run[];
  taskRows: RecordedTask[];
  early: EarlyInsert;
}

/** The batch's reads under its run's lock, sent at once with its early insert: the ordinary path's first round trip. */
export async function readBatch(tc: TxContext, given: ExecutorEvent[], { taskIds, runIds, ending, logs }: BatchScan): Promise<BatchRead> {
  const { ctx, tx } = tc;
  // The run whose tasks start or end (one, by recordEvents' parts), and every run whose live events this stores (their
  // numbers bumped on its row at the end), locked in id order before any of their tasks is written: a run before its
  // tasks, as a cancel and the sweep take them. (Taken at the end, a run's row deadlocked with a cancel holding it and
  // waiting for a task whose progress this had written, and with a transaction holding it and waiting for the pool's
  // lock that this one's dispatch held.) A heartbeat's run is taken too: its task's row is written, and unordered
  // (one update for several tasks, in whatever order its plan meets them) it deadlocked with a cancel writing the same
  // tasks under their run's lock. The lock and the read are sent at once: Postgres runs the read after the locks are
  // granted, and takes its snapshot then. The batch's events go with them, as far as they can be decided before the
  // read (event-insert.ts), but for its log events, whose lines the caps decide (log-cap.ts): their counts are read
  // first, in the same round trip (sent at once, so their rows are locked before the runs, in every recording alike).
  // The stale reports are left out below, once read.
  // A batch without log events has no counts to read (capLogs would send nothing and answer the batch as it is).
  const capping = logs
    ? capLogs(tc, given, { maxBytes: ctx.maxLogBytes, maxLines: ctx.maxLogLines })
    : { events: given, fresh: new Set<ExecutorEvent>(), writes: [] };
  const writing = [...runIds].filter((id) => isUuid(id));
  const [capped, lockedRuns, taskRows, early] = await Promise.all([
    capping,
    writing.length ? lockRuns(tx, writing) : [],
    recordedTasks(tx, taskIds, ending, ctx.runEdges.downstreamOf(given.find((e) => e.taskId === taskIds[0])!.runId, taskIds[0]!)),
    insertIfCurrent(tx, logs ? given.filter((e) => e.kind !== 'log') : given),
  ]);
  return { capped, lockedRuns, taskRows, early };
}

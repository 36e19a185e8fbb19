// Live events of what is logged outside the orchestrator (an external run opened and ended, metrics logged through
// the MLflow routes or the GraphQL logging mutations, by a notebook or by a module's MLflow client): stored with the
// change in its transaction and published once it commits, as the orchestrator does, so run pages, the runs list and
// every subscriber follow a notebook's run as they follow a workflow's.
import { encodeMetricValue } from '../../plugins/metric-values';
import { type Db, retryingTransaction, type Tx } from '../db/client';
import type { FeedEventBody, RunFeed } from '../events/feed';
import type { Tracked } from './access';
import type { MetricPointInput } from './metrics';

/** What logging needs of the run feed. */
export type LiveFeed = Pick<RunFeed, 'append' | 'publish'>;

/**
 * Runs `work` in one transaction; the events it emits are stored in that transaction and published after commit.
 * `work` writes only through `tx`, so a transaction Postgres aborted for another's sake is run again (retryingTransaction).
 */
export async function withLiveEvents<T>(db: Db, feed: LiveFeed, work: (tx: Tx, emit: (...events: FeedEventBody[]) => void) => Promise<T>): Promise<T> {
  const { value, stored } = await retryingTransaction(db, async (tx) => {
    const events: FeedEventBody[] = [];
    const value = await work(tx, (...more) => events.push(...more));
    return { value, stored: await feed.append(tx, events) };
  });
  feed.publish(stored);
  return value;
}

/** The run's and its task's status, as a run page and the runs list show them. */
export function statusEvents({ run, task }: Tracked, message: string | null = null): FeedEventBody[] {
  const at = new Date().toISOString();
  return [
    { kind: 'task-status', runId: run.id, taskId: task.id, node: task.node, status: task.status, attempt: task.attempt, reason: null, message, at },
    { kind: 'run-status', runId: run.id, status: run.status, message, at },
  ];
}

/** The points just stored, as one metric event (none for no points). */
export function metricEvents({ run, task }: Tracked, stored: readonly MetricPointInput[]): FeedEventBody[] {
  if (!stored.length) return [];
  const points = stored.map((p) => ({ name: p.name, value: encodeMetricValue(p.value), step: p.step, seq: p.seq }));
  const metrics = Object.fromEntries(points.map((p) => [p.name, p.value]));
  const attempt = stored[0]!.attempt;
  return [
    { kind: 'task-metric', runId: run.id, taskId: task.id, node: task.node, attempt, points, metrics, step: points.at(-1)!.step, at: new Date().toISOString() },
  ];
}

// A task's stored metric history, fetched once per run page and task: its metric names (from Run.metrics), then
// each series downsampled by the server, merged into the store's series beside the live points.
import type { Client } from '@urql/preact';
import { RUN_METRIC_NAMES, TASK_METRIC_HISTORY } from './documents';
import type { RunStore } from './store';

const MAX_POINTS = 1000;
const loaded = new WeakMap<RunStore, Map<string, Promise<void>>>();

/** Loads the task's stored history into `store` (once per store and task); resolves when it is in. */
export function loadMetricHistory(client: Client, store: RunStore, runId: string, task: { id: string; node: string }): Promise<void> {
  let perTask = loaded.get(store);
  if (!perTask) loaded.set(store, (perTask = new Map()));
  const existing = perTask.get(task.id);
  if (existing) return existing;
  const loading = (async () => {
    const names = await client.query(RUN_METRIC_NAMES, { id: runId }, { requestPolicy: 'network-only' }).toPromise();
    const mine = (names.data?.run?.metrics ?? []).filter((m) => m.taskId === task.id).map((m) => m.name);
    const series = await Promise.all(
      mine.map((name) => client.query(TASK_METRIC_HISTORY, { taskId: task.id, name, maxPoints: MAX_POINTS }, { requestPolicy: 'network-only' }).toPromise()),
    );
    for (const r of series) {
      const node = r.data?.node;
      const history = node && 'metricHistory' in node ? node.metricHistory : null;
      if (history) store.metricsOf(task.node).addPoints(history.points.map((p) => ({ name: history.name, step: p.step, value: p.value, seq: p.seq })));
    }
    store.metricsLoaded();
  })();
  perTask.set(task.id, loading);
  return loading;
}

// The selected task: overview (attempts, timings, parameters, outputs, datasets its MLflow client declared), its live
// logs and metric charts.

import { useClient } from '@urql/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { LogView } from '../../components/log-view';
import { MetricCharts } from '../../components/metric-charts';
import { StatusBadge, terminalTaskStatuses } from '../../components/status';
import { DataTable } from '../../components/table';
import { formatDateTime, formatDuration, span } from '../../lib/format';
import { Link, navigate, useLocation, withQuery } from '../../router';
import { TASK_LOGS } from './documents';
import { loadMetricHistory } from './metric-history';
import { type RunData, type RunStatus, type RunStore, type TaskView, waitingReasonOf } from './store';

const tabs = [
  { id: 'overview', label: 'Overview' },
  { id: 'logs', label: 'Logs' },
  { id: 'metrics', label: 'Metrics' },
] as const;
type Tab = (typeof tabs)[number]['id'];

/** History fetched per run (every task at once: the API has no single-task query), capped in total. */
const HISTORY_LINES = 100_000;
const historyLoaded = new WeakMap<RunStore, Promise<void>>();

export function TaskPanel({
  store,
  run,
  task,
  runStatus,
  onClose,
}: {
  store: RunStore;
  /** changes whenever the store does: a new value re-renders the panel */
  version: number;
  run: RunData;
  task: TaskView;
  runStatus: RunStatus;
  /** the clock tick: a new value re-renders the panel */
  now: number;
  onClose(): void;
}) {
  const { query } = useLocation();
  const tab: Tab = tabs.some((t) => t.id === query.get('tab')) ? (query.get('tab') as Tab) : 'overview';
  const tabRefs = useRef<Record<string, HTMLButtonElement | null>>({});
  const client = useClient();
  const [historyState, setHistoryState] = useState<'idle' | 'loading' | 'done'>('idle');

  useEffect(() => {
    if (tab !== 'logs') return;
    let loading = historyLoaded.get(store);
    if (!loading) {
      const perTask = Math.max(200, Math.min(10_000, Math.floor(HISTORY_LINES / Math.max(1, run.tasks.length))));
      loading = client
        .query(TASK_LOGS, { id: run.id, limit: perTask }, { requestPolicy: 'network-only' })
        .toPromise()
        .then((r) => {
          for (const t of r.data?.run?.tasks ?? []) store.logsOf(t.node).mergeHistory(t.logs ?? []);
        });
      historyLoaded.set(store, loading);
    }
    let current = true;
    setHistoryState('loading');
    loading.finally(() => current && setHistoryState('done'));
    return () => void (current = false);
  }, [tab, store]);

  const [metricsState, setMetricsState] = useState<'loading' | 'done'>('loading');
  useEffect(() => {
    if (tab !== 'metrics' || !task.id) return;
    let current = true;
    setMetricsState('loading');
    loadMetricHistory(client, store, run.id, { id: task.id, node: task.node }).finally(() => current && setMetricsState('done'));
    return () => void (current = false);
  }, [tab, store, task.id]);

  const setTab = (id: Tab) => navigate(withQuery({ tab: id === 'overview' ? null : id }), { replace: true });
  const onTabKey = (e: KeyboardEvent) => {
    const i = tabs.findIndex((t) => t.id === tab);
    const next =
      e.key === 'ArrowRight'
        ? (i + 1) % tabs.length
        : e.key === 'ArrowLeft'
          ? (i + tabs.length - 1) % tabs.length
          : e.key === 'Home'
            ? 0
            : e.key === 'End'
              ? tabs.length - 1
              : -1;
    if (next < 0) return;
    e.preventDefault();
    setTab(tabs[next]!.id);
    tabRefs.current[tabs[next]!.id]?.focus();
  };
  const buffer = store.logsOf(task.node);
  const metrics = store.metrics.get(task.node);

  return (
    <section class="card task-panel" aria-labelledby="task-title">
      <div class="task-panel-header">
        <h2 id="task-title" class="card-title">
          Task <code>{task.node}</code> <StatusBadge status={task.status} />
        </h2>
        <div role="tablist" aria-label={`About task ${task.node}`} class="tabs" onKeyDown={onTabKey}>
          {tabs.map((t) => (
            <button
              key={t.id}
              ref={(el) => void (tabRefs.current[t.id] = el)}
              type="button"
              role="tab"
              id={`tab-${t.id}`}
              aria-selected={tab === t.id}
              aria-controls={`panel-${t.id}`}
              tabIndex={tab === t.id ? 0 : -1}
              onClick={() => setTab(t.id)}
            >
              {t.label}
              {t.id === 'logs' && buffer.length > 0 && (
                <span class="count">{buffer.length > 9999 ? `${Math.floor(buffer.length / 1000)}k` : buffer.length}</span>
              )}
            </button>
          ))}
        </div>
        <button type="button" class="button subtle" onClick={onClose} aria-label={`Close task ${task.node}`}>
          ✕
        </button>
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} class="tab-panel">
        {tab === 'overview' && <Overview task={task} run={run} runStatus={runStatus} />}
        {tab === 'logs' && <LogView buffer={buffer} version={buffer.version} label={`task ${task.node}`} loading={historyState === 'loading'} />}
        {tab === 'metrics' && (
          <MetricCharts
            metrics={metrics}
            version={metrics?.version ?? 0}
            running={!terminalTaskStatuses.has(task.status)}
            loading={metricsState === 'loading'}
          />
        )}
      </div>
    </section>
  );
}

const WITHHELD = 'Withheld: none of your teams is granted this run’s domain.';

function Overview({ task, run, runStatus }: { task: TaskView; run: RunData; runStatus: RunStatus }) {
  const module = task.moduleVersion?.ref ?? task.moduleRef;
  const moduleName = module?.split('@')[0];
  const waitingReason = waitingReasonOf(task);
  const hit = task.cacheHit;
  // A task's parameters are always there when its data is readable: null means the API withheld its data.
  const withheld = task.parameters === null;
  return (
    <div class="overview">
      {waitingReason && (
        <p class="banner warn" role="status">
          <strong>Waiting:</strong> {waitingReason}. <Link href="/executors">See the executors</Link>
        </p>
      )}
      {hit && (
        <p class="banner cache-hit" data-testid="cache-hit">
          <span class="chip cache">from cache</span> Completed from the cached result of{' '}
          {hit.sourceRun ? (
            <Link href={`/runs/${hit.sourceRun.id}?task=${encodeURIComponent(hit.sourceTask?.node ?? task.node)}`}>
              task {hit.sourceTask?.node ?? task.node} of run {hit.sourceRun.id.slice(0, 8)}
            </Link>
          ) : (
            'an earlier run (since deleted)'
          )}
          , without executing: {formatDuration(hit.savedMs)} saved.
        </p>
      )}
      <dl class="summary">
        <div>
          <dt>Attempt</dt>
          <dd>
            {task.attempt} of {task.maxAttempts}
          </dd>
        </div>
        <div>
          <dt>Module</dt>
          <dd>{module ? <Link href={`/modules/${moduleName}`}>{module}</Link> : (task.workflowRef ?? '—')}</dd>
        </div>
        {task.moduleRef && task.moduleVersion && task.moduleRef !== task.moduleVersion.ref && (
          <div>
            <dt>As named</dt>
            <dd>{task.moduleRef}</dd>
          </div>
        )}
        <div>
          <dt>Executor</dt>
          <dd>
            {task.executor || '—'} <span class="muted">pool {task.pool || '—'}</span>
          </dd>
        </div>
        <div>
          <dt>Host</dt>
          <dd>{task.host ?? '—'}</dd>
        </div>
        <div>
          <dt>Queued</dt>
          <dd>{formatDateTime(task.queuedAt)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{formatDateTime(task.startedAt)}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{formatDateTime(task.finishedAt)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatDuration(task.finishedAt ? (task.durationMs ?? span(task.startedAt, task.finishedAt)) : span(task.startedAt, null))}</dd>
        </div>
        {task.provisioningMs !== null && (
          <div>
            <dt>Provisioning</dt>
            <dd>{formatDuration(task.provisioningMs)}</dd>
          </div>
        )}
        {task.executionMs !== null && (
          <div>
            <dt>Execution</dt>
            <dd>{formatDuration(task.executionMs)}</dd>
          </div>
        )}
        {task.exitCode !== null && (
          <div>
            <dt>Exit code</dt>
            <dd>{task.exitCode}</dd>
          </div>
        )}
        {task.status === 'RUNNING' && task.progress !== null && (
          <div>
            <dt>Progress</dt>
            <dd>
              <progress max={1} value={task.progress} aria-label={`Progress of ${task.node}`} /> {Math.round(task.progress * 100)}% {task.progressMessage}
            </dd>
          </div>
        )}
        {task.retryAt && task.status === 'RETRYING' && (
          <div>
            <dt>Next attempt</dt>
            <dd>{formatDateTime(task.retryAt)}</dd>
          </div>
        )}
        {task.reusedFromTaskId && (
          <div>
            <dt>Result</dt>
            <dd>
              <span class="chip">reused</span>{' '}
              {run.sourceRunId ? (
                <Link href={`/runs/${run.sourceRunId}?task=${encodeURIComponent(task.node)}`}>from the source run</Link>
              ) : (
                'from an earlier run'
              )}
            </dd>
          </div>
        )}
        {task.childRun && (
          <div>
            <dt>Nested run</dt>
            <dd>
              <Link href={`/runs/${task.childRun.id}`}>run {task.childRun.id.slice(0, 8)}</Link> <StatusBadge status={task.childRun.status} />
            </dd>
          </div>
        )}
        <div>
          <dt>Trigger rule</dt>
          <dd>{task.triggerRule.replace('_', ' ')}</dd>
        </div>
        {task.condition && (
          <div>
            <dt>Runs when</dt>
            <dd>
              <code data-testid="task-condition">{task.condition}</code>
            </dd>
          </div>
        )}
      </dl>
      {(task.message || task.reason) && !hit && (
        <p class={task.status === 'FAILED' || task.status === 'TIMED_OUT' ? 'error-text' : 'muted'}>
          {task.reason && <strong>{task.reason}: </strong>}
          {task.message}
        </p>
      )}
      <div class="two-col">
        <div>
          <h3>Parameters</h3>
          {withheld ? <p class="muted">{WITHHELD}</p> : <pre class="json">{JSON.stringify(task.parameters, null, 2)}</pre>}
        </div>
        <div>
          <h3>Outputs</h3>
          {withheld ? (
            <p class="muted">{WITHHELD}</p>
          ) : task.outputs ? (
            <pre class="json">{JSON.stringify(task.outputs, null, 2)}</pre>
          ) : (
            <p class="muted">{terminalTaskStatuses.has(task.status) || runStatus === 'CANCELLED' ? 'No outputs.' : 'Outputs appear when the task ends.'}</p>
          )}
        </div>
      </div>
      {task.declaredDatasets && task.declaredDatasets.length > 0 && (
        <>
          <h3>Declared datasets</h3>
          <p class="muted">What its MLflow client said it read (mlflow.log_input, autolog): not traced by Atelier, counted in no label.</p>
          <DataTable
            label="Declared datasets"
            rows={task.declaredDatasets}
            rowKey={(d) => `${d.name}@${d.digest}`}
            rowProps={(d) => ({ 'data-declared': `${d.name}@${d.digest}` })}
            columns={[
              { header: 'Dataset', cell: (d) => <strong>{d.name}</strong> },
              { header: 'Digest', cell: (d) => <code>{d.digest}</code> },
              { header: 'Context', cell: (d) => d.context ?? '—' },
              { header: 'Source', cell: (d) => d.sourceType },
            ]}
          />
        </>
      )}
      <h3>Attempts</h3>
      {task.attempts === null ? (
        <p class="muted">{WITHHELD}</p>
      ) : (
        <DataTable
          rows={task.attempts}
          rowKey={(a) => a.attempt}
          empty={<p class="muted">{hit ? 'None: it did not execute.' : 'No attempt has ended yet.'}</p>}
          columns={[
            { header: '#', class: 'num', cell: (a) => a.attempt },
            { header: 'Outcome', cell: (a) => (a.state ? <StatusBadge status={a.state} /> : <StatusBadge status="RUNNING" />) },
            { header: 'Host', cell: (a) => a.host ?? '—' },
            { header: 'Started', cell: (a) => formatDateTime(a.startedAt) },
            { header: 'Finished', cell: (a) => formatDateTime(a.finishedAt) },
            { header: 'Duration', class: 'num', cell: (a) => formatDuration(a.durationMs) },
            { header: 'Reason', class: 'row-message', cell: (a) => [a.reason, a.message].filter(Boolean).join(': ') },
          ]}
        />
      )}
    </div>
  );
}

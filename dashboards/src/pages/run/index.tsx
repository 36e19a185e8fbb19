// The run page: the live DAG, the run's actions (cancel, clone with changed parameters, rerun), and the
// selected task's details, logs and metrics. Everything moves with the `runEvents` subscription; details
// that events do not carry (attempts, exact timings) are fetched again when a task settles.

import { useClient } from '@urql/preact';
import { Component } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks';
import { foundOrNot, refetch as refetchNow } from '../../api/client';
import { Dag, type DagNode, MAX_DRAWN_NODES } from '../../components/dag';
import { ScheduleLink } from '../../components/links';
import { NotFoundState, QueryState } from '../../components/states';
import { StatusBadge, terminalRunStatuses } from '../../components/status';
import { Table } from '../../components/table';
import { formatDateTime, formatDuration, span, Time } from '../../lib/format';
import { useNow, useThrottled } from '../../lib/hooks';
import { useLiveRefresh } from '../../lib/live-refresh';
import { useQuery } from '../../lib/query';
import { useTitle } from '../../lib/title';
import { Link, navigate, useLocation, withQuery } from '../../router';
import { EXECUTORS_CHANGED } from '../executor-documents';
import { CloneForm, RunActions } from './actions';
import { RUN, RUN_EVENTS } from './documents';
import { fromCache, type RunData, type RunStatus, RunStore, type TaskView, waitingReasonOf, waitingStatuses } from './store';
import { TaskPanel } from './task-panel';
import { TimeLimit } from './time-limit';

export default function RunPage({ id }: { id: string }) {
  const client = useClient();
  const store = useMemo(() => new RunStore(), [id]);
  const version = useStoreVersion(store);
  const [result, reexecute] = useQuery({ query: RUN, variables: { id } });
  const [liveError, setLiveError] = useState<string | null>(null);
  const { query } = useLocation();
  const selected = query.get('task');

  const refetch = useThrottled(() => reexecute({ requestPolicy: 'network-only' }), 1000);
  store.onTaskSettled = refetch;
  store.onTaskWaiting = refetch;

  const run = result.data?.run;
  // The store takes each fetched run as it is rendered, so the first render with data already shows the tasks.
  if (run) store.setRun(run, { silent: true });

  useEffect(() => {
    setLiveError(null);
    const subscription = client.subscription(RUN_EVENTS, { runId: id }).subscribe((r) => {
      if (r.data) {
        const event = r.data.runEvents;
        store.apply(event);
        if (event.__typename === 'RunStatusEvent' && store.snapshotDone && terminalRunStatuses.has(event.runStatus)) refetch();
      } else if (r.error) setLiveError(r.error.message.replace(/^\[\w+\]\s*/, ''));
    });
    return () => subscription.unsubscribe();
  }, [client, id, store]);

  // Every status change that reached the page is now in the DOM: record how long that took.
  useLayoutEffect(() => store.markRendered());

  const status = store.status;
  const tasks = useMemo(() => store.tasks(), [version, run]);
  // Run events do not say why a task waits (no live host, no free slot): while one does, the page follows the
  // executor hosts (`executorsChanged`: a host announced, went silent, its load changed) and asks again on each change.
  const waiting = Boolean(status && !terminalRunStatuses.has(status)) && tasks.some((t) => waitingStatuses.has(t.status));
  useLiveRefresh(EXECUTORS_CHANGED, {}, refetch, [], waiting);
  const now = useNow(1000, Boolean(status && !terminalRunStatuses.has(status)));
  useTitle(run ? `${run.workflow?.name ?? 'External'} run ${run.id.slice(0, 8)}` : 'Run');

  return (
    <QueryState
      {...foundOrNot(result.error, result.data && (run && status ? { run, status } : null))}
      errorTitle="This run could not be loaded"
      retry={refetchNow(reexecute)}
      loading="Loading the run…"
      empty={
        <NotFoundState title="No such run" href="/runs" link="See all runs">
          There is no run with id <code>{id}</code>
          {'. '}
        </NotFoundState>
      }
    >
      {({ run, status }) => (
        <RunView store={store} version={version} run={run} status={status} tasks={tasks} selected={selected} now={now} liveError={liveError} />
      )}
    </QueryState>
  );
}

interface RunViewProps {
  store: RunStore;
  version: number;
  run: RunData;
  status: RunStatus;
  tasks: TaskView[];
  selected: string | null;
  now: number;
  liveError: string | null;
}

function RunView({ store, version, run, status, tasks, selected, now, liveError }: RunViewProps) {
  const selectedTask = selected ? (tasks.find((t) => t.node === selected) ?? null) : null;
  const select = (node: string | null) => navigate(withQuery({ task: node }), { replace: true });
  const nodes: DagNode[] = tasks.map((t) => ({
    id: t.node,
    label: t.node,
    status: t.status,
    progress: t.progress ?? null,
    dependsOn: t.dependsOn,
    detail:
      t.status === 'RUNNING' && t.progressMessage
        ? t.progressMessage
        : waitingReasonOf(t)
          ? `waiting: ${waitingReasonOf(t)}`
          : (t.moduleVersion?.ref ?? t.moduleRef ?? t.workflowRef ?? t.kind),
    badge: fromCache(t)
      ? 'from cache'
      : t.reusedFromTaskId
        ? 'reused'
        : t.attempt > 1
          ? `attempt ${t.attempt}/${t.maxAttempts}`
          : t.reason === 'condition-false'
            ? 'condition false'
            : t.condition && (t.status === 'PENDING' || t.status === 'READY')
              ? 'conditional'
              : null,
    badgeTone: fromCache(t) ? 'cache' : null,
  }));
  const message = store.message;
  const [cloning, setCloning] = useState(false);
  // A failed run names its failed tasks beside its message: one click opens a task's error and logs, also on a phone
  // where the graph and the table's message column sit beyond the screen's edge.
  const failed = status === 'FAILED' ? tasks.filter((t) => t.status === 'FAILED' || t.status === 'TIMED_OUT').slice(0, 3) : [];
  const showWhy = (node: string) => {
    select(node);
    requestAnimationFrame(() => document.querySelector('.task-panel')?.scrollIntoView({ block: 'start' }));
  };

  return (
    <section aria-labelledby="run-title" class="run-page">
      <nav class="breadcrumbs" aria-label="Breadcrumbs">
        <Link href="/runs">Runs</Link> <span aria-hidden="true">/</span>{' '}
        {run.workflow ? <Link href={`/workflows/${encodeURIComponent(run.workflow.name)}`}>{run.workflow.name}</Link> : <span>external</span>}{' '}
        <span aria-hidden="true">/</span> <span>run {run.id.slice(0, 8)}</span>
      </nav>
      <div class="page-header">
        <h1 id="run-title">
          {run.workflow?.name ?? 'External run'} <StatusBadge status={status} />
        </h1>
        <RunActions run={run} status={status} tasks={tasks} cloning={cloning} onClone={setCloning} />
      </div>
      {cloning && run.viewerCan.clone.allowed && <CloneForm run={run} tasks={tasks} onClose={() => setCloning(false)} />}
      {message && (
        <p class={`run-message${status === 'FAILED' ? ' error-text' : ''}`} role={status === 'FAILED' ? 'alert' : undefined}>
          {message}
        </p>
      )}
      {failed.some((t) => t.node !== selected) && (
        <p class="run-failed-tasks">
          {failed.map((t) => (
            <button key={t.node} type="button" class="button small" onClick={() => showWhy(t.node)}>
              See why {t.node} failed
            </button>
          ))}
        </p>
      )}
      {liveError && (
        <p class="banner warn" role="alert">
          Live updates stopped: {liveError}
        </p>
      )}
      <dl class="summary">
        <div>
          <dt>Trigger</dt>
          <dd>{run.trigger.toLowerCase()}</dd>
        </div>
        <div>
          <dt>Started by</dt>
          <dd>{run.schedule ? <ScheduleLink schedule={run.schedule} /> : (run.createdBy?.name ?? '—')}</dd>
        </div>
        {run.scheduleFire && (
          <div>
            <dt>Scheduled for</dt>
            <dd>
              <Time iso={run.scheduleFire.fireTime} />
              {run.scheduleFire.backfill && <span class="chip"> backfill</span>}
            </dd>
          </div>
        )}
        <div>
          <dt>Created</dt>
          <dd>
            <Time iso={run.createdAt} />
          </dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatDuration(span(run.startedAt ?? run.createdAt, terminalRunStatuses.has(status) ? (run.finishedAt ?? store.liveStatus?.at) : null))}</dd>
        </div>
        {run.timeoutSeconds != null && <TimeLimit seconds={run.timeoutSeconds} deadlineAt={store.deadlineAt} open={!terminalRunStatuses.has(status)} />}
        <div>
          <dt>Workflow version</dt>
          <dd>
            {run.workflowVersion ? `v${run.workflowVersion.version}` : 'none (logged from outside a workflow)'} · {run.domain}
          </dd>
        </div>
        {run.sourceRunId && (
          <div>
            <dt>{run.trigger === 'RERUN' ? 'Rerun of' : 'Cloned from'}</dt>
            <dd>
              <Link href={`/runs/${run.sourceRunId}`}>run {run.sourceRunId.slice(0, 8)}</Link>
            </dd>
          </div>
        )}
        {run.parentRunId && (
          <div>
            <dt>Parent run</dt>
            <dd>
              <Link href={`/runs/${run.parentRunId}`}>run {run.parentRunId.slice(0, 8)}</Link>
            </dd>
          </div>
        )}
        <div class="wide">
          <dt>Parameters</dt>
          <dd>
            {run.parameters === null ? (
              <span class="muted">Withheld: none of your teams is granted the {run.domain} domain.</span>
            ) : (
              <code class="params">{Object.keys(run.parameters as object).length ? JSON.stringify(run.parameters) : 'none'}</code>
            )}
          </dd>
        </div>
      </dl>

      <div class="card dag-card">
        <h2 class="card-title">
          Tasks <span class="muted">{summarize(tasks)}</span>
        </h2>
        {tasks.length > MAX_DRAWN_NODES ? (
          <p class="muted">This run has {tasks.length} tasks: too many to draw; they are listed below.</p>
        ) : (
          <Dag
            nodes={nodes}
            selected={selected}
            onSelect={(node) => select(node === selected ? null : node)}
            label={`Task graph of this run: ${tasks.length} tasks. Arrow keys move between tasks; Enter opens one.`}
          />
        )}
      </div>

      {selectedTask ? (
        <TaskPanel
          key={selectedTask.node}
          store={store}
          version={version}
          run={run}
          task={selectedTask}
          runStatus={status}
          now={now}
          onClose={() => select(null)}
        />
      ) : (
        <p class="hint select-hint">Select a task in the graph or the table to see its details, logs and metrics.</p>
      )}

      <details class="card" open={tasks.length <= 30 || tasks.length > MAX_DRAWN_NODES}>
        <summary>
          <h2 class="card-title inline">All tasks ({tasks.length})</h2>
        </summary>
        <TaskTable tasks={tasks} selected={selected} onSelect={select} now={now} />
      </details>
    </section>
  );
}

function summarize(tasks: TaskView[]): string {
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const parts = [...counts].map(([s, n]) => `${n} ${s.toLowerCase().replace('_', ' ')}`);
  const hits = tasks.filter(fromCache);
  if (hits.length) parts.push(`${hits.length} from cache, ${formatDuration(hits.reduce((sum, t) => sum + (t.cacheHit?.savedMs ?? 0), 0))} saved`);
  return parts.join(' · ');
}

// A task's row is a component of its own (below), so that a live change re-renders that row alone.
const taskColumns = ['Task', 'Status', 'Attempt', 'Module', 'Started', 'Duration', 'Message'].map((header) => ({ header }));

function TaskTable({ tasks, selected, onSelect, now }: { tasks: TaskView[]; selected: string | null; onSelect(node: string): void; now: number }) {
  const shown = tasks.slice(0, 2000);
  return (
    <Table
      columns={taskColumns}
      footer={
        tasks.length > shown.length && (
          <p class="muted">
            Showing the first {shown.length} of {tasks.length} tasks.
          </p>
        )
      }
    >
      {shown.map((t) => (
        <TaskRow key={t.node} task={t} selected={selected === t.node} onSelect={onSelect} now={t.finishedAt ? 0 : now} />
      ))}
    </Table>
  );
}

interface TaskRowProps {
  task: TaskView;
  selected: boolean;
  onSelect(node: string): void;
  /** 0 for a task that has finished: its duration no longer moves */
  now: number;
}

/** A row re-renders only when its task (the store keeps unchanged tasks as the same object) or selection changes. */
class TaskRow extends Component<TaskRowProps> {
  override shouldComponentUpdate(next: TaskRowProps) {
    return next.task !== this.props.task || next.selected !== this.props.selected || next.now !== this.props.now;
  }

  override render({ task: t, selected, onSelect }: TaskRowProps) {
    return (
      <tr class={selected ? 'selected' : undefined}>
        <td>
          <button type="button" class="link-button" onClick={() => onSelect(t.node)} aria-pressed={selected}>
            {t.node}
          </button>
        </td>
        <td>
          <StatusBadge status={t.status} />
          {t.status === 'RUNNING' && t.progress !== null && <span class="muted"> {Math.round(t.progress * 100)}%</span>}
        </td>
        <td class="num">
          {t.attempt}/{t.maxAttempts}
        </td>
        <td>{t.moduleVersion?.ref ?? t.moduleRef ?? t.workflowRef ?? '—'}</td>
        <td title={formatDateTime(t.startedAt)}>{t.startedAt ? <Time iso={t.startedAt} /> : '—'}</td>
        <td class="num">{formatDuration(t.finishedAt ? (t.durationMs ?? span(t.startedAt, t.finishedAt)) : span(t.startedAt, null))}</td>
        <td class="row-message">
          {fromCache(t) ? (
            <>
              <span class="chip cache">from cache</span>{' '}
              {t.cacheHit?.sourceRun && (
                <Link href={`/runs/${t.cacheHit.sourceRun.id}?task=${encodeURIComponent(t.cacheHit.sourceTask?.node ?? t.node)}`}>
                  run {t.cacheHit.sourceRun.id.slice(0, 8)}
                </Link>
              )}
            </>
          ) : (
            (waitingReasonOf(t) ?? t.message ?? t.reason ?? '')
          )}
        </td>
      </tr>
    );
  }
}

function useStoreVersion(store: RunStore): number {
  const [version, setVersion] = useState(store.version);
  useEffect(() => store.subscribe(() => setVersion(store.version)), [store]);
  return version;
}

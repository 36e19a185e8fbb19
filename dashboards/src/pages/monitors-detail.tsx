// A monitor's page: its state, target and rules, its metric as a chart (breaching buckets marked, annotated windows
// shaded), its alerts, and its history (changes, alert openings and people's feedback); pause and resume for whoever
// `viewerCan.change` allows.
import { useMutation } from '@urql/preact';
import { useMemo, useState } from 'preact/hooks';
import { errorMessage, foundOrNot, refetch } from '../api/client';
import { PermittedButton } from '../components/permitted';
import { FormError, NotFoundState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link } from '../router';
import { AlertStateChip, alertHref, EventsTable, Facts, TargetLink } from './alerts-common';
import { MonitorStateChip, monitorState } from './monitors';
import { MonitorChart } from './monitors-chart';

const MONITOR = graphql(`
  query MonitorDetail($id: ID!) {
    monitor(id: $id) {
      id name metric paused intervalSeconds lastEvaluatedAt createdAt
      createdBy { name }
      target { kind ref }
      team { name }
      rules { id kind aggregate windowSeconds above below baseline maxDrop higherIsBetter evaluationMetric trailingSeconds consecutive }
      alerts { id title state openedAt closedAt value }
      history { id kind at reason details alertId actor { name } }
      viewerCan { change { allowed reason } }
    }
  }
`);

const SERIES = graphql(`
  query MonitorSeries($target: MonitorTargetInput!, $metric: String!, $since: DateTime, $bucketSeconds: Int) {
    metricSeries(target: $target, metric: $metric, since: $since, bucketSeconds: $bucketSeconds) {
      key
      buckets { at mean count }
    }
  }
`);

const PAUSE = graphql(
  `mutation PauseMonitor($id: ID!, $paused: Boolean!, $reason: String) { pauseMonitor(id: $id, paused: $paused, reason: $reason) { id paused } }`,
);

type MonitorData = ResultOf<typeof MONITOR>['monitor'];
type Rule = MonitorData['rules'][number];

const spans = [
  { label: 'last hour', seconds: 3600 },
  { label: 'last 24 hours', seconds: 86_400 },
  { label: 'last 7 days', seconds: 7 * 86_400 },
];

function ruleText(r: Rule): string {
  const agg = `${r.aggregate.toLowerCase()} over ${r.windowSeconds}s`;
  const consecutive = r.consecutive > 1 ? `, ${r.consecutive} in a row` : '';
  if (r.kind === 'THRESHOLD') {
    const bounds = [r.above !== null && r.above !== undefined ? `above ${r.above}` : '', r.below !== null && r.below !== undefined ? `below ${r.below}` : '']
      .filter(Boolean)
      .join(' or ');
    return `${agg} ${bounds}${consecutive}`;
  }
  const base = r.baseline === 'EVALUATION' ? `evaluation metric ${r.evaluationMetric ?? ''}` : `trailing ${r.trailingSeconds ?? ''}s`;
  return `${agg} ${r.higherIsBetter === false ? 'rises' : 'drops'} more than ${((r.maxDrop ?? 0) * 100).toFixed(1)} % from ${base}${consecutive}`;
}

export default function MonitorPage({ id }: { id: string }) {
  const [result, reexecute] = useQuery({ query: MONITOR, variables: { id } });
  useTitle(result.data?.monitor?.name ?? 'Monitor');
  const refresh = refetch(reexecute);
  return (
    <QueryState
      {...foundOrNot(result.error, result.data?.monitor)}
      errorTitle="This monitor could not be loaded"
      retry={refresh}
      loading="Loading the monitor…"
      empty={<NotFoundState title="No such monitor that you may read" href="/monitors" link="See your monitors" />}
    >
      {(monitor) => <MonitorView monitor={monitor} onChange={refresh} />}
    </QueryState>
  );
}

function MonitorView({ monitor, onChange }: { monitor: MonitorData; onChange(): void }) {
  const [error, setError] = useState<string | null>(null);
  const [pauseState, pause] = useMutation(PAUSE);
  const togglePause = async () => {
    setError(null);
    const r = await pause({ id: monitor.id, paused: !monitor.paused, reason: monitor.paused ? 'resumed from the dashboards' : 'paused from the dashboards' });
    if (r.error) setError(errorMessage(r.error));
    else onChange();
  };
  const open = monitor.alerts.filter((a) => a.state === 'OPEN' || a.state === 'ACKNOWLEDGED');
  return (
    <section aria-labelledby="monitor-title">
      <nav class="breadcrumbs" aria-label="Breadcrumbs">
        <Link href="/monitors">Monitors</Link> <span aria-hidden="true">/</span> <span>{monitor.name}</span>
      </nav>
      <div class="page-header">
        <h1 id="monitor-title">
          {monitor.name} <MonitorStateChip state={monitorState({ paused: monitor.paused, alerts: open })} />
        </h1>
        <PermittedButton permission={monitor.viewerCan.change} class="button" disabled={pauseState.fetching} onClick={togglePause}>
          {monitor.paused ? 'Resume' : 'Pause'}
        </PermittedButton>
      </div>
      <FormError message={error} />
      <Facts
        items={[
          ['Target', <TargetLink target={monitor.target} />],
          ['Metric', <code>{monitor.metric}</code>],
          ['Team', monitor.team?.name ?? '—'],
          ['Every', `${monitor.intervalSeconds}s`],
          ['Evaluated', <Time iso={monitor.lastEvaluatedAt} />],
          [
            'Created',
            <>
              {monitor.createdBy?.name ?? '—'}, <Time iso={monitor.createdAt} />
            </>,
          ],
        ]}
      />
      <div class="card">
        <h2 class="card-title">Rules</h2>
        <DataTable
          wrap={false}
          label="Rules"
          rows={monitor.rules}
          rowKey={(r) => r.id}
          columns={[
            { header: 'Rule', rowHeader: true, cell: (r) => <code>{r.id}</code> },
            { header: 'Kind', cell: (r) => r.kind.toLowerCase() },
            { header: 'Breached when', cell: (r) => ruleText(r) },
          ]}
        />
      </div>
      <SeriesCard monitor={monitor} />
      <div class="card">
        <h2 class="card-title">Alerts</h2>
        <DataTable
          wrap={false}
          label="Alerts of this monitor"
          rows={monitor.alerts}
          rowKey={(a) => a.id}
          rowHref={(a) => alertHref(a.id)}
          empty={<p class="muted">No alert has opened.</p>}
          columns={[
            { header: 'Alert', rowHeader: true, cell: (a) => <Link href={alertHref(a.id)}>{a.title}</Link> },
            { header: 'State', cell: (a) => <AlertStateChip state={a.state} /> },
            { header: 'Opened', cell: (a) => <Time iso={a.openedAt} /> },
            { header: 'Closed', cell: (a) => <Time iso={a.closedAt} /> },
          ]}
        />
      </div>
      <div class="card">
        <h2 class="card-title">History</h2>
        <EventsTable label="Monitor history" events={monitor.history} withAlert />
      </div>
    </section>
  );
}

function SeriesCard({ monitor }: { monitor: MonitorData }) {
  const [span, setSpan] = useState(spans[1]!.seconds);
  const since = useMemo(() => new Date(Date.now() - span * 1000).toISOString(), [span]);
  const window = Math.min(...monitor.rules.map((r) => r.windowSeconds), 3600);
  const bucketSeconds = Math.max(window, Math.ceil(span / 2000));
  const [result, reexecute] = useQuery({
    query: SERIES,
    variables: { target: { kind: monitor.target.kind, ref: monitor.target.ref }, metric: monitor.metric, since, bucketSeconds },
  });
  const input = useMemo(() => {
    const buckets = result.data?.metricSeries[0]?.buckets ?? [];
    const seconds = (iso: string) => new Date(iso).getTime() / 1000;
    return {
      metric: monitor.metric,
      x: buckets.map((b) => seconds(b.at)),
      y: buckets.map((b) => b.mean),
      bounds: monitor.rules.filter((r) => r.kind === 'THRESHOLD').map((r) => ({ above: r.above ?? null, below: r.below ?? null })),
      alertsAt: monitor.alerts.map((a) => seconds(a.openedAt)),
      windows: monitor.history
        .filter((e) => e.kind === 'ANNOTATED')
        .map((e) => e.details as { from: string; to: string })
        .map((d) => ({ from: seconds(d.from), to: seconds(d.to) })),
    };
  }, [result.data, monitor]);
  return (
    <div class="card">
      <h2 class="card-title">Series</h2>
      <div class="filters">
        <label>
          Span
          <select value={span} onChange={(e) => setSpan(Number(e.currentTarget.value))}>
            {spans.map((s) => (
              <option key={s.seconds} value={s.seconds}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <QueryState
        data={result.data ? input : undefined}
        error={result.error}
        errorTitle="The series could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading the series…"
        isEmpty={(i) => i.x.length === 0}
        empty={<p class="muted">No observations of {monitor.metric} in this span.</p>}
      >
        {(i) => <MonitorChart input={i} />}
      </QueryState>
    </div>
  );
}

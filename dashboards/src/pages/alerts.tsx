// The alerts inbox: open (or all recent) alerts of the caller's teams; one selected (?alert=ID) shows its monitor,
// target and rule, the feedback actions with a reason (only to whoever `viewerCan.act` allows; a refusal the API
// answers anyway is shown beside them), and its history: who did what, when and why.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage, foundOrNot, refetch } from '../api/client';
import { DeniedReason } from '../components/permitted';
import { EmptyState, FormError, NotFoundState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';
import { AlertStateChip, EventsTable, Facts, monitorHref, TargetLink } from './alerts-common';

const ALERTS = graphql(`
  query Alerts($states: [AlertState!], $limit: Int) {
    alerts(states: $states, limit: $limit) {
      id title state rule value bound breaches openedAt closedAt
      target { kind ref }
      monitor { id name }
      team { name }
    }
  }
`);

const ALERT = graphql(`
  query AlertDetail($id: ID!) {
    alert(id: $id) {
      id title state rule value bound breaches openedAt updatedAt closedAt
      target { kind ref }
      monitor { id name metric rules { id kind } }
      team { name }
      viewerCan { act { allowed reason } }
      events { id kind at reason details alertId actor { name } }
    }
  }
`);

const ACKNOWLEDGE = graphql(`mutation AcknowledgeAlert($id: ID!, $reason: String) { acknowledgeAlert(id: $id, reason: $reason) { id state } }`);
const RESOLVE = graphql(`mutation ResolveAlert($id: ID!, $reason: String!) { resolveAlert(id: $id, reason: $reason) { id state } }`);
const FALSE_POSITIVE = graphql(`mutation FalsePositiveAlert($id: ID!, $reason: String!) { markAlertFalsePositive(id: $id, reason: $reason) { id state } }`);
const ANNOTATE = graphql(`
  mutation AnnotateAlert($id: ID!, $reason: String!, $from: DateTime, $to: DateTime) { annotateAlert(id: $id, reason: $reason, from: $from, to: $to) { id state } }
`);
const REBASELINE = graphql(`mutation RebaselineAlert($id: ID!, $reason: String!) { rebaselineAlert(id: $id, reason: $reason) { id state } }`);

const OPEN_STATES = ['OPEN', 'ACKNOWLEDGED'] as const;

export function AlertsPage() {
  useTitle('Alerts');
  const { query } = useLocation();
  const all = query.get('show') === 'all';
  const selected = query.get('alert');
  const [result, reexecute] = useQuery({
    query: ALERTS,
    variables: all ? { limit: 100 } : { states: [...OPEN_STATES], limit: 200 },
    requestPolicy: 'cache-and-network',
  });
  const refresh = refetch(reexecute);
  return (
    <section aria-labelledby="alerts-title">
      <div class="page-header">
        <h1 id="alerts-title">Alerts</h1>
      </div>
      <div class="filters">
        <label>
          Show
          <select value={all ? 'all' : 'open'} onChange={(e) => navigate(withQuery({ show: e.currentTarget.value === 'all' ? 'all' : null }))}>
            <option value="open">open alerts</option>
            <option value="all">all recent alerts</option>
          </select>
        </label>
        <Link href="/monitors">Monitors</Link>
        <Link href="/webhooks">Webhooks (how your teams hear of alerts)</Link>
      </div>
      {selected && <AlertCard key={selected} id={selected} onChange={refresh} />}
      <QueryState
        data={result.data?.alerts}
        error={result.error}
        errorTitle="Alerts could not be loaded"
        retry={refresh}
        loading="Loading alerts…"
        empty={
          <EmptyState title={all ? 'No alerts yet' : 'No open alerts'}>
            <p>Alerts of your teams’ monitors appear here when a rule breaches.</p>
          </EmptyState>
        }
      >
        {(alerts) => (
          <DataTable
            label="Alerts"
            rows={alerts}
            rowKey={(a) => a.id}
            rowHref={(a) => withQuery({ alert: a.id })}
            rowProps={(a) => ({ 'data-alert': a.id, 'aria-current': a.id === selected ? 'true' : undefined })}
            columns={[
              { header: 'Alert', rowHeader: true, cell: (a) => <Link href={withQuery({ alert: a.id })}>{a.title}</Link> },
              { header: 'State', cell: (a) => <AlertStateChip state={a.state} /> },
              { header: 'Monitor', cell: (a) => (a.monitor ? <Link href={monitorHref(a.monitor.id)}>{a.monitor.name}</Link> : <span class="muted">—</span>) },
              { header: 'Target', cell: (a) => <TargetLink target={a.target} /> },
              { header: 'Rule', cell: (a) => (a.rule ? <code>{a.rule}</code> : '—') },
              { header: 'Team', cell: (a) => a.team?.name ?? '—' },
              { header: 'Opened', cell: (a) => <Time iso={a.openedAt} /> },
            ]}
          />
        )}
      </QueryState>
    </section>
  );
}

const value = (n: number | null | undefined) => (n === null || n === undefined ? '—' : Number(n.toPrecision(6)).toString());

function AlertCard({ id, onChange }: { id: string; onChange(): void }) {
  const [result, reexecute] = useQuery({ query: ALERT, variables: { id }, requestPolicy: 'network-only' });
  const refresh = () => {
    reexecute({ requestPolicy: 'network-only' });
    onChange();
  };
  return (
    <QueryState
      {...foundOrNot(result.error, result.data?.alert)}
      errorTitle="This alert could not be loaded"
      retry={refresh}
      loading="Loading the alert…"
      empty={<NotFoundState title="No such alert that you may read" href="/alerts" link="See the open alerts" level={2} />}
    >
      {(alert) => {
        const rule = alert.monitor?.rules.find((r) => r.id === alert.rule);
        return (
          <div class="card" data-alert-detail={alert.id}>
            <h2 class="card-title">
              {alert.title} <AlertStateChip state={alert.state} />
            </h2>
            <Facts
              items={[
                ['Monitor', alert.monitor ? <Link href={monitorHref(alert.monitor.id)}>{alert.monitor.name}</Link> : '—'],
                ['Target', <TargetLink target={alert.target} />],
                [
                  'Rule',
                  alert.rule ? (
                    <code>
                      {alert.rule}
                      {rule ? ` (${rule.kind.toLowerCase()})` : ''}
                    </code>
                  ) : (
                    '—'
                  ),
                ],
                ['Value / bound', `${value(alert.value)} / ${value(alert.bound)} after ${alert.breaches} breach(es)`],
                ['Team', alert.team?.name ?? '—'],
                ['Opened', <Time iso={alert.openedAt} />],
                ['Closed', !!alert.closedAt && <Time iso={alert.closedAt} />],
              ]}
            />
            {alert.viewerCan.act.allowed ? (
              <AlertActions id={alert.id} state={alert.state} regression={rule?.kind === 'REGRESSION'} onDone={refresh} />
            ) : (
              <DeniedReason permission={alert.viewerCan.act} />
            )}
            <h3>History</h3>
            <EventsTable label="Alert history" events={alert.events} />
          </div>
        );
      }}
    </QueryState>
  );
}

function AlertActions({ id, state, regression, onDone }: { id: string; state: string; regression: boolean; onDone(): void }) {
  const [reason, setReason] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [, acknowledge] = useMutation(ACKNOWLEDGE);
  const [, resolve] = useMutation(RESOLVE);
  const [, falsePositive] = useMutation(FALSE_POSITIVE);
  const [, annotate] = useMutation(ANNOTATE);
  const [, rebaseline] = useMutation(REBASELINE);
  const open = state === 'OPEN' || state === 'ACKNOWLEDGED';
  const run = async (action: () => Promise<{ error?: unknown }>) => {
    setError(null);
    setBusy(true);
    const r = await action();
    setBusy(false);
    if (r.error) setError(errorMessage(r.error));
    else {
      setReason('');
      onDone();
    }
  };
  const iso = (local: string) => (local ? new Date(local).toISOString() : null);
  return (
    <form class="alert-actions" aria-label="Act on this alert" onSubmit={(e) => e.preventDefault()}>
      <label class="wide">
        Reason <span class="muted">(recorded in the monitor’s history; required except to acknowledge)</span>
        <textarea rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <div class="chips">
        {state === 'OPEN' && (
          <button type="button" class="button primary small" disabled={busy} onClick={() => run(() => acknowledge({ id, reason: reason || null }))}>
            Acknowledge
          </button>
        )}
        {open && (
          <>
            <button type="button" class="button small" disabled={busy} onClick={() => run(() => resolve({ id, reason }))}>
              Resolve
            </button>
            <button type="button" class="button small" disabled={busy} onClick={() => run(() => falsePositive({ id, reason }))}>
              Mark false positive
            </button>
          </>
        )}
        {regression && (
          <button type="button" class="button small" disabled={busy} onClick={() => run(() => rebaseline({ id, reason }))}>
            Re-baseline
          </button>
        )}
      </div>
      <fieldset class="annotate">
        <legend>Annotate a one-off window (left out of trailing baselines)</legend>
        <label>
          From <span class="muted">(default: opened)</span>
          <input type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          To <span class="muted">(default: now)</span>
          <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <button type="button" class="button small" disabled={busy} onClick={() => run(() => annotate({ id, reason, from: iso(from), to: iso(to) }))}>
          Annotate
        </button>
      </fieldset>
      <FormError message={error} />
    </form>
  );
}

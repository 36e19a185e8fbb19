// The monitors of the caller's teams (admins: all): each with its state (OK, BREACHING while it has an open alert,
// PAUSED), its target and metric; each leads to its page (monitors-detail.tsx).

import { refetch } from '../api/client';
import { EmptyState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link } from '../router';
import { monitorHref, TargetLink } from './alerts-common';

const MONITORS = graphql(`
  query Monitors {
    monitors {
      id name metric paused lastEvaluatedAt
      target { kind ref }
      team { name }
      rules { id kind }
      alerts(states: [OPEN, ACKNOWLEDGED]) { id }
    }
  }
`);

export type MonitorState = 'OK' | 'BREACHING' | 'PAUSED';

export const monitorState = (m: { paused: boolean; alerts: readonly unknown[] }): MonitorState => (m.paused ? 'PAUSED' : m.alerts.length ? 'BREACHING' : 'OK');

export function MonitorStateChip({ state }: { state: MonitorState }) {
  return (
    <span class={`chip ${state === 'OK' ? 'ok' : state === 'BREACHING' ? 'warn' : ''}`} data-monitor-state={state}>
      {state === 'OK' ? 'OK' : state === 'BREACHING' ? 'breaching' : 'paused'}
    </span>
  );
}

export function MonitorsPage() {
  useTitle('Monitors');
  const [result, reexecute] = useQuery({ query: MONITORS, requestPolicy: 'cache-and-network' });
  return (
    <section aria-labelledby="monitors-title">
      <div class="page-header">
        <h1 id="monitors-title">Monitors</h1>
        <Link href="/alerts">Alerts inbox</Link>
      </div>
      <QueryState
        data={result.data?.monitors}
        error={result.error}
        errorTitle="Monitors could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading monitors…"
        empty={
          <EmptyState title="No monitors yet">
            <p>
              Your teams’ monitors appear here. Create one with <code>npx atelier monitor create</code> or the <code>createMonitor</code> mutation
              (docs/monitoring.md).
            </p>
          </EmptyState>
        }
      >
        {(monitors) => (
          <DataTable
            label="Monitors"
            rows={monitors}
            rowKey={(m) => m.id}
            rowHref={(m) => monitorHref(m.id)}
            rowProps={(m) => ({ 'data-monitor': m.name })}
            columns={[
              { header: 'Monitor', rowHeader: true, cell: (m) => <Link href={monitorHref(m.id)}>{m.name}</Link> },
              { header: 'State', cell: (m) => <MonitorStateChip state={monitorState(m)} /> },
              { header: 'Target', cell: (m) => <TargetLink target={m.target} /> },
              { header: 'Metric', cell: (m) => <code>{m.metric}</code> },
              { header: 'Rules', cell: (m) => m.rules.map((r) => r.kind.toLowerCase()).join(', ') },
              { header: 'Team', cell: (m) => m.team?.name ?? '—' },
              { header: 'Evaluated', cell: (m) => <Time iso={m.lastEvaluatedAt} /> },
            ]}
          />
        )}
      </QueryState>
    </section>
  );
}

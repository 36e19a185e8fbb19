// Costs: execution hours and GPU hours of the tasks that executed over a period, by team, workflow and model, beside
// the cache savings. `costs(since:)` answers for the caller's teams (every team for an admin).
import { useQuery } from '@urql/preact';
import { useMemo, useState } from 'preact/hooks';
import { SelectField } from '../components/select-field';
import { EmptyState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { formatInteger, formatSaved } from '../lib/format';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';

const COSTS = graphql(`
  query Costs($since: DateTime!) {
    byTeam: costs(since: $since, groupBy: team) { group tasks executionHours gpuHours }
    byWorkflow: costs(since: $since, groupBy: workflow) { group tasks executionHours gpuHours }
    byModel: costs(since: $since, groupBy: model) { group tasks executionHours gpuHours }
  }
`);

type Row = ResultOf<typeof COSTS>['byTeam'][number];

const HOUR = 3_600_000;
const ranges = [
  { id: '24h', label: 'Last 24 hours', ms: 24 * HOUR },
  { id: '7d', label: 'Last 7 days', ms: 7 * 24 * HOUR },
  { id: '30d', label: 'Last 30 days', ms: 30 * 24 * HOUR },
] as const;

/** Hours in the unit that reads: seconds under a minute, minutes under an hour, then hours. */
const hours = formatSaved;

export function CostsPage() {
  useTitle('Costs');
  const { query } = useLocation();
  const range = ranges.find((r) => r.id === query.get('range')) ?? ranges[1];
  const [refreshed, setRefreshed] = useState(0);
  const since = useMemo(() => new Date(Date.now() - range.ms).toISOString(), [range, refreshed]);
  const [result, reexecute] = useQuery({ query: COSTS, variables: { since } });
  const refresh = () => {
    setRefreshed((n) => n + 1);
    reexecute({ requestPolicy: 'network-only' });
  };
  const data = result.data;
  return (
    <section aria-labelledby="costs-title">
      <div class="page-header">
        <h1 id="costs-title">Costs</h1>
        <button type="button" class="button" onClick={refresh}>
          Refresh
        </button>
      </div>
      <p class="lead">Execution time of the tasks that ran, and GPU time (execution × GPUs asked for), for your teams’ workflows.</p>
      <form class="filters" aria-label="Time range" onSubmit={(e) => e.preventDefault()}>
        <SelectField
          label="Period"
          value={range.id}
          options={ranges.map((r) => ({ value: r.id, label: r.label }))}
          onChange={(value) => navigate(withQuery({ range: value === '7d' ? null : value }), { replace: true })}
        />
      </form>
      <QueryState
        data={data}
        error={result.error}
        errorTitle="Costs could not be loaded"
        retry={refresh}
        loading="Loading costs…"
        isEmpty={(d) => d.byTeam.length === 0}
        empty={
          <EmptyState title={`No executed tasks of your teams in the ${range.label.toLowerCase()}`}>
            <p>Costs count module tasks that executed: cache hits and reused results cost nothing.</p>
          </EmptyState>
        }
      >
        {({ byTeam, byWorkflow, byModel }) => {
          const total = byTeam.reduce((a, r) => ({ tasks: a.tasks + r.tasks, exec: a.exec + r.executionHours, gpu: a.gpu + r.gpuHours }), {
            tasks: 0,
            exec: 0,
            gpu: 0,
          });
          return (
            <>
              <dl class="summary stats" aria-label={`Costs, ${range.label.toLowerCase()}`}>
                <div>
                  <dt>Tasks executed</dt>
                  <dd>{formatInteger(total.tasks)}</dd>
                </div>
                <div>
                  <dt>Execution time</dt>
                  <dd data-testid="execution-time">{hours(total.exec)}</dd>
                </div>
                <div>
                  <dt>GPU time</dt>
                  <dd data-testid="gpu-time">{hours(total.gpu)}</dd>
                </div>
              </dl>
              <div class="savings-groups">
                <GroupTable title="By team" rows={byTeam} />
                <GroupTable title="By workflow" rows={byWorkflow} />
                <GroupTable title="By model" rows={byModel} />
              </div>
            </>
          );
        }}
      </QueryState>
    </section>
  );
}

/** A workflow or model group leads to its page (a team has none). */
function GroupLink({ kind, group }: { kind: string; group: string }) {
  if (kind === 'By workflow') return <Link href={`/workflows/${encodeURIComponent(group)}`}>{group}</Link>;
  if (kind === 'By model' && group.includes('/')) {
    const [namespace, name] = group.split('/');
    return <Link href={`/models/${encodeURIComponent(namespace!)}/${encodeURIComponent(name!)}`}>{group}</Link>;
  }
  return <>{group}</>;
}

function GroupTable({ title, rows }: { title: string; rows: readonly Row[] }) {
  const sorted = [...rows].sort((a, b) => b.gpuHours - a.gpuHours || b.executionHours - a.executionHours);
  return (
    <div class="card">
      <h2 class="card-title">{title}</h2>
      <DataTable
        label={`Costs ${title.toLowerCase()}`}
        rows={sorted}
        rowKey={(r) => r.group}
        rowProps={(r) => ({ 'data-group': r.group })}
        columns={[
          { header: title.replace('By ', '').replace(/^./, (c) => c.toUpperCase()), cell: (r) => <GroupLink kind={title} group={r.group} /> },
          { header: 'Tasks', class: 'num', cell: (r) => formatInteger(r.tasks) },
          { header: 'Execution', class: 'num', cell: (r) => hours(r.executionHours) },
          { header: 'GPU time', class: 'num', cell: (r) => hours(r.gpuHours) },
        ]}
      />
    </div>
  );
}

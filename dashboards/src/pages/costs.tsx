// Costs: execution hours and GPU hours of the tasks that executed over a period, by team, workflow and model, beside
// the cache savings. `costs(since:)` answers for the caller's teams (every team for an admin).

import { GroupCard, PeriodHeader, usePeriod, usePeriodStart } from '../components/period-report';
import { EmptyState, QueryState } from '../components/states';
import type { Column } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { formatInteger, formatSaved } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';

const COSTS = graphql(`
  query Costs($since: DateTime!) {
    byTeam: costs(since: $since, groupBy: team) { group tasks executionHours gpuHours }
    byWorkflow: costs(since: $since, groupBy: workflow) { group tasks executionHours gpuHours }
    byModel: costs(since: $since, groupBy: model) { group tasks executionHours gpuHours }
  }
`);

type Row = ResultOf<typeof COSTS>['byTeam'][number];

/** Hours in the unit that reads: seconds under a minute, minutes under an hour, then hours. */
const hours = formatSaved;

const columns: Column<Row>[] = [
  { header: 'Tasks', class: 'num', cell: (r) => formatInteger(r.tasks) },
  { header: 'Execution', class: 'num', cell: (r) => hours(r.executionHours) },
  { header: 'GPU time', class: 'num', cell: (r) => hours(r.gpuHours) },
];
/** The costliest first. */
const costliest = (rows: readonly Row[]) => [...rows].sort((a, b) => b.gpuHours - a.gpuHours || b.executionHours - a.executionHours);

export function CostsPage() {
  useTitle('Costs');
  const { period: range, refreshed, bump } = usePeriod();
  const since = usePeriodStart(range, refreshed);
  const [result, reexecute] = useQuery({ query: COSTS, variables: { since } });
  const refresh = () => {
    bump();
    reexecute({ requestPolicy: 'network-only' });
  };
  const data = result.data;
  return (
    <section aria-labelledby="costs-title">
      <PeriodHeader
        id="costs-title"
        title="Costs"
        lead="Execution time of the tasks that ran, and GPU time (execution × GPUs asked for), for your teams’ workflows."
        period={range}
        onRefresh={refresh}
      />
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
                <GroupCard report="Costs" by="team" rows={costliest(byTeam)} columns={columns} />
                <GroupCard report="Costs" by="workflow" rows={costliest(byWorkflow)} columns={columns} />
                <GroupCard report="Costs" by="model" rows={costliest(byModel)} columns={columns} />
              </div>
            </>
          );
        }}
      </QueryState>
    </section>
  );
}

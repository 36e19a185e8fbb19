// What the Savings and Costs pages share: a period picked in the URL (`?range=24h|7d|30d`, 7 days by default), a
// header with a refresh button, and a card per grouping (team, workflow, module or model) whose group names lead to
// their pages.
import { useMemo, useState } from 'preact/hooks';
import { Link, navigate, useLocation, withQuery } from '../router';
import { SelectField } from './select-field';
import { type Column, DataTable } from './table';

const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** The periods a report covers: `buckets` of `bucketMs` each, ending now. */
export const periods = [
  { id: '24h', label: 'Last 24 hours', bucketMs: HOUR, buckets: 24 },
  { id: '7d', label: 'Last 7 days', bucketMs: DAY, buckets: 7 },
  { id: '30d', label: 'Last 30 days', bucketMs: DAY, buckets: 30 },
] as const;
export type Period = (typeof periods)[number];

/** The period in the URL, and a counter a refresh bumps (so the period's start is taken again). */
export function usePeriod() {
  const { query } = useLocation();
  const period = periods.find((p) => p.id === query.get('range')) ?? periods[1];
  const [refreshed, setRefreshed] = useState(0);
  return { period, refreshed, bump: () => setRefreshed((n) => n + 1) };
}

/** The start of `period` (its `start` overrides: the Savings page aligns it to its first bucket), kept until a refresh. */
export function usePeriodStart(period: Period, refreshed: number, start?: (now: number) => number): string {
  return useMemo(() => new Date(start ? start(Date.now()) : Date.now() - period.bucketMs * period.buckets).toISOString(), [period, refreshed]);
}

/** The page's title, its refresh button, what it shows, and the period picker. */
export function PeriodHeader(props: { id: string; title: string; lead: string; period: Period; onRefresh: () => void }) {
  return (
    <>
      <div class="page-header">
        <h1 id={props.id}>{props.title}</h1>
        <button type="button" class="button" onClick={props.onRefresh}>
          Refresh
        </button>
      </div>
      <p class="lead">{props.lead}</p>
      <form class="filters" aria-label="Time range" onSubmit={(e) => e.preventDefault()}>
        <SelectField
          label="Period"
          value={props.period.id}
          options={periods.map((p) => ({ value: p.id, label: p.label }))}
          onChange={(value) => navigate(withQuery({ range: value === '7d' ? null : value }), { replace: true })}
        />
      </form>
    </>
  );
}

export type Grouping = 'team' | 'workflow' | 'module' | 'model';

/** A workflow, module or model group leads to its page (a team has none). */
function GroupLink({ by, group }: { by: Grouping; group: string }) {
  if (by === 'workflow') return <Link href={`/workflows/${encodeURIComponent(group)}`}>{group}</Link>;
  if ((by === 'module' || by === 'model') && group.includes('/')) {
    const [namespace, name] = group.split('/');
    return <Link href={`/${by}s/${encodeURIComponent(namespace!)}/${encodeURIComponent(name!)}`}>{group}</Link>;
  }
  return <>{group}</>;
}

/** A card "By <grouping>": one row per group, named (and linked) first, then `columns`. */
export function GroupCard<R extends { group: string }>(props: { report: string; by: Grouping; rows: readonly R[]; columns: Column<R>[] }) {
  const title = `By ${props.by}`;
  return (
    <div class="card">
      <h2 class="card-title">{title}</h2>
      <DataTable
        label={`${props.report} ${title.toLowerCase()}`}
        rows={props.rows}
        rowKey={(r) => r.group}
        rowProps={(r) => ({ 'data-group': r.group })}
        columns={[{ header: props.by.replace(/^./, (c) => c.toUpperCase()), cell: (r) => <GroupLink by={props.by} group={r.group} /> }, ...props.columns]}
      />
    </div>
  );
}

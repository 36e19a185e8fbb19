// Savings from the task cache: hit rate, hits and hours saved over a period, over time, and by team, workflow and
// module. `cacheStats(since:)` counts tasks finished since a time, so a bucket is the difference of two of them.
import { useClient } from '@urql/preact';
import { useEffect, useState } from 'preact/hooks';
import { DAY, GroupCard, PeriodHeader, type Period as Range, usePeriod, usePeriodStart } from '../components/period-report';
import { EmptyState, QueryState } from '../components/states';
import type { Column } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { formatInteger, formatSaved } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';

const SAVINGS = graphql(`
  query Savings($since: DateTime!) {
    byTeam: cacheStats(since: $since, groupBy: team) { group hits misses hitRate savedHours }
    byWorkflow: cacheStats(since: $since, groupBy: workflow) { group hits misses hitRate savedHours }
    byModule: cacheStats(since: $since, groupBy: module) { group hits misses hitRate savedHours }
  }
`);

const SAVINGS_OVER_TIME = graphql(`
  query SavingsOverTime($boundaries: [DateTime!]!) {
    cacheSavingsOverTime(boundaries: $boundaries) { start hits misses savedHours }
  }
`);

type Row = ResultOf<typeof SAVINGS>['byTeam'][number];

interface Totals {
  hits: number;
  misses: number;
  savedHours: number;
}
interface Bucket extends Totals {
  start: number;
}

const sum = (rows: readonly Totals[]): Totals =>
  rows.reduce((a, r) => ({ hits: a.hits + r.hits, misses: a.misses + r.misses, savedHours: a.savedHours + r.savedHours }), {
    hits: 0,
    misses: 0,
    savedHours: 0,
  });
const rate = (t: Totals) => (t.hits + t.misses ? t.hits / (t.hits + t.misses) : 0);
const percent = (x: number) => `${Math.round(x * 1000) / 10}%`;
/** Time saved, in seconds, minutes or hours (a new install saves seconds at first). */
const hours = formatSaved;

/** Bucket boundaries ending at the current bucket's end, newest last: aligned to whole hours (or local days). */
function boundaries(range: Range, now: number): number[] {
  const end = new Date(now);
  if (range.bucketMs === DAY) end.setHours(24, 0, 0, 0);
  else end.setMinutes(60, 0, 0);
  return Array.from({ length: range.buckets + 1 }, (_, i) => end.getTime() - (range.buckets - i) * range.bucketMs);
}

/** The chart's buckets, in one query: bucket i is what finished between boundary i and i + 1. */
function useOverTime(range: Range, refreshed: number) {
  const client = useClient();
  const [state, setState] = useState<{ buckets: Bucket[] | null; error: unknown }>({ buckets: null, error: null });
  useEffect(() => {
    let current = true;
    const edges = boundaries(range, Date.now()).map((at) => new Date(at).toISOString());
    setState({ buckets: null, error: null });
    client
      .query(SAVINGS_OVER_TIME, { boundaries: edges }, { requestPolicy: 'network-only' })
      .toPromise()
      .then(
        (r) => {
          if (!current) return;
          if (r.error) return setState({ buckets: null, error: r.error });
          const buckets = (r.data?.cacheSavingsOverTime ?? []).map((b) => ({ ...b, start: Date.parse(b.start) }));
          setState({ buckets, error: null });
        },
        (error: unknown) => current && setState({ buckets: null, error }),
      );
    return () => void (current = false);
  }, [client, range, refreshed]);
  return state;
}

export function SavingsPage() {
  useTitle('Savings');
  const { period: range, refreshed, bump } = usePeriod();
  const since = usePeriodStart(range, refreshed, (now) => boundaries(range, now)[0]!);
  const [result, reexecute] = useQuery({ query: SAVINGS, variables: { since } });
  const overTime = useOverTime(range, refreshed);
  const data = result.data;
  const refresh = () => {
    bump();
    reexecute({ requestPolicy: 'network-only' });
  };
  return (
    <section aria-labelledby="savings-title">
      <PeriodHeader
        id="savings-title"
        title="Savings"
        lead="Tasks served from the cache instead of executing, and the execution time that spared."
        period={range}
        onRefresh={refresh}
      />
      <QueryState
        data={data && { ...data, totals: sum(data.byTeam) }}
        error={result.error}
        errorTitle="Savings could not be loaded"
        retry={refresh}
        loading="Loading savings…"
        isEmpty={({ totals }) => totals.hits + totals.misses === 0}
        empty={
          <EmptyState title={`No cached tasks finished in the ${range.label.toLowerCase()}`}>
            <p>Module tasks are cached by default: run a workflow twice with the same parameters and the second run’s tasks come from the cache.</p>
          </EmptyState>
        }
      >
        {({ totals, byTeam, byWorkflow, byModule }) => (
          <>
            <dl class="summary stats" aria-label={`Cache use, ${range.label.toLowerCase()}`}>
              <div>
                <dt>Hit rate</dt>
                <dd data-testid="hit-rate">{percent(rate(totals))}</dd>
              </div>
              <div>
                <dt>Hits</dt>
                <dd>{formatInteger(totals.hits)}</dd>
              </div>
              <div>
                <dt>Executed</dt>
                <dd>{formatInteger(totals.misses)}</dd>
              </div>
              <div>
                <dt>Time saved</dt>
                <dd data-testid="hours-saved">{hours(totals.savedHours)}</dd>
              </div>
            </dl>
            <div class="card">
              <h2 class="card-title">
                Over time <span class="muted">time saved per {range.bucketMs === DAY ? 'day' : 'hour'}, with the hit rate</span>
              </h2>
              <QueryState
                data={overTime.buckets ?? undefined}
                error={overTime.error}
                errorTitle="The history could not be loaded"
                retry={refresh}
                loading="Loading the history…"
              >
                {(buckets) => <BucketChart buckets={buckets} daily={range.bucketMs === DAY} />}
              </QueryState>
            </div>
            <div class="savings-groups">
              <GroupCard report="Savings" by="team" rows={mostSaved(byTeam)} columns={columns} />
              <GroupCard report="Savings" by="workflow" rows={mostSaved(byWorkflow)} columns={columns} />
              <GroupCard report="Savings" by="module" rows={mostSaved(byModule)} columns={columns} />
            </div>
          </>
        )}
      </QueryState>
    </section>
  );
}

const hourLabel = new Intl.DateTimeFormat(undefined, { hour: 'numeric' });
const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** Bars of hours saved, one per bucket; each bar says its numbers in words too (not colour or height alone). */
function BucketChart({ buckets, daily }: { buckets: Bucket[]; daily: boolean }) {
  const max = Math.max(...buckets.map((b) => b.savedHours), 1e-9);
  return (
    <ol class="bars" aria-label="Hours saved over time">
      {buckets.map((b) => {
        const label = (daily ? dayLabel : hourLabel).format(new Date(b.start));
        const looked = b.hits + b.misses;
        const text = looked ? `${label}: ${hours(b.savedHours)} saved, ${b.hits} of ${looked} from cache (${percent(rate(b))})` : `${label}: no cached tasks`;
        return (
          <li key={b.start} title={text} aria-label={text} data-hits={b.hits}>
            <span class="bar" style={{ height: `${Math.round((b.savedHours / max) * 100)}%` }} aria-hidden="true" />
            <span class="bar-value" aria-hidden="true">
              {looked ? percent(rate(b)) : ''}
            </span>
            <span class="bar-label" aria-hidden="true">
              {label}
            </span>
          </li>
        );
      })}
    </ol>
  );
}

const columns: Column<Row>[] = [
  {
    header: 'Hit rate',
    class: 'num',
    cell: (r) => (
      <>
        <meter min={0} max={1} value={r.hitRate} aria-hidden="true" /> {percent(r.hitRate)}
      </>
    ),
  },
  { header: 'Hits', class: 'num', cell: (r) => formatInteger(r.hits) },
  { header: 'Executed', class: 'num', cell: (r) => formatInteger(r.misses) },
  { header: 'Saved', class: 'num', cell: (r) => hours(r.savedHours) },
];
/** The most time saved first. */
const mostSaved = (rows: readonly Row[]) => [...rows].sort((a, b) => b.savedHours - a.savedHours || b.hits - a.hits);

// The compare view (/compare?ids=A,B,…): up to 100 runs side by side through compareRuns: each metric's curves
// overlaid, the params that differ (all on request), metric summaries, and a param against a metric as a scatter.
// An id that names no run you may read is listed as missing, like a malformed one; the page itself never fails.

import { useMemo, useState } from 'preact/hooks';
import { refetch } from '../api/client';
import { OverlayChart, type RunLine, runColors } from '../components/overlay-chart';
import { ParamScatter } from '../components/param-scatter';
import { SelectField } from '../components/select-field';
import { EmptyState, QueryState } from '../components/states';
import { StatusBadge } from '../components/status';
import { Table } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { useQuery } from '../lib/query';
import { formatMetric, isRunId } from '../lib/run-filter';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';

const MAX_RUNS = 100;

const COMPARE = graphql(`
  query CompareRuns($ids: [ID!]!) {
    compareRuns(ids: $ids, allParams: true, maxPoints: 200) {
      runs { id name status workflow { name } experiment { name } }
      missing
      params { key values differs }
      metrics { name values { last min max count } }
      series { runId metric steps values }
    }
  }
`);

type Comparison = ResultOf<typeof COMPARE>['compareRuns'];

export default function ComparePage() {
  useTitle('Compare runs');
  const { query } = useLocation();
  const asked = (query.get('ids') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const valid = [...new Set(asked.filter(isRunId))];
  const ids = valid.slice(0, MAX_RUNS);
  const malformed = asked.filter((id) => !isRunId(id));
  const [result, reexecute] = useQuery({ query: COMPARE, variables: { ids }, pause: ids.length === 0 });
  const data = ids.length === 0 ? null : result.data?.compareRuns;

  return (
    <section aria-labelledby="compare-title">
      <div class="page-header">
        <h1 id="compare-title">Compare runs</h1>
        <Link class="button" href="/runs">
          Back to runs
        </Link>
      </div>
      {valid.length > MAX_RUNS && (
        <p class="banner" role="status">
          Showing the first {MAX_RUNS} of {valid.length} runs: compare at most {MAX_RUNS} at a time.
        </p>
      )}
      <QueryState
        data={data}
        error={result.error}
        errorTitle="The runs could not be compared"
        retry={refetch(reexecute)}
        loading="Comparing runs…"
        isEmpty={(c) => c.runs.length === 0}
        empty={
          <EmptyState title="No runs to compare">
            <Missing ids={[...malformed, ...(data?.missing ?? [])]} />
            <p>
              Pick runs with the checkboxes on the <Link href="/runs">runs list</Link>, then Compare.
            </p>
          </EmptyState>
        }
      >
        {(c) => <Compared c={c} missing={[...malformed, ...c.missing]} />}
      </QueryState>
    </section>
  );
}

function Missing({ ids }: { ids: string[] }) {
  if (!ids.length) return null;
  return (
    <p class="banner missing-runs" data-testid="missing-runs">
      Missing (no such run, or not one whose data you may read):{' '}
      {ids.map((id) => (
        <code key={id}>{id}</code>
      ))}
    </p>
  );
}

function Compared({ c, missing }: { c: Comparison; missing: string[] }) {
  const [allParams, setAllParams] = useState(false);
  const { query } = useLocation();
  const labels = c.runs.map((r) => r.name ?? `${r.workflow?.name ?? 'run'} ${r.id.slice(0, 8)}`);
  const color = (i: number) => runColors[i % runColors.length]!;
  const params = allParams ? c.params : c.params.filter((p) => p.differs);
  const lines = useMemo(() => {
    const byMetric = new Map<string, RunLine[]>();
    for (const m of c.metrics) byMetric.set(m.name, []);
    for (const s of c.series) {
      const i = c.runs.findIndex((r) => r.id === s.runId);
      if (i < 0) continue;
      byMetric.get(s.metric)?.push({ runId: s.runId, label: labels[i]!, color: color(i), points: s.steps.map((step, k) => ({ step, value: s.values[k] })) });
    }
    return byMetric;
  }, [c]);
  // A param or metric the address names that none of these runs has (a typo, a link made for other runs) falls back
  // to the default, and the page says so instead of plotting nothing.
  const askedParam = query.get('param');
  const askedMetric = query.get('metric');
  const unknownParam = askedParam !== null && !c.params.some((p) => p.key === askedParam) ? askedParam : null;
  const unknownMetric = askedMetric !== null && !c.metrics.some((m) => m.name === askedMetric) ? askedMetric : null;
  const scatterParam = (unknownParam === null ? askedParam : null) ?? c.params.find((p) => p.differs)?.key ?? c.params[0]?.key ?? '';
  const scatterMetric = (unknownMetric === null ? askedMetric : null) ?? c.metrics[0]?.name ?? '';
  const metricRow = c.metrics.find((m) => m.name === scatterMetric);
  const paramRow = c.params.find((p) => p.key === scatterParam);
  const runHeader = [{ header: '' }, ...c.runs.map((r, i) => ({ header: <RunHead run={r} label={labels[i]!} color={color(i)} /> }))];

  return (
    <>
      <Missing ids={missing} />
      <h2>Metrics</h2>
      {c.metrics.length === 0 ? (
        <p class="muted">These runs reported no metrics.</p>
      ) : (
        <>
          <div class="charts compare-charts">
            {c.metrics.map((m) => (
              <OverlayChart key={m.name} metric={m.name} lines={lines.get(m.name) ?? []} />
            ))}
          </div>
          <Table columns={runHeader} class="metric-summary" label="Metric summaries">
            {c.metrics.flatMap((m) =>
              (['last', 'min', 'max'] as const).map((which) => (
                <tr key={`${m.name}.${which}`} data-metric={m.name} data-which={which}>
                  <th scope="row">
                    {m.name} <span class="muted">{which}</span>
                  </th>
                  {m.values.map((v, i) => (
                    <td key={c.runs[i]!.id} class="num">
                      {v ? formatMetric(v[which]) : <span class="muted">—</span>}
                    </td>
                  ))}
                </tr>
              )),
            )}
          </Table>
        </>
      )}

      <div class="section-header">
        <h2>Parameters</h2>
        <label class="check">
          <input type="checkbox" checked={allParams} onChange={(e) => setAllParams(e.currentTarget.checked)} /> Show all parameters
        </label>
      </div>
      {params.length === 0 ? (
        <p class="muted">{c.params.length ? 'Every parameter is the same in these runs.' : 'These runs have no parameters.'}</p>
      ) : (
        <Table columns={runHeader} class="param-diff" label="Parameters">
          {params.map((p) => (
            <tr key={p.key} data-param={p.key} class={p.differs ? 'differs' : undefined}>
              <th scope="row">{p.key}</th>
              {p.values.map((v, i) => (
                <td key={c.runs[i]!.id}>{v ?? <span class="muted">—</span>}</td>
              ))}
            </tr>
          ))}
        </Table>
      )}

      <h2>A parameter against a metric</h2>
      {c.params.length === 0 || c.metrics.length === 0 ? (
        <p class="muted">Needs runs with both parameters and metrics.</p>
      ) : (
        <>
          {(unknownParam !== null || unknownMetric !== null) && (
            <p class="banner" data-testid="unknown-axis">
              {unknownParam !== null && (
                <>
                  No compared run has parameter <code>{unknownParam}</code>; showing <code>{scatterParam}</code>.{' '}
                </>
              )}
              {unknownMetric !== null && (
                <>
                  No compared run reports metric <code>{unknownMetric}</code>; showing <code>{scatterMetric}</code>.
                </>
              )}
            </p>
          )}
          <div class="filters">
            <SelectField
              label="Parameter"
              value={scatterParam}
              options={c.params.map((p) => p.key)}
              onChange={(v) => navigate(withQuery({ param: v }), { replace: true })}
            />
            <SelectField
              label="Metric"
              value={scatterMetric}
              options={c.metrics.map((m) => m.name)}
              onChange={(v) => navigate(withQuery({ metric: v }), { replace: true })}
            />
          </div>
          <ParamScatter
            param={scatterParam}
            metric={scatterMetric}
            runs={c.runs.map((r, i) => {
              const last = metricRow?.values[i]?.last;
              return { runId: r.id, label: labels[i]!, color: color(i), param: paramRow?.values[i] ?? null, metric: typeof last === 'number' ? last : null };
            })}
          />
        </>
      )}
    </>
  );
}

function RunHead({ run, label, color }: { run: Comparison['runs'][number]; label: string; color: string }) {
  return (
    <span class="run-head" data-run-id={run.id}>
      <span class="swatch" style={{ background: color }} aria-hidden="true" />
      <Link href={`/runs/${run.id}`}>{label}</Link> <StatusBadge status={run.status} />
      <span class="muted"> {run.experiment.name}</span>
    </span>
  );
}

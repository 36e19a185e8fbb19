// The dataset page's operating sections: Freshness (how often a version is expected, what runs reading it do while
// it is late, the last version, due or late since) and Drift (a version against the previous one or a chosen one:
// per column, its statistics, the thresholds crossed and a breach chip). Columns the caller may not preview are
// simply absent, as the API answers.

import { useState } from 'preact/hooks';
import { refetch } from '../../api/client';
import { QueryState } from '../../components/states';
import { DataTable } from '../../components/table';
import { graphql } from '../../graphql';
import { Time } from '../../lib/format';
import { useQuery } from '../../lib/query';
import { Link } from '../../router';
import { Facts } from '../alerts-common';

const FRESHNESS = graphql(`
  query DatasetFreshness($name: String!) {
    dataset(name: $name) { id freshness { expectedEvery policy maxWait lastVersionAt dueAt late lateSince } }
  }
`);

const DRIFT = graphql(`
  query DatasetDriftSection($name: String!, $version: Int!, $baseline: Int) {
    datasetDrift(name: $name, version: $version, baseline: $baseline) {
      dataset version baselineVersion breached
      columns { column kind breached breaches psi ksStatistic ksPValue chiSquare chiSquarePValue jensenShannon exact reason }
    }
  }
`);

const policyText: Record<string, string> = {
  IGNORE: 'runs read it anyway',
  WAIT: 'runs wait for a fresh version',
  FAIL: 'runs fail with the reason',
};

export function FreshnessCard({ name }: { name: string }) {
  const [result, reexecute] = useQuery({ query: FRESHNESS, variables: { name } });
  return (
    <div class="card" data-testid="freshness">
      <h2 class="card-title">Freshness</h2>
      <QueryState
        data={result.data ? (result.data.dataset?.freshness ?? null) : undefined}
        error={result.error}
        errorTitle="Freshness could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading freshness…"
        empty={
          <p class="muted">
            This dataset declares no expected cadence (<code>setDatasetFreshness</code> sets one).
          </p>
        }
      >
        {(f) => (
          <>
            <p>
              {f.late ? (
                <span class="chip warn" data-freshness="late">
                  late since <Time iso={f.lateSince} />
                </span>
              ) : (
                <span class="chip ok" data-freshness="fresh">
                  fresh
                </span>
              )}{' '}
              {f.late && <Link href="/alerts">See the alerts inbox</Link>}
            </p>
            <Facts
              label="Freshness"
              items={[
                ['Expected every', f.expectedEvery],
                ['Policy', `${f.policy.toLowerCase()}: ${policyText[f.policy] ?? ''}${f.policy === 'WAIT' ? ` (at most ${f.maxWait})` : ''}`],
                ['Last version', <Time iso={f.lastVersionAt} />],
                ['Due', <Time iso={f.dueAt} />],
              ]}
            />
          </>
        )}
      </QueryState>
    </div>
  );
}

const num = (n: number | null | undefined, digits = 4) => (n === null || n === undefined ? '—' : n.toFixed(digits));

export function DriftCard({ name, versions }: { name: string; versions: readonly number[] }) {
  const newestFirst = [...versions].sort((a, b) => b - a);
  const [version, setVersion] = useState(newestFirst[0] ?? 1);
  const [baseline, setBaseline] = useState<number | null>(null);
  const previous = newestFirst.find((v) => v < version) ?? null;
  const against = baseline !== null && baseline !== version ? baseline : previous;
  const [result, reexecute] = useQuery({ query: DRIFT, variables: { name, version, baseline: against }, pause: against === null });
  return (
    <div class="card" data-testid="drift">
      <h2 class="card-title">Drift</h2>
      {newestFirst.length < 2 ? (
        <p class="muted">Drift compares two versions: this dataset has {newestFirst.length}.</p>
      ) : (
        <>
          <div class="filters">
            <label>
              Version
              <select value={version} onChange={(e) => setVersion(Number(e.currentTarget.value))}>
                {newestFirst.map((v) => (
                  <option key={v} value={v}>
                    {v}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Against
              <select value={baseline ?? ''} onChange={(e) => setBaseline(e.currentTarget.value ? Number(e.currentTarget.value) : null)}>
                <option value="">the previous version{previous !== null ? ` (${previous})` : ''}</option>
                {newestFirst
                  .filter((v) => v !== version)
                  .map((v) => (
                    <option key={v} value={v}>
                      {v}
                    </option>
                  ))}
              </select>
            </label>
          </div>
          {against === null ? (
            <p class="muted">Version {version} is the first: choose a version to compare it with.</p>
          ) : (
            <QueryState
              data={result.data?.datasetDrift}
              error={result.error}
              errorTitle="Drift could not be computed"
              retry={refetch(reexecute)}
              loading="Computing drift…"
            >
              {(d) => (
                <DataTable
                  wrap={false}
                  label={`Drift of version ${d.version} against ${d.baselineVersion}`}
                  rows={d.columns}
                  rowKey={(c) => c.column}
                  rowProps={(c) => ({ 'data-drift-column': c.column, 'data-breached': c.breached })}
                  empty={<p class="muted">No column both versions profile that you may preview.</p>}
                  columns={[
                    { header: 'Column', rowHeader: true, cell: (c) => <code>{c.column}</code> },
                    { header: 'Kind', cell: (c) => c.kind },
                    {
                      header: 'Statistics',
                      cell: (c) =>
                        c.kind === 'numeric'
                          ? `PSI ${num(c.psi)} · KS ${num(c.ksStatistic)} (p ${num(c.ksPValue)})`
                          : c.kind === 'categorical'
                            ? `JS ${num(c.jensenShannon)} · χ² ${num(c.chiSquare, 2)} (p ${num(c.chiSquarePValue)})`
                            : (c.reason ?? '—'),
                    },
                    { header: 'Thresholds crossed', cell: (c) => (c.breaches.length ? c.breaches.join('; ') : <span class="muted">none</span>) },
                    { header: 'Breach', cell: (c) => (c.breached ? <span class="chip warn">drifted</span> : <span class="chip ok">within</span>) },
                  ]}
                />
              )}
            </QueryState>
          )}
        </>
      )}
    </div>
  );
}

// Datasets: each with its domain, latest version and columns, every column with its classification chip (level and
// categories); columns that still need a label (UNCLASSIFIED) are flagged, and the datasets that have any come first.
import { useQuery } from '@urql/preact';
import { EmptyState, ErrorState, Loading } from '../components/states';
import { graphql, type ResultOf } from '../graphql';
import { Time } from '../lib/format';
import { useTitle } from '../lib/title';
import { navigate, useLocation, withQuery } from '../router';

const DATASETS = graphql(`
  query Datasets($domain: Domain) {
    datasets(domain: $domain) {
      id
      fullName
      description
      domain
      createdAt
      versions { version createdAt }
      columns { name type needsClassification label { level categories } computedLabel { level categories } }
    }
  }
`);

type Dataset = ResultOf<typeof DATASETS>['datasets'][number];
type Label = Dataset['columns'][number]['label'];

const domains = ['production', 'experimentation', 'adhoc'] as const;
type DomainName = (typeof domains)[number];

export function DatasetsPage() {
  useTitle('Datasets');
  const { query } = useLocation();
  const domain = domains.find((d) => d === query.get('domain')) ?? null;
  const [result, reexecute] = useQuery({ query: DATASETS, variables: { domain } });
  const datasets = result.data?.datasets;
  const unclassified = (d: Dataset) => d.columns.filter((c) => c.needsClassification).length;
  const shown = datasets && [...datasets].sort((a, b) => Number(unclassified(b) > 0) - Number(unclassified(a) > 0) || a.fullName.localeCompare(b.fullName));
  return (
    <section aria-labelledby="datasets-title">
      <div class="page-header">
        <h1 id="datasets-title">Datasets</h1>
      </div>
      <form class="filters" aria-label="Filter datasets" onSubmit={(e) => e.preventDefault()}>
        <label>
          Domain
          <select value={domain ?? ''} onChange={(e) => navigate(withQuery({ domain: e.currentTarget.value || null }))}>
            <option value="">All domains</option>
            {domains.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
      </form>
      {result.error && !datasets ? (
        <ErrorState title="Datasets could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />
      ) : !shown ? (
        <Loading label="Loading datasets…" />
      ) : shown.length === 0 ? (
        <EmptyState title={domain ? `No datasets in ${domain}` : 'No datasets registered yet'}>
          <p>
            Register one with its columns and their labels through the API (<code>createDataset</code>).
          </p>
        </EmptyState>
      ) : (
        shown.map((d) => <DatasetCard key={d.id} dataset={d} unclassified={unclassified(d)} />)
      )}
    </section>
  );
}

function DatasetCard({ dataset: d, unclassified }: { dataset: Dataset; unclassified: number }) {
  const latest = d.versions.reduce<Dataset['versions'][number] | null>((a, v) => (!a || v.version > a.version ? v : a), null);
  const titleId = `dataset-${d.id}`;
  return (
    <article class="card" aria-labelledby={titleId} data-dataset={d.fullName}>
      <h2 class="card-title" id={titleId}>
        {d.fullName} <span class={`chip domain-${d.domain as DomainName}`}>{d.domain}</span>
        {unclassified > 0 && (
          <span class="chip unclassified" data-testid="unclassified-count">
            ⚠ {unclassified} column{unclassified === 1 ? '' : 's'} unclassified
          </span>
        )}
        <span class="muted">
          {latest ? (
            <>
              version {latest.version}, <Time iso={latest.createdAt} />
            </>
          ) : (
            <Time iso={d.createdAt} />
          )}
        </span>
      </h2>
      {d.description && <p class="muted">{d.description}</p>}
      <div class="table-wrap">
        <table aria-label={`Columns of ${d.fullName}`}>
          <thead>
            <tr>
              <th scope="col">Column</th>
              <th scope="col">Type</th>
              <th scope="col">Classification</th>
              <th scope="col">Derived from lineage</th>
            </tr>
          </thead>
          <tbody>
            {d.columns.map((c) => (
              <tr key={c.name} data-column={c.name} class={c.needsClassification ? 'needs-label' : undefined}>
                <td>
                  <code>{c.name}</code>
                </td>
                <td>
                  <code>{c.type}</code>
                </td>
                <td>
                  <LabelChips label={c.label} />
                  {c.needsClassification && <span class="row-message"> needs a label: treated as above RESTRICTED until classified</span>}
                </td>
                <td>{c.computedLabel ? <LabelChips label={c.computedLabel} /> : <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </article>
  );
}

export function LabelChips({ label }: { label: Label }) {
  return (
    <span class="chips">
      <span class={`chip level level-${label.level}`} data-level={label.level}>
        {label.level === 'UNCLASSIFIED' ? '⚠ UNCLASSIFIED' : label.level}
      </span>
      {label.categories.map((c) => (
        <span class="chip category" key={c}>
          {c}
        </span>
      ))}
    </span>
  );
}

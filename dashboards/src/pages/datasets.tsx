// Datasets: one row each with its domain, columns and their classification chips (UNCLASSIFIED flagged, and the
// datasets that have any first), its latest version and whether it is in the interactive catalog; filtered by
// domain and by catalog state, each linking to its own page.
import { useQuery } from '@urql/preact';
import { LabelChips } from '../components/label-chips';
import { EmptyState, ErrorState, Loading } from '../components/states';
import { graphql, type ResultOf } from '../graphql';
import { Time } from '../lib/format';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';

const DATASETS = graphql(`
  query Datasets($domain: Domain, $catalog: Boolean) {
    datasets(domain: $domain, catalog: $catalog) {
      id
      fullName
      description
      domain
      createdAt
      versions { version createdAt }
      columns { name needsClassification label { level categories } }
      catalog { published publishedAt }
    }
  }
`);

type Dataset = ResultOf<typeof DATASETS>['datasets'][number];

export const domains = ['production', 'experimentation', 'adhoc'] as const;
export type DomainName = (typeof domains)[number];
/** A dataset's page; its name is namespace/name, both parts kept as path segments. */
export const datasetHref = (fullName: string) => `/datasets/${fullName.split('/').map(encodeURIComponent).join('/')}`;

const catalogFilters = { published: true, unpublished: false } as const;
/** Columns listed in a row before "+N more" (the unclassified ones always come first). */
const SHOWN_COLUMNS = 8;

export function DatasetsPage() {
  useTitle('Datasets');
  const { query } = useLocation();
  const domain = domains.find((d) => d === query.get('domain')) ?? null;
  const catalogKey = query.get('catalog') === 'published' || query.get('catalog') === 'unpublished' ? (query.get('catalog') as keyof typeof catalogFilters) : null;
  const catalog = catalogKey ? catalogFilters[catalogKey] : null;
  const [result, reexecute] = useQuery({ query: DATASETS, variables: { domain, catalog } });
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
        <label>
          Catalog
          <select value={catalogKey ?? ''} onChange={(e) => navigate(withQuery({ catalog: e.currentTarget.value || null }))}>
            <option value="">Published or not</option>
            <option value="published">In the catalog</option>
            <option value="unpublished">Not in the catalog</option>
          </select>
        </label>
      </form>
      {result.error && !datasets ? (
        <ErrorState title="Datasets could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />
      ) : !shown ? (
        <Loading label="Loading datasets…" />
      ) : shown.length === 0 ? (
        <EmptyState title={domain || catalogKey ? 'No datasets match these filters' : 'No datasets registered yet'}>
          <p>
            Register one with its columns and their labels through the API (<code>createDataset</code>) or{' '}
            <code>npx atelier dataset create</code>.
          </p>
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table aria-label="Datasets">
            <thead>
              <tr>
                <th scope="col">Dataset</th>
                <th scope="col">Domain</th>
                <th scope="col">Columns</th>
                <th scope="col">Latest version</th>
                <th scope="col">Catalog</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((d) => (
                <DatasetRow key={d.id} dataset={d} unclassified={unclassified(d)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function DatasetRow({ dataset: d, unclassified }: { dataset: Dataset; unclassified: number }) {
  const latest = d.versions.reduce<Dataset['versions'][number] | null>((a, v) => (!a || v.version > a.version ? v : a), null);
  const href = datasetHref(d.fullName);
  const columns = [...d.columns].sort((a, b) => Number(b.needsClassification) - Number(a.needsClassification));
  const more = columns.length - SHOWN_COLUMNS;
  return (
    <tr data-dataset={d.fullName} class={`clickable${unclassified > 0 ? ' needs-label' : ''}`} onClick={(e) => !(e.target as HTMLElement).closest('a') && navigate(href)}>
      <th scope="row">
        <Link href={href}>{d.fullName}</Link>
        {d.description && <div class="row-message">{d.description}</div>}
      </th>
      <td>
        <span class={`chip domain-${d.domain as DomainName}`}>{d.domain}</span>
      </td>
      <td>
        {unclassified > 0 && (
          <span class="chip unclassified" data-testid="unclassified-count">
            ⚠ {unclassified} column{unclassified === 1 ? '' : 's'} unclassified
          </span>
        )}
        <ul class="plain-list column-list" aria-label={`Columns of ${d.fullName}`}>
          {columns.slice(0, SHOWN_COLUMNS).map((c) => (
            <li key={c.name} data-column={c.name}>
              <code>{c.name}</code> <LabelChips label={c.label} />
            </li>
          ))}
        </ul>
        {more > 0 && <Link href={href}>+{more} more</Link>}
      </td>
      <td class="num">
        {latest ? (
          <>
            {latest.version}, <Time iso={latest.createdAt} />
          </>
        ) : (
          <Time iso={d.createdAt} />
        )}
      </td>
      <td data-catalog={d.catalog.published ? 'published' : 'unpublished'}>
        {d.catalog.published ? (
          <>
            <span class="chip ok">published</span> <Time iso={d.catalog.publishedAt} />
          </>
        ) : (
          <span class="muted">not published</span>
        )}
      </td>
    </tr>
  );
}

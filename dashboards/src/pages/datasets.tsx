// Datasets: one row each with its domain, columns and their classification chips (UNCLASSIFIED flagged, and the
// datasets that have any first), its latest version and whether it is in the interactive catalog; filtered by
// domain and by catalog state, each linking to its own page.

import { refetch } from '../api/client';
import { LabelChips } from '../components/label-chips';
import { SelectField } from '../components/select-field';
import { EmptyState, QueryState } from '../components/states';
import { type Column, DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
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
  const catalogKey =
    query.get('catalog') === 'published' || query.get('catalog') === 'unpublished' ? (query.get('catalog') as keyof typeof catalogFilters) : null;
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
        <SelectField
          label="Domain"
          value={domain ?? ''}
          any="All domains"
          options={domains}
          onChange={(value) => navigate(withQuery({ domain: value || null }))}
        />
        <SelectField
          label="Catalog"
          value={catalogKey ?? ''}
          any="Published or not"
          options={[
            { value: 'published', label: 'In the catalog' },
            { value: 'unpublished', label: 'Not in the catalog' },
          ]}
          onChange={(value) => navigate(withQuery({ catalog: value || null }))}
        />
      </form>
      <QueryState
        data={shown}
        error={result.error}
        errorTitle="Datasets could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading datasets…"
        empty={
          <EmptyState title={domain || catalogKey ? 'No datasets match these filters' : 'No datasets registered yet'}>
            <p>
              Register one with its columns and their labels through the API (<code>createDataset</code>) or <code>npx atelier dataset create</code>.
            </p>
          </EmptyState>
        }
      >
        {(shown) => (
          <DataTable
            label="Datasets"
            rows={shown}
            rowKey={(d) => d.id}
            rowHref={(d) => datasetHref(d.fullName)}
            rowProps={(d) => ({ 'data-dataset': d.fullName, class: unclassified(d) > 0 ? 'needs-label' : undefined })}
            columns={datasetColumns(unclassified)}
          />
        )}
      </QueryState>
    </section>
  );
}

function datasetColumns(unclassified: (d: Dataset) => number): Column<Dataset>[] {
  return [
    {
      header: 'Dataset',
      rowHeader: true,
      cell: (d) => (
        <>
          <Link href={datasetHref(d.fullName)}>{d.fullName}</Link>
          {d.description && <div class="row-message">{d.description}</div>}
        </>
      ),
    },
    { header: 'Domain', cell: (d) => <span class={`chip domain-${d.domain as DomainName}`}>{d.domain}</span> },
    { header: 'Columns', cell: (d) => <ColumnsCell dataset={d} unclassified={unclassified(d)} /> },
    {
      header: 'Latest version',
      class: 'num',
      cell: (d) => {
        const latest = d.versions.reduce<Dataset['versions'][number] | null>((a, v) => (!a || v.version > a.version ? v : a), null);
        return latest ? (
          <>
            {latest.version}, <Time iso={latest.createdAt} />
          </>
        ) : (
          <Time iso={d.createdAt} />
        );
      },
    },
    {
      header: 'Catalog',
      cellProps: (d) => ({ 'data-catalog': d.catalog.published ? 'published' : 'unpublished' }),
      cell: (d) =>
        d.catalog.published ? (
          <>
            <span class="chip ok">published</span> <Time iso={d.catalog.publishedAt} />
          </>
        ) : (
          <span class="muted">not published</span>
        ),
    },
  ];
}

function ColumnsCell({ dataset: d, unclassified }: { dataset: Dataset; unclassified: number }) {
  const columns = [...d.columns].sort((a, b) => Number(b.needsClassification) - Number(a.needsClassification));
  const more = columns.length - SHOWN_COLUMNS;
  return (
    <>
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
      {more > 0 && <Link href={datasetHref(d.fullName)}>+{more} more</Link>}
    </>
  );
}

// A dataset's page: its columns with their labels (UNCLASSIFIED flagged), versions, catalog state with publish and
// withdraw, a preview of its sample rows at the viewer's clearance, and the declassifications waiting on it.
import { useQuery } from '@urql/preact';
import { LabelChips } from '../../components/label-chips';
import { EmptyState, ErrorState, Loading } from '../../components/states';
import { Time } from '../../lib/format';
import { useTitle } from '../../lib/title';
import { Link } from '../../router';
import type { DomainName } from '../datasets';
import { CatalogPanel } from './catalog';
import { DeclassificationsPanel } from './declassifications';
import { DATASET, type DatasetData } from './documents';
import { PreviewPanel } from './preview';

export default function DatasetPage({ fullName }: { fullName: string }) {
  useTitle(fullName);
  const [result, reexecute] = useQuery({ query: DATASET, variables: { name: fullName } });
  const dataset = result.data?.dataset;
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  if (result.error && !dataset) return <ErrorState title="This dataset could not be loaded" error={result.error} retry={refresh} />;
  if (!result.data) return <Loading label="Loading the dataset…" />;
  if (!dataset)
    return (
      <EmptyState title={`No dataset named “${fullName}”`}>
        <p>
          <Link href="/datasets">See all datasets</Link>.
        </p>
      </EmptyState>
    );
  const unclassified = dataset.columns.filter((c) => c.needsClassification).length;
  return (
    <section aria-labelledby="dataset-title">
      <nav class="breadcrumbs" aria-label="Breadcrumbs">
        <Link href="/datasets">Datasets</Link> <span aria-hidden="true">/</span> <span>{dataset.fullName}</span>
      </nav>
      <div class="page-header">
        <h1 id="dataset-title">
          {dataset.fullName} <span class={`chip domain-${dataset.domain as DomainName}`}>{dataset.domain}</span>
        </h1>
      </div>
      {dataset.description && <p class="lead">{dataset.description}</p>}
      <ColumnsCard dataset={dataset} unclassified={unclassified} />
      <CatalogPanel dataset={dataset} onChange={refresh} />
      <PreviewPanel name={dataset.fullName} />
      <DeclassificationsPanel dataset={dataset.fullName} onDecided={refresh} />
      <VersionsCard versions={dataset.versions} />
    </section>
  );
}

function ColumnsCard({ dataset, unclassified }: { dataset: DatasetData; unclassified: number }) {
  return (
    <div class="card">
      <h2 class="card-title">
        Columns{' '}
        {unclassified > 0 && (
          <span class="chip unclassified" data-testid="unclassified-count">
            ⚠ {unclassified} column{unclassified === 1 ? '' : 's'} unclassified
          </span>
        )}
      </h2>
      <div class="table-wrap">
        <table aria-label={`Columns of ${dataset.fullName}`}>
          <thead>
            <tr>
              <th scope="col">Column</th>
              <th scope="col">Type</th>
              <th scope="col">Classification</th>
              <th scope="col">Derived from lineage</th>
            </tr>
          </thead>
          <tbody>
            {dataset.columns.map((c) => (
              <tr key={c.name} data-column={c.name} class={c.needsClassification ? 'needs-label' : undefined}>
                <th scope="row">
                  <code>{c.name}</code>
                </th>
                <td>
                  <code>{c.type}</code>
                </td>
                <td>
                  <LabelChips label={c.label} />
                  {c.needsClassification && (
                    <span class="row-message" data-testid="needs-classification">
                      {' '}
                      needs classification: treated as above RESTRICTED until labelled
                    </span>
                  )}
                </td>
                <td>{c.computedLabel ? <LabelChips label={c.computedLabel} /> : <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function VersionsCard({ versions }: { versions: DatasetData['versions'] }) {
  const newestFirst = [...versions].sort((a, b) => b.version - a.version);
  return (
    <div class="card">
      <h2 class="card-title">Versions</h2>
      <div class="table-wrap">
        <table aria-label="Versions">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Digest</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {newestFirst.map((v) => (
              <tr key={v.version}>
                <th scope="row" class="num">
                  {v.version}
                </th>
                <td>
                  <code class="id">{v.digest}</code>
                </td>
                <td>
                  <Time iso={v.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

// A dataset's page: its columns with their labels (UNCLASSIFIED flagged), versions, catalog state with publish and
// withdraw, a preview of its sample rows at the viewer's clearance, the declassifications waiting on it, and its
// freshness and drift (operations.tsx).

import { useState } from 'preact/hooks';
import { refetch } from '../../api/client';
import { LabelChips } from '../../components/label-chips';
import { taskHref } from '../../components/links';
import { NotFoundState, QueryState } from '../../components/states';
import { DataTable } from '../../components/table';
import { Time } from '../../lib/format';
import { useQuery } from '../../lib/query';
import { useTitle } from '../../lib/title';
import { Link } from '../../router';
import type { DomainName } from '../datasets';
import { CatalogPanel } from './catalog';
import { DeclassificationsPanel } from './declassifications';
import { DATASET, type DatasetData } from './documents';
import { LineageCard } from './lineage';
import { DriftCard, FreshnessCard } from './operations';
import { PreviewPanel } from './preview';

export default function DatasetPage({ fullName }: { fullName: string }) {
  useTitle(fullName);
  const [result, reexecute] = useQuery({ query: DATASET, variables: { name: fullName } });
  const refresh = refetch(reexecute);
  return (
    <QueryState
      data={result.data?.dataset}
      error={result.error}
      errorTitle="This dataset could not be loaded"
      retry={refresh}
      loading="Loading the dataset…"
      empty={<NotFoundState title={`No dataset named “${fullName}”`} href="/datasets" link="See all datasets" />}
    >
      {(dataset) => (
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
          <ColumnsCard dataset={dataset} unclassified={dataset.columns.filter((c) => c.needsClassification).length} />
          <CatalogPanel dataset={dataset} onChange={refresh} />
          <PreviewPanel name={dataset.fullName} />
          <DeclassificationsPanel dataset={dataset.fullName} onDecided={refresh} />
          <VersionsCard versions={dataset.versions} />
          <FreshnessCard name={dataset.fullName} />
          <DriftCard name={dataset.fullName} versions={dataset.versions.map((v) => v.version)} />
          <LineageCard dataset={dataset} />
        </section>
      )}
    </QueryState>
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
      <DataTable
        label={`Columns of ${dataset.fullName}`}
        rows={dataset.columns}
        rowKey={(c) => c.name}
        rowProps={(c) => ({ 'data-column': c.name, class: c.needsClassification ? 'needs-label' : undefined })}
        columns={[
          { header: 'Column', rowHeader: true, cell: (c) => <code>{c.name}</code> },
          { header: 'Type', cell: (c) => <code>{c.type}</code> },
          {
            header: 'Classification',
            cell: (c) => (
              <>
                <LabelChips label={c.label} />
                {c.needsClassification && (
                  <span class="row-message" data-testid="needs-classification">
                    {' '}
                    needs classification: treated as above RESTRICTED until labelled
                  </span>
                )}
              </>
            ),
          },
          { header: 'Derived from lineage', cell: (c) => (c.computedLabel ? <LabelChips label={c.computedLabel} /> : <span class="muted">—</span>) },
        ]}
      />
    </div>
  );
}

type Version = DatasetData['versions'][number];

/** Who wrote a version: the task of a run (linked to it), or an upload. */
function Producer({ version: v }: { version: Version }) {
  if (!v.producedBy) return <span class="muted">uploaded</span>;
  return (
    <Link href={taskHref(v.producedBy.run.id, v.producedBy.node)}>
      task {v.producedBy.node} of {v.producedBy.run.workflow?.name ?? 'a run logged from outside a workflow'} (run {v.producedBy.run.id.slice(0, 8)})
    </Link>
  );
}

function VersionsCard({ versions }: { versions: DatasetData['versions'] }) {
  const newestFirst = [...versions].sort((a, b) => b.version - a.version);
  const [picked, setPicked] = useState<number | null>(null);
  const latest = newestFirst[0];
  const chosen = newestFirst.find((v) => v.version === picked) ?? latest;
  const latestNames = new Set(latest?.columns.map((c) => c.name));
  const chosenNames = new Set(chosen?.columns.map((c) => c.name));
  return (
    <div class="card">
      <h2 class="card-title">Versions</h2>
      <DataTable
        label="Versions"
        rows={newestFirst}
        rowKey={(v) => v.version}
        columns={[
          { header: 'Version', rowHeader: true, class: 'num', cell: (v) => v.version },
          { header: 'Digest', cell: (v) => <code class="id">{v.digest}</code> },
          { header: 'Produced by', cell: (v) => <Producer version={v} /> },
          { header: 'Created', cell: (v) => <Time iso={v.createdAt} /> },
        ]}
      />
      {chosen && (
        <>
          <div class="filters version-picker">
            <label>
              Show version
              <select value={chosen.version} onChange={(e) => setPicked(Number(e.currentTarget.value))}>
                {newestFirst.map((v) => (
                  <option key={v.version} value={v.version}>
                    {v.version}
                    {v === latest ? ' (latest)' : ''}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <DataTable
            label={`Columns of version ${chosen.version}`}
            rows={[...chosen.columns, ...(latest?.columns.filter((c) => !chosenNames.has(c.name)) ?? []).map((c) => ({ ...c, absent: true }))]}
            rowKey={(c) => c.name}
            rowProps={(c) => ({ 'data-version-column': c.name })}
            columns={[
              { header: 'Column', rowHeader: true, cell: (c) => <code>{c.name}</code> },
              { header: 'Type', cell: (c) => ('absent' in c ? <span class="muted">—</span> : <code>{c.type}</code>) },
              {
                header: 'Compared with the latest',
                cell: (c) =>
                  'absent' in c ? (
                    <span class="chip">added later</span>
                  ) : latestNames.has(c.name) ? (
                    <span class="muted">in the latest too</span>
                  ) : (
                    <span class="chip warn">removed since</span>
                  ),
              },
            ]}
          />
        </>
      )}
    </div>
  );
}

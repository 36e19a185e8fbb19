// Sample rows at the viewer's clearance: only the columns the API returns are drawn, the withheld ones are named
// above the table, and grouping (over readable columns only) shows a count per value instead of rows.

import { refetch } from '../../api/client';
import { SelectField } from '../../components/select-field';
import { QueryState } from '../../components/states';
import { DataTable } from '../../components/table';
import { formatInteger } from '../../lib/format';
import { useQuery } from '../../lib/query';
import { navigate, useLocation, withQuery } from '../../router';
import { PREVIEW } from './documents';

const ROWS = 20;
const GROUPS = 50;

export function PreviewPanel({ name }: { name: string }) {
  const { query } = useLocation();
  const [rowsResult, reexecuteRows] = useQuery({ query: PREVIEW, variables: { name, limit: ROWS } });
  const preview = rowsResult.data?.datasetPreview;
  // only a column the rows preview returned can be grouped on; anything else in the URL is ignored
  const groupBy = preview?.columns.find((c) => c === query.get('group')) ?? null;
  const [groupsResult, reexecuteGroups] = useQuery({ query: PREVIEW, variables: { name, groupBy: groupBy ? [groupBy] : [], limit: GROUPS }, pause: !groupBy });
  const groups = groupsResult.data?.datasetPreview.groups;

  return (
    <section class="card" aria-labelledby="preview-title">
      <h2 class="card-title" id="preview-title">
        Preview
      </h2>
      <QueryState
        data={preview}
        error={rowsResult.error}
        errorTitle="The preview could not be loaded"
        retry={refetch(reexecuteRows)}
        loading="Loading the preview…"
      >
        {(preview) => (
          <>
            {preview.withheld.length > 0 && (
              <p class="banner warn" role="note" data-testid="withheld">
                Withheld at your clearance: {preview.withheld.join(', ')}
              </p>
            )}
            {preview.columns.length === 0 ? (
              <p class="muted">No column of this dataset is readable at your clearance.</p>
            ) : (
              <>
                <form class="filters" aria-label="Preview options" onSubmit={(e) => e.preventDefault()}>
                  <SelectField
                    label="Group by"
                    value={groupBy ?? ''}
                    any="No grouping (sample rows)"
                    options={preview.columns}
                    onChange={(value) => navigate(withQuery({ group: value || null }), { replace: true })}
                  />
                </form>
                {!groupBy ? (
                  <RowsTable columns={preview.columns} rows={preview.rows} />
                ) : (
                  <QueryState
                    data={groups}
                    error={groupsResult.error}
                    errorTitle="The groups could not be counted"
                    retry={refetch(reexecuteGroups)}
                    loading="Counting…"
                  >
                    {(groups) => <GroupsTable column={groupBy} groups={groups} />}
                  </QueryState>
                )}
              </>
            )}
          </>
        )}
      </QueryState>
    </section>
  );
}

function RowsTable({ columns, rows }: { columns: readonly string[]; rows: readonly unknown[] }) {
  return (
    <DataTable
      label="Sample rows"
      rows={rows}
      rowKey={(_, i) => i}
      columns={columns.map((c) => ({ header: c, cell: (row: unknown) => <Value value={(row as Record<string, unknown>)[c]} /> }))}
      empty={<p class="muted">No sample rows (give them with createDataset’s sample).</p>}
      footer={
        <p class="hint">
          {rows.length} sample row{rows.length === 1 ? '' : 's'}
          {rows.length === ROWS ? ` (the first ${ROWS})` : ''}.
        </p>
      }
    />
  );
}

function GroupsTable({ column, groups }: { column: string; groups: readonly { key: unknown; count: number }[] }) {
  return (
    <DataTable
      label={`Rows per ${column}`}
      rows={groups}
      rowKey={(_, i) => i}
      rowProps={(g) => ({ 'data-group-count': g.count })}
      columns={[
        { header: column, rowHeader: true, cell: (g) => <Value value={(g.key as Record<string, unknown>)[column]} /> },
        { header: 'Rows', headerClass: 'num', class: 'num', cell: (g) => formatInteger(g.count) },
      ]}
      footer={groups.length === GROUPS && <p class="hint">The {GROUPS} largest groups.</p>}
    />
  );
}

function Value({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="muted">null</span>;
  if (typeof value === 'object') return <code>{JSON.stringify(value)}</code>;
  return <>{String(value)}</>;
}

// Sample rows at the viewer's clearance: only the columns the API returns are drawn, the withheld ones are named
// above the table, and grouping (over readable columns only) shows a count per value instead of rows.
import { useQuery } from '@urql/preact';
import { ErrorState, Loading } from '../../components/states';
import { formatInteger } from '../../lib/format';
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
    <div class="card" role="region" aria-labelledby="preview-title">
      <h2 class="card-title" id="preview-title">
        Preview
      </h2>
      {rowsResult.error && !preview ? (
        <ErrorState title="The preview could not be loaded" error={rowsResult.error} retry={() => reexecuteRows({ requestPolicy: 'network-only' })} />
      ) : !preview ? (
        <Loading label="Loading the preview…" />
      ) : (
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
                <label>
                  Group by
                  <select value={groupBy ?? ''} onChange={(e) => navigate(withQuery({ group: e.currentTarget.value || null }), { replace: true })}>
                    <option value="">No grouping (sample rows)</option>
                    {preview.columns.map((c) => (
                      <option key={c} value={c}>
                        {c}
                      </option>
                    ))}
                  </select>
                </label>
              </form>
              {!groupBy ? (
                <RowsTable columns={preview.columns} rows={preview.rows} />
              ) : groupsResult.error && !groups ? (
                <ErrorState title="The groups could not be counted" error={groupsResult.error} retry={() => reexecuteGroups({ requestPolicy: 'network-only' })} />
              ) : !groups ? (
                <Loading label="Counting…" />
              ) : (
                <GroupsTable column={groupBy} groups={groups} />
              )}
            </>
          )}
        </>
      )}
    </div>
  );
}

function RowsTable({ columns, rows }: { columns: readonly string[]; rows: readonly unknown[] }) {
  if (rows.length === 0) return <p class="muted">No sample rows (give them with createDataset’s sample).</p>;
  return (
    <div class="table-wrap">
      <table aria-label="Sample rows">
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              {columns.map((c) => (
                <td key={c}>
                  <Value value={(row as Record<string, unknown>)[c]} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <p class="hint">
        {rows.length} sample row{rows.length === 1 ? '' : 's'}
        {rows.length === ROWS ? ` (the first ${ROWS})` : ''}.
      </p>
    </div>
  );
}

function GroupsTable({ column, groups }: { column: string; groups: readonly { key: unknown; count: number }[] }) {
  return (
    <div class="table-wrap">
      <table aria-label={`Rows per ${column}`}>
        <thead>
          <tr>
            <th scope="col">{column}</th>
            <th scope="col" class="num">
              Rows
            </th>
          </tr>
        </thead>
        <tbody>
          {groups.map((g, i) => (
            <tr key={i} data-group-count={g.count}>
              <th scope="row">
                <Value value={(g.key as Record<string, unknown>)[column]} />
              </th>
              <td class="num">{formatInteger(g.count)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {groups.length === GROUPS && <p class="hint">The {GROUPS} largest groups.</p>}
    </div>
  );
}

function Value({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="muted">null</span>;
  if (typeof value === 'object') return <code>{JSON.stringify(value)}</code>;
  return <>{String(value)}</>;
}

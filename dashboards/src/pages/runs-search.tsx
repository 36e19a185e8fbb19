// The runs list's experiment-tracking parts: the search box (searchRuns' filter language, its error inline), the
// column picker (metrics and params of the shown runs), those columns sortable through searchRuns' orderBy, tag
// chips that add a filter clause, and the row checkboxes that pick runs to compare. A shown run's tags, params and
// metric summaries come from one compareRuns call for the page: it answers for the runs whose data you may read
// and leaves the others out (their cells stay empty), so no error spoils the list.

import { useMemo, useState } from 'preact/hooks';
import type { Column } from '../components/table';
import { graphql } from '../graphql';
import { count } from '../lib/format';
import { useQuery } from '../lib/query';
import { andClause, type ColumnKind, columnsText, fieldName, formatMetric, type PickedColumn, parseColumns, quoted } from '../lib/run-filter';
import { navigate, withQuery } from '../router';

const RUN_DATA = graphql(`
  query RunListData($ids: [ID!]!, $metrics: [String!]) {
    compareRuns(ids: $ids, metrics: $metrics, allParams: true, maxPoints: 2) {
      runs { id tags { key value } }
      params { key values }
      metrics { name values { last } }
    }
  }
`);

const COLUMN_CHOICES = graphql(`
  query RunListColumns($ids: [ID!]!) {
    compareRuns(ids: $ids, allParams: true, maxPoints: 2) { params { key } metrics { name } }
  }
`);

export interface RunData {
  tags: { key: string; value: string }[];
  params: Map<string, string | null>;
  metrics: Map<string, unknown>;
}

/** Tags, params and the picked metrics of the shown runs whose data the caller may read, by run id. */
export function useRunData(ids: string[], columns: PickedColumn[]): Map<string, RunData> {
  const metrics = useMemo(() => columns.filter((c) => c.kind === 'metrics').map((c) => c.name), [columns]);
  const variables = useMemo(() => ({ ids, metrics }), [ids.join(','), metrics.join('\u0000')]);
  const [result] = useQuery({ query: RUN_DATA, variables, pause: ids.length === 0 });
  return useMemo(() => {
    const out = new Map<string, RunData>();
    const c = result.data?.compareRuns;
    if (!c) return out;
    c.runs.forEach((run, i) => {
      out.set(run.id, {
        tags: run.tags ?? [],
        params: new Map(c.params.map((p) => [p.key, p.values[i] ?? null])),
        metrics: new Map(c.metrics.map((m) => [m.name, m.values[i]?.last ?? null])),
      });
    });
    return out;
  }, [result.data]);
}

export function SearchBox({ value, error, onSearch }: { value: string; error: string | null; onSearch(filter: string): void }) {
  return (
    <form
      class="run-search"
      aria-label="Search runs"
      onSubmit={(e) => {
        e.preventDefault();
        onSearch(String(new FormData(e.currentTarget).get('q') ?? '').trim());
      }}
    >
      <label>
        Search
        <input
          name="q"
          type="search"
          key={value}
          defaultValue={value}
          placeholder="metrics.accuracy > 0.9 and params.lr <= 0.1 and tags.dataset = 'v2'"
          aria-invalid={error ? 'true' : undefined}
          aria-describedby={error ? 'run-search-error' : 'run-search-help'}
          spellcheck={false}
        />
      </label>
      <button type="submit" class="button">
        Search
      </button>
      {error ? (
        <p id="run-search-error" class="form-error filter-error" role="alert">
          {error}
        </p>
      ) : (
        <p id="run-search-help" class="muted hint">
          Fields: metrics.NAME[.min|.max], params.NAME, tags.NAME, status, workflow, experiment, name, created; join with and / or.
        </p>
      )}
    </form>
  );
}

export function ColumnPicker({ columns, ids, onChange }: { columns: PickedColumn[]; ids: string[]; onChange(columns: PickedColumn[]): void }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [choices] = useQuery({ query: COLUMN_CHOICES, variables: { ids }, pause: !open || ids.length === 0 });
  const found = choices.data?.compareRuns;
  const options: PickedColumn[] = [
    ...(found?.metrics ?? []).map((m) => ({ kind: 'metrics' as const, name: m.name })),
    ...(found?.params ?? []).map((p) => ({ kind: 'params' as const, name: p.key })),
  ];
  for (const c of columns) if (!options.some((o) => same(o, c))) options.push(c);
  const toggle = (c: PickedColumn, on: boolean) => onChange(on ? [...columns, c] : columns.filter((x) => !same(x, c)));
  const add = () => {
    const m = /^(metrics|params)\.(.+)$/.exec(typed.trim());
    if (!m) return;
    const c = { kind: m[1] as ColumnKind, name: m[2]! };
    if (!columns.some((x) => same(x, c))) onChange([...columns, c]);
    setTyped('');
  };
  return (
    <details class="column-picker" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary class="button">Columns{columns.length ? ` (${columns.length})` : ''}</summary>
      <fieldset>
        <legend>Metric and param columns</legend>
        {open && choices.fetching && <p class="muted">Looking at the shown runs…</p>}
        {options.map((o) => (
          <label key={`${o.kind}.${o.name}`} class="check">
            <input type="checkbox" checked={columns.some((c) => same(c, o))} onChange={(e) => toggle(o, e.currentTarget.checked)} />
            {o.kind}.{o.name}
          </label>
        ))}
        <label>
          Another
          <input
            type="text"
            placeholder="metrics.NAME or params.NAME"
            value={typed}
            onInput={(e) => setTyped(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') {
                e.preventDefault();
                add();
              }
            }}
          />
        </label>
        <button type="button" class="button subtle" onClick={add}>
          Add column
        </button>
      </fieldset>
    </details>
  );
}

const same = (a: PickedColumn, b: PickedColumn) => a.kind === b.kind && a.name === b.name;

interface Sorting {
  /** The order key now in use, e.g. "metrics.acc DESC". */
  order: string;
  sortBy(field: string, kind: ColumnKind): void;
  fieldOf(c: PickedColumn): string;
}

/** A column per picked metric or param: its header sorts the runs by it (through searchRuns), descending first for metrics. */
export function pickedColumns<T extends { id: string }>(columns: PickedColumn[], data: Map<string, RunData>, sorting: Sorting): Column<T>[] {
  return columns.map((c) => {
    const field = sorting.fieldOf(c);
    const direction = sorting.order === `${field} DESC` ? 'descending' : sorting.order === `${field} ASC` || sorting.order === field ? 'ascending' : null;
    return {
      header: (
        <button
          type="button"
          class="sort"
          data-column={`${c.kind}.${c.name}`}
          aria-label={`Sort by ${c.kind}.${c.name}${direction ? ` (now ${direction})` : ''}`}
          onClick={() => sorting.sortBy(field, c.kind)}
        >
          {c.name}
          <span class="muted"> {c.kind === 'metrics' ? 'metric' : 'param'}</span>
          {direction && <span aria-hidden="true">{direction === 'descending' ? ' ▼' : ' ▲'}</span>}
        </button>
      ),
      class: c.kind === 'metrics' ? 'num' : undefined,
      cellProps: () => ({ 'data-column': `${c.kind}.${c.name}` }),
      cell: (run) => {
        const d = data.get(run.id);
        if (!d) return <span class="muted">—</span>;
        return c.kind === 'metrics' ? formatMetric(d.metrics.get(c.name)) : (d.params.get(c.name) ?? <span class="muted">—</span>);
      },
    };
  });
}

export function TagChips({ tags, onPick }: { tags: { key: string; value: string }[]; onPick(key: string, value: string): void }) {
  if (!tags.length) return null;
  return (
    <span class="tag-chips">
      {tags.map((t) => (
        <button
          type="button"
          key={t.key}
          class="chip tag"
          title={`Show runs tagged ${t.key} = ${t.value}`}
          onClick={(e) => {
            e.stopPropagation();
            onPick(t.key, t.value);
          }}
        >
          {t.key}={t.value}
        </button>
      ))}
    </span>
  );
}

export function SelectBox({ id, label, checked, onChange }: { id: string; label: string; checked: boolean; onChange(on: boolean): void }) {
  return (
    <input
      type="checkbox"
      class="select-run"
      data-select={id}
      aria-label={`Select ${label} to compare`}
      checked={checked}
      onClick={(e) => e.stopPropagation()}
      onChange={(e) => onChange(e.currentTarget.checked)}
    />
  );
}

const COLUMNS_KEY = 'atelier-run-columns';
function storedColumns(): string | null {
  try {
    return localStorage.getItem(COLUMNS_KEY);
  } catch {
    return null;
  }
}

/** The picked columns: the address's (`cols`), else the last ones picked in this browser; picking keeps them in both. */
export function usePickedColumns(fromAddress: string | null): [PickedColumn[], (next: PickedColumn[]) => void] {
  const columns = useMemo(() => parseColumns(fromAddress ?? storedColumns()), [fromAddress]);
  const setColumns = (next: PickedColumn[]) => {
    try {
      localStorage.setItem(COLUMNS_KEY, columnsText(next));
    } catch {}
    navigate(withQuery({ cols: columnsText(next) || null }), { replace: true });
  };
  return [columns, setColumns];
}

interface Listed {
  id: string;
  name: string | null;
  workflow: { name: string } | null;
}

/** The list's own columns with a select box first, the tag chips after the first two, and the picked columns next. */
export function trackingColumns<T extends Listed>(
  base: Column<T>[],
  o: {
    columns: PickedColumn[];
    data: Map<string, RunData>;
    search: string;
    order: string;
    selected: string[];
    setSelected(update: (s: string[]) => string[]): void;
  },
): Column<T>[] {
  const sorting: Sorting = {
    order: o.order,
    fieldOf: (c) => fieldName(c.kind, c.name),
    sortBy: (field) =>
      navigate(
        withQuery({ order: o.order === `${field} DESC` ? `${field} ASC` : o.order === `${field} ASC` ? null : `${field} DESC`, after: null, before: null }),
      ),
  };
  const addTag = (key: string, value: string) =>
    navigate(withQuery({ q: andClause(o.search, `${fieldName('tags', key)} = ${quoted(value)}`), after: null, before: null }));
  return [
    {
      header: 'Select',
      hideHeader: true,
      cell: (run) => (
        <SelectBox
          id={run.id}
          label={run.name ?? run.workflow?.name ?? run.id.slice(0, 8)}
          checked={o.selected.includes(run.id)}
          onChange={(on) => o.setSelected((s) => (on ? [...s.filter((x) => x !== run.id), run.id] : s.filter((x) => x !== run.id)))}
        />
      ),
    },
    ...base.slice(0, 2),
    { header: 'Tags', cell: (run) => <TagChips tags={o.data.get(run.id)?.tags ?? []} onPick={addTag} /> },
    ...pickedColumns<T>(o.columns, o.data, sorting),
    ...base.slice(2),
  ];
}

export function SelectionBar({ selected, onClear }: { selected: string[]; onClear(): void }) {
  return (
    <div class="selection-bar" aria-live="polite">
      <span class="muted">{selected.length ? `${selected.length} selected` : 'Tick runs to compare them.'}</span>
      <button
        type="button"
        class="button primary"
        disabled={selected.length < 2 || selected.length > 100}
        onClick={() => navigate(`/compare?ids=${selected.join(',')}`)}
      >
        Compare{selected.length ? ` ${count(selected.length, 'run')}` : ''}
      </button>
      {selected.length > 0 && (
        <button type="button" class="button subtle" onClick={onClear}>
          Clear selection
        </button>
      )}
    </div>
  );
}

// The runs list: newest first, filtered by workflow, status, trigger and who started them, paged with the
// API's cursors, and live: statuses change in place and new runs appear (allRunEvents; the list is read again once
// it listens, so a run started between the first read and the subscription is not missed). A search (the filter
// language) or a sort by a metric or param column lists through searchRuns instead (runs-search.tsx); the search,
// the sort and the picked columns are kept in the address, so a reload or Back shows the same list.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { refetch } from '../api/client';
import { ScheduleLink } from '../components/links';
import { SelectField } from '../components/select-field';
import { EmptyState, QueryState } from '../components/states';
import { StatusBadge, terminalRunStatuses } from '../components/status';
import { type Column, DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { count, formatDuration, span, Time } from '../lib/format';
import { useNow, useThrottled } from '../lib/hooks';
import { useLiveFeed } from '../lib/live-feed';
import { measureFromResponse } from '../lib/perf';
import { useQuery } from '../lib/query';
import { andClause, quoted } from '../lib/run-filter';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';
import { ColumnPicker, SearchBox, SelectionBar, trackingColumns, usePickedColumns, useRunData } from './runs-search';

export const RunRow = graphql(`
  fragment RunRow on Run {
    id
    name
    status
    trigger
    message
    createdAt
    startedAt
    finishedAt
    domain
    workflow { id name domain }
    createdBy { name }
    schedule { id name }
  }
`);

const RUNS = graphql(
  `
    query Runs($first: Int, $after: String, $last: Int, $before: String, $filter: RunFilter) {
      runs(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
        edges { cursor node { ...RunRow } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  `,
  [RunRow],
);

const SEARCH_RUNS = graphql(
  `
    query SearchRunsList($first: Int, $after: String, $last: Int, $before: String, $filter: String, $orderBy: [String!]) {
      searchRuns(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
        edges { cursor node { ...RunRow } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  `,
  [RunRow],
);

const WORKFLOW_NAMES = graphql(`
  query WorkflowNames { workflows { id name } }
`);

export const RUN_STATUS_FEED = graphql(`
  subscription RunStatusFeed {
    allRunEvents(announce: true) { __typename ... on RunStatusEvent { runId runStatus message at } }
  }
`);

type Run = ResultOf<typeof RunRow>;
type RunStatus = Run['status'];
type Trigger = Run['trigger'];

const PAGE_SIZE = 50;
/** searchRuns' codes for a filter or order to fix (shown under the search box, not as a failure to load). */
const FILTER_ERRORS = new Set(['BAD_USER_INPUT', 'UNKNOWN_METRIC', 'UNKNOWN_PARAM', 'UNKNOWN_TAG']);
type Domain = ResultOf<typeof RunRow>['domain'];
const domains: Domain[] = ['experimentation', 'adhoc', 'production'];
export const runStatuses: RunStatus[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const triggers: Trigger[] = ['DASHBOARD', 'API', 'CLI', 'SCHEDULE', 'CLONE', 'RERUN', 'PARENT'];
/** An enum value as a choice: QUEUED reads "Queued". */
const word = (value: string) => ({ value, label: value.charAt(0) + value.slice(1).toLowerCase() });
const rank = (s: RunStatus) => (s === 'QUEUED' ? 0 : s === 'RUNNING' ? 1 : 2);

interface LiveChange {
  status: RunStatus;
  message: string | null;
  at: string;
  /** When the feed saw it leave the queue: a row listed while queued has no start time of its own to time it by. */
  startedAt: string | null;
}

export function RunsPage() {
  useTitle('Runs');
  const { query } = useLocation();
  const filterValues = {
    workflow: query.get('workflow') ?? '',
    status: query.get('status') ?? '',
    trigger: query.get('trigger') ?? '',
    by: query.get('by') ?? '',
    domain: query.get('domain') ?? '',
  };
  const after = query.get('after');
  const before = query.get('before');
  const firstPage = !after && !before;
  const search = query.get('q') ?? '';
  const order = query.get('order') ?? '';
  const [columns, setColumns] = usePickedColumns(query.get('cols'));
  // a search or a sort by a column lists through searchRuns; the drop-downs join it as clauses
  const searching = Boolean(search || order);

  const filter = useMemo(
    () => ({
      workflow: filterValues.workflow || null,
      status: filterValues.status ? [filterValues.status as RunStatus] : null,
      trigger: filterValues.trigger ? [filterValues.trigger as Trigger] : null,
      createdBy: filterValues.by || null,
      domain: filterValues.domain ? [filterValues.domain as Domain] : null,
    }),
    [filterValues.workflow, filterValues.status, filterValues.trigger, filterValues.by, filterValues.domain],
  );
  const searchFilter = useMemo(() => {
    let f = search;
    for (const key of ['workflow', 'status', 'trigger', 'domain'] as const) if (filterValues[key]) f = andClause(f, `${key} = ${quoted(filterValues[key])}`);
    return f;
  }, [search, filterValues.workflow, filterValues.status, filterValues.trigger, filterValues.domain]);
  const page = useMemo(() => (before ? { last: PAGE_SIZE, before } : { first: PAGE_SIZE, after }), [after, before]);
  const variables = useMemo(() => ({ ...page, filter }), [page, filter]);
  const searchVariables = useMemo(() => ({ ...page, filter: searchFilter, orderBy: order ? [order] : null }), [page, searchFilter, order]);
  const [listed, reexecuteList] = useQuery({ query: RUNS, variables, pause: searching });
  const [found, reexecuteSearch] = useQuery({ query: SEARCH_RUNS, variables: searchVariables, pause: !searching });
  const result = searching
    ? { connection: found.data?.searchRuns, error: found.error, fetching: found.fetching, stale: found.stale }
    : { connection: listed.data?.runs, error: listed.error, fetching: listed.fetching, stale: listed.stale };
  const reexecute = searching ? reexecuteSearch : reexecuteList;
  // a malformed filter, or a metric, param or tag no run has: the server's message (where, what it expected or the names
  // nearest a typo) under the search box
  const filterError = (searching && found.error?.graphQLErrors.find((e) => FILTER_ERRORS.has(String(e.extensions?.code)))?.message) || null;
  const [workflows] = useQuery({ query: WORKFLOW_NAMES });

  // Live: status changes in place; a run we do not show yet means the first page is out of date.
  const [changes, setChanges] = useState<Map<string, LiveChange>>(() => new Map());
  const [missed, setMissed] = useState(0);
  const shown = useRef(new Set<string>());
  shown.current = new Set(result.connection?.edges.map((e) => e.node.id));
  const refreshList = useThrottled(() => reexecute({ requestPolicy: 'network-only' }), 500);
  useLiveFeed(
    RUN_STATUS_FEED,
    {},
    (data) => {
      const e = data.allRunEvents;
      // The feed listens from here: the list read now misses nothing (the one read at first may have been read
      // before it listened, and a run that started in between would be missing until a reload).
      if (e.__typename === 'RunFeedListening') {
        reexecute({ requestPolicy: 'network-only' });
        return;
      }
      if (e.__typename !== 'RunStatusEvent') return;
      if (shown.current.has(e.runId)) {
        setChanges((prev) => {
          const startedAt = prev.get(e.runId)?.startedAt ?? (e.runStatus === 'QUEUED' ? null : e.at);
          return new Map(prev).set(e.runId, { status: e.runStatus, message: e.message ?? null, at: e.at, startedAt });
        });
      } else if (firstPage) {
        refreshList();
      } else if (e.runStatus === 'QUEUED') {
        setMissed((n) => n + 1);
      }
    },
    // Changes it missed are read with the page again.
    () => reexecute({ requestPolicy: 'network-only' }),
    [firstPage],
  );
  useEffect(() => setMissed(0), [after, before, filter, searchFilter, order]);

  const edges = result.connection?.edges;
  const rows = useMemo(
    () =>
      (edges ?? []).map(({ node }) => {
        const change = changes.get(node.id);
        if (!change || rank(change.status) < rank(node.status)) return node;
        return {
          ...node,
          status: change.status,
          message: change.message,
          startedAt: node.startedAt ?? change.startedAt,
          finishedAt: terminalRunStatuses.has(change.status) ? (node.finishedAt ?? change.at) : node.finishedAt,
        };
      }),
    [edges, changes],
  );
  const active = rows.some((r) => !terminalRunStatuses.has(r.status));
  useNow(1000, active); // re-render every second while a run is active, so durations move

  // The number the browser test prints: from the response to the first page painted.
  const measured = useRef(false);
  useEffect(() => {
    if (measured.current || !edges || result.stale) return;
    measured.current = true;
    measureFromResponse('Runs', 'atelier:runs:first-page');
  }, [edges, result.stale]);

  const setFilter = (key: string, value: string) => navigate(withQuery({ [key]: value, after: null, before: null }));
  const pageInfo = result.connection?.pageInfo;
  const ids = useMemo(() => rows.map((r) => r.id), [rows]);
  const runData = useRunData(ids, columns);
  const [selected, setSelected] = useState<string[]>([]);
  const columnsShown = trackingColumns(runColumns, { columns, data: runData, search, order, selected, setSelected });
  const hasNewer = Boolean(after) || Boolean(before && pageInfo?.hasPreviousPage);
  const hasOlder = Boolean(before) || Boolean(pageInfo?.hasNextPage);
  const filtered = Object.values(filterValues).some(Boolean) || searching;
  const names = workflows.data?.workflows.map((w) => w.name) ?? [];
  // a workflow named in the address but not (or not yet) listed stays choosable
  const workflowNames = filterValues.workflow && !names.includes(filterValues.workflow) ? [filterValues.workflow, ...names] : names;

  return (
    <section aria-labelledby="runs-title">
      <div class="page-header">
        <h1 id="runs-title">Runs</h1>
        <Link class="button primary" href="/workflows">
          Start a run…
        </Link>
      </div>
      <SearchBox value={search} error={filterError} onSearch={(q) => navigate(withQuery({ q, after: null, before: null }))} />
      <form class="filters" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <SelectField
          label="Workflow"
          value={filterValues.workflow}
          any="All workflows"
          options={workflowNames}
          onChange={(value) => setFilter('workflow', value)}
        />
        <SelectField
          label="Status"
          value={filterValues.status}
          any="Any status"
          options={runStatuses.map(word)}
          onChange={(value) => setFilter('status', value)}
        />
        <SelectField
          label="Trigger"
          value={filterValues.trigger}
          any="Any trigger"
          options={triggers.map(word)}
          onChange={(value) => setFilter('trigger', value)}
        />
        <SelectField label="Domain" value={filterValues.domain} any="Any domain" options={domains} onChange={(value) => setFilter('domain', value)} />
        <label>
          Started by
          <input
            type="search"
            placeholder="name"
            defaultValue={filterValues.by}
            key={filterValues.by}
            onKeyDown={(e) => e.key === 'Enter' && setFilter('by', e.currentTarget.value.trim())}
            onBlur={(e) => e.currentTarget.value.trim() !== filterValues.by && setFilter('by', e.currentTarget.value.trim())}
          />
        </label>
        <ColumnPicker columns={columns} ids={ids} onChange={setColumns} />
        {filtered && (
          <button type="button" class="button subtle" onClick={() => navigate(withQuery(clearedFilters))}>
            Clear filters
          </button>
        )}
      </form>

      {searching && filterValues.by && <p class="muted">“Started by” does not narrow a search; use the filter language’s fields.</p>}
      <SelectionBar selected={selected} onClear={() => setSelected([])} />

      {missed > 0 && (
        <p class="banner" role="status">
          {missed} new {missed === 1 ? 'run has' : 'runs have'} started. <Link href={withQuery({ after: null, before: null })}>Show the newest</Link>
        </p>
      )}

      {filterError ? (
        <EmptyState title="Fix the filter to list runs">
          <p>The search above names where the filter went wrong; see the README’s “Experiments, tags and searching runs” for the language.</p>
        </EmptyState>
      ) : (
        <QueryState
          data={result.connection && rows}
          error={result.error}
          errorTitle="Runs could not be loaded"
          retry={refetch(reexecute)}
          loading="Loading runs…"
          empty={
            <EmptyState title={filtered ? 'No runs match these filters' : 'No runs yet'}>
              {filtered ? (
                <p>
                  Try another filter, or <Link href="/runs">show all runs</Link>.
                </p>
              ) : (
                <p>
                  Start one from a <Link href="/workflows">workflow</Link>, or with <code>npx atelier run start WORKFLOW</code>.
                </p>
              )}
            </EmptyState>
          }
        >
          {(rows) => (
            <>
              <DataTable
                class="runs-table"
                describedBy="runs-caption"
                caption={
                  <caption id="runs-caption" class="visually-hidden">
                    Runs, newest first; updates live.
                  </caption>
                }
                rows={rows}
                rowKey={(run) => run.id}
                rowHref={(run) => `/runs/${run.id}`}
                rowProps={(run) => ({ 'data-run-id': run.id })}
                columns={columnsShown}
              />
              <nav class="pager" aria-label="Pages of runs">
                <PagerLink enabled={hasNewer} href={withQuery({ after: null, before: null })} label="« Newest" />
                <PagerLink enabled={hasNewer} href={withQuery({ before: pageInfo?.startCursor ?? null, after: null })} label="‹ Newer" />
                <span class="muted" aria-live="polite">
                  {count(rows.length, 'run')}
                  {result.fetching ? ' · refreshing…' : ''}
                </span>
                <PagerLink enabled={hasOlder} href={withQuery({ after: pageInfo?.endCursor ?? null, before: null })} label="Older ›" />
              </nav>
            </>
          )}
        </QueryState>
      )}
    </section>
  );
}

const clearedFilters = { workflow: null, status: null, trigger: null, by: null, domain: null, q: null, order: null, after: null, before: null };

const runColumns: Column<Run>[] = [
  {
    header: 'Workflow',
    cell: (run) => (
      <>
        <Link href={`/runs/${run.id}`}>{run.name ?? run.workflow?.name ?? 'external run'}</Link> <span class="chip">{run.domain}</span>
        {run.name && run.workflow && <span class="muted"> {run.workflow.name}</span>}
        {run.message && run.status === 'FAILED' && <div class="row-message">{run.message}</div>}
      </>
    ),
  },
  { header: 'Status', cell: (run) => <StatusBadge status={run.status} /> },
  { header: 'Trigger', cell: (run) => run.trigger.toLowerCase() },
  {
    header: 'Started by',
    cell: (run) => (run.schedule ? <ScheduleLink schedule={run.schedule} /> : (run.createdBy?.name ?? <span class="muted">—</span>)),
  },
  { header: 'Created', cell: (run) => <Time iso={run.createdAt} /> },
  { header: 'Duration', class: 'num', cell: (run) => formatDuration(span(run.startedAt, run.finishedAt)) },
  { header: 'Run', cell: (run) => <code class="id">{run.id.slice(0, 8)}</code> },
];

function PagerLink({ enabled, href, label }: { enabled: boolean; href: string; label: string }) {
  if (!enabled) {
    return (
      <span class="button disabled" aria-disabled="true">
        {label}
      </span>
    );
  }
  return (
    <Link class="button" href={href}>
      {label}
    </Link>
  );
}

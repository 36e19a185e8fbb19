// The audit log, for admins: newest first, within the last hour, day or week, searched by subject, each
// decision as a chip and its details expandable. Anyone else gets the API's refusal as an "admins only" state.

import { useMemo, useState } from 'preact/hooks';
import { subjectHref } from '../components/links';
import { SelectField } from '../components/select-field';
import { EmptyState, QueryState } from '../components/states';
import { type Column, DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { formatDateTime, formatInteger, Time } from '../lib/format';
import { useDebounced } from '../lib/hooks';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';

const AUDIT_EVENTS = graphql(`
  query AuditEvents($since: DateTime, $limit: Int) {
    auditEvents(since: $since, limit: $limit) { id at identity { name } action decision subject rule details }
  }
`);

type AuditEvent = ResultOf<typeof AUDIT_EVENTS>['auditEvents'][number];

const windows = {
  hour: { label: 'Last hour', ms: 3_600_000 },
  day: { label: 'Last day', ms: 86_400_000 },
  week: { label: 'Last week', ms: 7 * 86_400_000 },
} as const;
type WindowKey = keyof typeof windows;
/** The most the API returns at once: the subject search looks through these. */
const LIMIT = 1000;

const isForbidden = (error: unknown) =>
  (error as { graphQLErrors?: { extensions?: { code?: unknown } }[] } | undefined)?.graphQLErrors?.some((e) => e.extensions?.code === 'FORBIDDEN') ?? false;

export function AuditPage() {
  useTitle('Audit log');
  const { query } = useLocation();
  const windowKey: WindowKey = (Object.keys(windows) as WindowKey[]).find((k) => k === query.get('window')) ?? 'day';
  const [subject, setSubject] = useState(query.get('subject') ?? '');
  const search = useDebounced(subject.trim().toLowerCase(), 200);
  // fixed per window (and per refresh), so that re-rendering does not ask again with a new `since`
  const [refreshed, setRefreshed] = useState(() => Date.now());
  const since = useMemo(() => new Date(refreshed - windows[windowKey].ms).toISOString(), [windowKey, refreshed]);
  const [result] = useQuery({ query: AUDIT_EVENTS, variables: { since, limit: LIMIT }, requestPolicy: 'network-only' });
  const events = result.data?.auditEvents;
  const shown = useMemo(() => events?.filter((e) => !search || e.subject.toLowerCase().includes(search)), [events, search]);

  if (result.error && isForbidden(result.error))
    return (
      <EmptyState title="The audit log is for admins only">
        <p data-testid="admins-only">{result.error.graphQLErrors[0]?.message}</p>
      </EmptyState>
    );
  return (
    <section aria-labelledby="audit-title">
      <div class="page-header">
        <h1 id="audit-title">Audit log</h1>
        <button type="button" class="button subtle" onClick={() => setRefreshed(Date.now())} disabled={result.fetching}>
          Refresh
        </button>
      </div>
      <form class="filters" aria-label="Filter the audit log" onSubmit={(e) => e.preventDefault()}>
        <label>
          Subject
          <input
            type="search"
            value={subject}
            placeholder="e.g. dataset:crm/users"
            onInput={(e) => {
              setSubject(e.currentTarget.value);
              navigate(withQuery({ subject: e.currentTarget.value }), { replace: true });
            }}
          />
        </label>
        <SelectField
          label="Time"
          value={windowKey}
          options={(Object.keys(windows) as WindowKey[]).map((k) => ({ value: k, label: windows[k].label }))}
          onChange={(value) => navigate(withQuery({ window: value === 'day' ? null : value }))}
        />
      </form>
      <QueryState
        data={events && shown}
        error={result.error}
        errorTitle="The audit log could not be loaded"
        retry={() => setRefreshed(Date.now())}
        loading="Loading the audit log…"
        empty={
          <EmptyState title={search ? `No subject matching “${subject.trim()}” in this window` : 'Nothing audited in this window'}>
            <p>Widen the time window{search ? ' or change the subject' : ''}.</p>
          </EmptyState>
        }
      >
        {(shown) => (
          <>
            <p class="hint">
              {formatInteger(shown.length)} event{shown.length === 1 ? '' : 's'}, newest first
              {events?.length === LIMIT ? `; only the newest ${formatInteger(LIMIT)} of this window are searched, so narrow it to look further back` : ''}.
            </p>
            <DataTable
              label="Audit events"
              rows={shown}
              rowKey={(e) => e.id}
              rowProps={(e) => ({ 'data-action': e.action, 'data-decision': e.decision })}
              columns={auditColumns}
            />
          </>
        )}
      </QueryState>
    </section>
  );
}

const auditColumns: Column<AuditEvent>[] = [
  { header: 'When', class: 'num', cell: (e) => <Time iso={e.at} /> },
  { header: 'Who', cell: (e) => e.identity?.name ?? <span class="muted">system</span> },
  { header: 'Action', cell: (e) => <code>{e.action}</code> },
  { header: 'Decision', cell: (e) => <span class={`chip decision-${e.decision}`}>{e.decision}</span> },
  {
    header: 'Subject',
    rowHeader: true,
    cell: (e) => {
      const href = subjectHref(e.subject);
      return href ? (
        <Link href={href}>
          <code>{e.subject}</code>
        </Link>
      ) : (
        <code>{e.subject}</code>
      );
    },
  },
  { header: 'Rule and details', cell: (e) => <RuleAndDetails event={e} /> },
];

function RuleAndDetails({ event: e }: { event: AuditEvent }) {
  const hasDetails = e.details !== null && typeof e.details === 'object' && Object.keys(e.details).length > 0;
  if (!hasDetails) return <>{e.rule}</>;
  return (
    <details>
      <summary>{e.rule}</summary>
      {/* biome-ignore lint/a11y/useAriaPropsSupportedByRole: the label names the block for readers that announce it; a <figure> wrapper would change the layout */}
      <pre class="details-json" aria-label={`Details of the ${e.action} at ${formatDateTime(e.at)}`}>
        {JSON.stringify(e.details, null, 2)}
      </pre>
    </details>
  );
}

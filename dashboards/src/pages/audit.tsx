// The audit log, for admins: newest first, within the last hour, day or week, searched by subject, each
// decision as a chip and its details expandable. Anyone else gets the API's refusal as an "admins only" state.
import { useQuery } from '@urql/preact';
import { useMemo, useState } from 'preact/hooks';
import { EmptyState, ErrorState, Loading } from '../components/states';
import { graphql, type ResultOf } from '../graphql';
import { formatDateTime, formatInteger, Time } from '../lib/format';
import { useDebounced } from '../lib/hooks';
import { useTitle } from '../lib/title';
import { navigate, useLocation, withQuery } from '../router';

const AUDIT_EVENTS = graphql(`
  query AuditEvents($since: DateTime, $limit: Int) {
    auditEvents(since: $since, limit: $limit) { id at identity { name } action decision subject rule details }
  }
`);

type AuditEvent = ResultOf<typeof AUDIT_EVENTS>['auditEvents'][number];

const windows = { hour: { label: 'Last hour', ms: 3_600_000 }, day: { label: 'Last day', ms: 86_400_000 }, week: { label: 'Last week', ms: 7 * 86_400_000 } } as const;
type WindowKey = keyof typeof windows;
/** The most the API returns at once: the subject search looks through these. */
const LIMIT = 1000;

const isForbidden = (error: unknown) => (error as { graphQLErrors?: { extensions?: { code?: unknown } }[] } | undefined)?.graphQLErrors?.some((e) => e.extensions?.code === 'FORBIDDEN') ?? false;

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
        <label>
          Time
          <select value={windowKey} onChange={(e) => navigate(withQuery({ window: e.currentTarget.value === 'day' ? null : e.currentTarget.value }))}>
            {(Object.keys(windows) as WindowKey[]).map((k) => (
              <option key={k} value={k}>
                {windows[k].label}
              </option>
            ))}
          </select>
        </label>
      </form>
      {result.error && !events ? (
        <ErrorState title="The audit log could not be loaded" error={result.error} retry={() => setRefreshed(Date.now())} />
      ) : !shown || !events ? (
        <Loading label="Loading the audit log…" />
      ) : shown.length === 0 ? (
        <EmptyState title={search ? `No subject matching “${subject.trim()}” in this window` : 'Nothing audited in this window'}>
          <p>Widen the time window{search ? ' or change the subject' : ''}.</p>
        </EmptyState>
      ) : (
        <>
          <p class="hint">
            {formatInteger(shown.length)} event{shown.length === 1 ? '' : 's'}, newest first
            {events.length === LIMIT ? `; only the newest ${formatInteger(LIMIT)} of this window are searched, so narrow it to look further back` : ''}.
          </p>
          <div class="table-wrap">
            <table aria-label="Audit events">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">Decision</th>
                  <th scope="col">Subject</th>
                  <th scope="col">Rule and details</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((e) => (
                  <AuditRow key={e.id} event={e} />
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

function AuditRow({ event: e }: { event: AuditEvent }) {
  const hasDetails = e.details !== null && typeof e.details === 'object' && Object.keys(e.details).length > 0;
  return (
    <tr data-action={e.action} data-decision={e.decision}>
      <td class="num">
        <Time iso={e.at} />
      </td>
      <td>{e.identity?.name ?? <span class="muted">system</span>}</td>
      <td>
        <code>{e.action}</code>
      </td>
      <td>
        <span class={`chip decision-${e.decision}`}>{e.decision}</span>
      </td>
      <th scope="row">
        <code>{e.subject}</code>
      </th>
      <td>
        {hasDetails ? (
          <details>
            <summary>{e.rule}</summary>
            <pre class="details-json" aria-label={`Details of the ${e.action} at ${formatDateTime(e.at)}`}>
              {JSON.stringify(e.details, null, 2)}
            </pre>
          </details>
        ) : (
          e.rule
        )}
      </td>
    </tr>
  );
}

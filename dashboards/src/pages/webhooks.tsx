// A team's webhooks (?team=NAME): URL, events, active, and the previous secret's overlap after a rotation; create
// (the secret shown once, with a copy button and a warning), rotate (keeping the old secret for some hours), pause,
// resume, delete, and one webhook's delivery log (?webhook=ID) with replay. The API lets only the team's writing
// members and admins read them; anyone else sees its answer.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage, refetch } from '../api/client';
import { EmptyState, FormError, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { Time } from '../lib/format';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link, navigate, useLocation, withQuery } from '../router';

const TEAMS = graphql(`query WebhookTeams { teams { id name } }`);

const WEBHOOKS = graphql(`
  query Webhooks($team: String!) {
    webhooks(team: $team) { id url description events active previousSecretExpiresAt createdAt createdBy { name } }
  }
`);

const DELIVERIES = graphql(`
  query WebhookDeliveries($webhookId: ID!) {
    webhookDeliveries(webhookId: $webhookId, first: 50) {
      edges { node { id eventId eventType subject status attempts createdAt deliveredAt nextAttemptAt lastStatusCode lastError } }
    }
  }
`);

const CREATE = graphql(`
  mutation CreateWebhook($team: String!, $url: String!, $events: [String!]!, $description: String) {
    createWebhook(team: $team, url: $url, events: $events, description: $description) { secret webhook { id url } }
  }
`);
const ROTATE = graphql(`
  mutation RotateWebhook($id: ID!, $keep: Int) { rotateWebhookSecret(id: $id, keepPreviousFor: $keep) { secret webhook { id url previousSecretExpiresAt } } }
`);
const UPDATE = graphql(`mutation SetWebhookActive($id: ID!, $active: Boolean!) { updateWebhook(id: $id, active: $active) { id active } }`);
const DELETE = graphql(`mutation DeleteWebhook($id: ID!) { deleteWebhook(id: $id) }`);
const REPLAY = graphql(`mutation ReplayDelivery($id: ID!) { replayWebhookDelivery(id: $id) { id status } }`);

interface Secret {
  url: string;
  secret: string;
  rotated: boolean;
}

export function WebhooksPage() {
  useTitle('Webhooks');
  const { query } = useLocation();
  const team = query.get('team') ?? '';
  const selected = query.get('webhook');
  const [teams, reexecuteTeams] = useQuery({ query: TEAMS });
  const [result, reexecute] = useQuery({ query: WEBHOOKS, variables: { team }, pause: !team, requestPolicy: 'cache-and-network' });
  const refresh = refetch(reexecute);
  const [secret, setSecret] = useState<Secret | null>(null);
  return (
    <section aria-labelledby="webhooks-title">
      <div class="page-header">
        <h1 id="webhooks-title">Webhooks</h1>
      </div>
      <div class="filters">
        <label>
          Team
          <select value={team} onChange={(e) => navigate(withQuery({ team: e.currentTarget.value, webhook: null }))}>
            <option value="">choose a team</option>
            {teams.data?.teams.map((t) => (
              <option key={t.id} value={t.name}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      {secret && <SecretCard secret={secret} onDismiss={() => setSecret(null)} />}
      {!team ? (
        // The teams to choose from: their error shown, and none at all said with how to make the first.
        <QueryState
          data={teams.data?.teams}
          error={teams.error}
          errorTitle="Could not load your teams"
          loading="Loading teams…"
          retry={refetch(reexecuteTeams)}
          empty={
            <EmptyState title="No teams yet">
              <p>
                Webhooks belong to a team. An admin creates one with <code>npx atelier team create NAME</code> and adds people with{' '}
                <code>npx atelier team add NAME USER</code>.
              </p>
            </EmptyState>
          }
        >
          {() => (
            <EmptyState title="Choose a team">
              <p>A team’s webhooks POST its events (docs/webhooks.md), signed with their secret, to a URL on the allow-list.</p>
            </EmptyState>
          )}
        </QueryState>
      ) : (
        <>
          <CreateForm
            team={team}
            onCreated={(s) => {
              setSecret(s);
              refresh();
            }}
          />
          <QueryState
            data={result.data?.webhooks}
            error={result.error}
            errorTitle={`The webhooks of ${team} could not be loaded`}
            retry={refresh}
            loading="Loading webhooks…"
            empty={<EmptyState title={`Team ${team} has no webhooks`} />}
          >
            {(hooks) => <WebhooksTable hooks={hooks} selected={selected} onSecret={setSecret} onChange={refresh} />}
          </QueryState>
          {selected && <DeliveriesCard key={selected} webhookId={selected} />}
        </>
      )}
    </section>
  );
}

function SecretCard({ secret, onDismiss }: { secret: Secret; onDismiss(): void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="card secret-card" role="alert" data-testid="webhook-secret">
      <h2 class="card-title">
        {secret.rotated ? 'New signing secret' : 'Signing secret'} for {secret.url}
      </h2>
      <p class="form-error">Store it now: it is shown this once and never again (rotate it to get a new one).</p>
      <p>
        <code data-testid="secret-value">{secret.secret}</code>{' '}
        <button
          type="button"
          class="button small"
          onClick={() =>
            navigator.clipboard?.writeText(secret.secret).then(
              () => setCopied(true),
              () => setCopied(false),
            )
          }
        >
          {copied ? 'Copied' : 'Copy'}
        </button>{' '}
        <button type="button" class="button subtle small" onClick={onDismiss}>
          I stored it
        </button>
      </p>
    </div>
  );
}

function CreateForm({ team, onCreated }: { team: string; onCreated(s: Secret): void }) {
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState('alert.*');
  const [description, setDescription] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [state, create] = useMutation(CREATE);
  return (
    <form
      class="filters"
      aria-label="Create a webhook"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        const list = events
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean);
        const r = await create({ team, url: url.trim(), events: list, description: description || null });
        if (r.error) setError(errorMessage(r.error));
        else if (r.data) {
          setUrl('');
          onCreated({ url: r.data.createWebhook.webhook.url, secret: r.data.createWebhook.secret, rotated: false });
        }
      }}
    >
      <label>
        URL
        <input type="url" required value={url} placeholder="https://…" onInput={(e) => setUrl(e.currentTarget.value)} />
      </label>
      <label>
        Events <span class="muted">(types, prefixes like alert.*, or *)</span>
        <input value={events} onInput={(e) => setEvents(e.currentTarget.value)} />
      </label>
      <label>
        Description
        <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <button type="submit" class="button primary" disabled={state.fetching}>
        Create webhook
      </button>
      <FormError message={error} />
    </form>
  );
}

type Hook = ResultOf<typeof WEBHOOKS>['webhooks'][number];

function WebhooksTable({
  hooks,
  selected,
  onSecret,
  onChange,
}: {
  hooks: readonly Hook[];
  selected: string | null;
  onSecret(s: Secret): void;
  onChange(): void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [keep, setKeep] = useState(24);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [, rotate] = useMutation(ROTATE);
  const [, update] = useMutation(UPDATE);
  const [, remove] = useMutation(DELETE);
  const act = async (action: () => Promise<{ error?: unknown }>) => {
    setError(null);
    const r = await action();
    if (r.error) setError(errorMessage(r.error));
    else onChange();
  };
  return (
    <div class="card">
      <h2 class="card-title">Webhooks</h2>
      <div class="filters">
        <label>
          Rotation keeps the previous secret for (hours)
          <input type="number" min={0} max={168} value={keep} onInput={(e) => setKeep(Number(e.currentTarget.value))} />
        </label>
      </div>
      <DataTable
        wrap={false}
        label="Webhooks"
        rows={hooks}
        rowKey={(h) => h.id}
        rowProps={(h) => ({ 'data-webhook': h.url, 'aria-current': h.id === selected ? 'true' : undefined })}
        columns={[
          {
            header: 'URL',
            rowHeader: true,
            cell: (h) => (
              <>
                <Link href={withQuery({ webhook: h.id })}>{h.url}</Link>
                {h.description && <div class="row-message">{h.description}</div>}
              </>
            ),
          },
          {
            header: 'Events',
            cell: (h) => (
              <span class="chips">
                {h.events.map((e) => (
                  <span class="chip tag" key={e}>
                    {e}
                  </span>
                ))}
              </span>
            ),
          },
          { header: 'Active', cell: (h) => (h.active ? <span class="chip ok">active</span> : <span class="chip warn">paused</span>) },
          {
            header: 'Previous secret',
            cell: (h) =>
              h.previousSecretExpiresAt ? (
                <span data-testid="overlap">
                  still signs until <Time iso={h.previousSecretExpiresAt} />
                </span>
              ) : (
                <span class="muted">none</span>
              ),
          },
          {
            header: 'Actions',
            hideHeader: true,
            cell: (h) => (
              <span class="chips">
                <button
                  type="button"
                  class="button small"
                  onClick={() =>
                    act(async () => {
                      const r = await rotate({ id: h.id, keep });
                      if (r.data) onSecret({ url: h.url, secret: r.data.rotateWebhookSecret.secret, rotated: true });
                      return r;
                    })
                  }
                >
                  Rotate secret
                </button>
                <button type="button" class="button small" onClick={() => act(() => update({ id: h.id, active: !h.active }))}>
                  {h.active ? 'Pause' : 'Resume'}
                </button>
                {deleting === h.id ? (
                  <button type="button" class="button danger small" onClick={() => act(() => remove({ id: h.id }))}>
                    Confirm delete
                  </button>
                ) : (
                  <button type="button" class="button subtle small" onClick={() => setDeleting(h.id)}>
                    Delete
                  </button>
                )}
              </span>
            ),
          },
        ]}
      />
      <FormError message={error} />
    </div>
  );
}

function DeliveriesCard({ webhookId }: { webhookId: string }) {
  const [result, reexecute] = useQuery({ query: DELIVERIES, variables: { webhookId }, requestPolicy: 'network-only' });
  const [error, setError] = useState<string | null>(null);
  const [, replay] = useMutation(REPLAY);
  const refresh = refetch(reexecute);
  return (
    <div class="card">
      <h2 class="card-title">Delivery log</h2>
      <QueryState
        data={result.data?.webhookDeliveries.edges.map((e) => e.node)}
        error={result.error}
        errorTitle="The delivery log could not be loaded"
        retry={refresh}
        loading="Loading deliveries…"
        empty={<p class="muted">Nothing sent yet.</p>}
      >
        {(deliveries) => (
          <DataTable
            wrap={false}
            label="Deliveries"
            rows={deliveries}
            rowKey={(d) => d.id}
            rowProps={(d) => ({ 'data-delivery': d.eventType, 'data-status': d.status })}
            columns={[
              { header: 'Event', rowHeader: true, cell: (d) => <code>{d.eventType}</code> },
              { header: 'Subject', cell: (d) => d.subject },
              {
                header: 'Status',
                cell: (d) => <span class={`chip ${d.status === 'SUCCEEDED' ? 'ok' : d.status === 'FAILED' ? 'warn' : ''}`}>{d.status.toLowerCase()}</span>,
              },
              { header: 'Attempts', class: 'num', cell: (d) => d.attempts },
              { header: 'Last answer', cell: (d) => d.lastError ?? d.lastStatusCode ?? '—' },
              { header: 'Created', cell: (d) => <Time iso={d.createdAt} /> },
              {
                header: 'Actions',
                hideHeader: true,
                cell: (d) => (
                  <button
                    type="button"
                    class="button subtle small"
                    onClick={async () => {
                      setError(null);
                      const r = await replay({ id: d.id });
                      if (r.error) setError(errorMessage(r.error));
                      else refresh();
                    }}
                  >
                    Replay
                  </button>
                ),
              },
            ]}
          />
        )}
      </QueryState>
      <FormError message={error} />
    </div>
  );
}

// A deployment's page: what it serves and its health, the traffic split, the rollout's progress (its steps with
// the current one marked, the dwell counting down, the gates and why it ended), the fallback, the revisions and
// the history, and the actions people take (promote, roll back, fail over, restore), each with a reason, disabled
// with why for whoever `viewerCan` refuses. Live through `deploymentChanged`.
import { useMutation, useSubscription } from '@urql/preact';
import type { ComponentChildren } from 'preact';
import { useEffect, useId, useState } from 'preact/hooks';
import { errorMessage, refetch } from '../api/client';
import { LiveDownBanner } from '../components/live-down';
import { DeniedReason, type Permission, PermittedButton } from '../components/permitted';
import { FormError, NotFoundState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { formatDuration, Time } from '../lib/format';
import { useNow } from '../lib/hooks';
import { useLiveDown } from '../lib/live-refresh';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { Link } from '../router';
import { Facts } from './alerts-common';
import { DEPLOYMENT, DEPLOYMENT_CHANGED, type DeploymentData, FAILOVER, PROMOTE, RESTORE, ROLLBACK } from './deployment-documents';
import { modelHref, ReadyChip, RolloutChip, TrafficBar } from './deployments-common';

export default function DeploymentPage({ name }: { name: string }) {
  useTitle(name);
  const [result, reexecute] = useQuery({ query: DEPLOYMENT, variables: { name }, requestPolicy: 'network-only' });
  const found = Boolean(result.data?.deployment);
  const [live] = useSubscription({ query: DEPLOYMENT_CHANGED, variables: { id: name }, pause: !found });
  const [latest, setLatest] = useState<DeploymentData | null>(null);
  useEffect(() => {
    if (live.data?.deploymentChanged) setLatest(live.data.deploymentChanged);
  }, [live.data]);
  const deployment = latest ?? result.data?.deployment;
  // graphql-ws subscribes again after a reconnect and the subscription starts with the deployment as it is then;
  // while the connection is down, the page asks for it every so often instead.
  const liveDown = useLiveDown(() => {
    setLatest(null);
    reexecute({ requestPolicy: 'network-only' });
  }, found);
  return (
    <>
      <LiveDownBanner live={liveDown} />
      <QueryState
        data={deployment === undefined ? undefined : deployment}
        error={result.error}
        errorTitle="This deployment could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading the deployment…"
        empty={<NotFoundState title={`No deployment named “${name}”`} href="/deployments" link="See all deployments" />}
      >
        {(d) => <DeploymentView d={d} onChange={setLatest} />}
      </QueryState>
    </>
  );
}

function DeploymentView({ d, onChange }: { d: DeploymentData; onChange(d: DeploymentData): void }) {
  const versions = new Map(d.revisions.map((r) => [r.number, r.modelVersion?.version ?? null]));
  const model = modelHref(d.model);
  return (
    <section aria-labelledby="deployment-title" data-deployment-detail={d.name}>
      <nav class="breadcrumbs" aria-label="Breadcrumbs">
        <Link href="/deployments">Deployments</Link> <span aria-hidden="true">/</span> <span>{d.name}</span>
      </nav>
      <div class="page-header">
        <h1 id="deployment-title">{d.name}</h1>
        <ReadyChip ready={d.ready} failedOver={d.failedOver} deleting={d.deleting} />
      </div>
      <Facts
        items={[
          ['Serves', model ? <Link href={model}>{d.model}</Link> : d.model],
          ['Domain', d.domain],
          ['Deployer', d.deployer],
          ['URL', d.url ? <code>{d.url}</code> : '—'],
          ['Fallback', `${d.fallback.kind.toLowerCase()}${d.fallback.revision ? `: revision ${d.fallback.revision}` : ' (none yet)'}`],
          ['Created', <Time iso={d.createdAt} />],
          ['By', d.createdBy?.name ?? '—'],
        ]}
      />
      {d.message && <p class="muted">{d.message}</p>}
      <div class="card">
        <h2 class="card-title">Traffic</h2>
        <TrafficBar traffic={d.traffic} versions={versions} />
      </div>
      <RolloutCard d={d} />
      <ActionsCard d={d} onChange={onChange} />
      <RevisionsCard d={d} />
      <div class="card">
        <h2 class="card-title">History</h2>
        <DataTable
          wrap={false}
          label="Deployment history"
          rows={d.events}
          rowKey={(e) => e.id}
          rowProps={(e) => ({ 'data-event': e.kind })}
          empty={<p class="muted">Nothing has happened yet.</p>}
          columns={[
            { header: 'When', cell: (e) => <Time iso={e.createdAt} /> },
            { header: 'What', rowHeader: true, cell: (e) => <span class="chip">{e.kind.toLowerCase().replace(/_/g, ' ')}</span> },
            { header: 'Revision', class: 'num', cell: (e) => e.revision ?? '—' },
            { header: 'Who', cell: (e) => e.actor?.name ?? <span class="muted">reconciler</span> },
            {
              header: 'Why',
              cell: (e) => (
                <>
                  {e.reason || <span class="muted">—</span>}
                  {eventDetail(e) && <div class="row-message">{eventDetail(e)}</div>}
                </>
              ),
            },
          ]}
        />
      </div>
    </section>
  );
}

/** A split as events keep it: `{ "1": 90, "2": 10 }` (revision → percent). */
const splitText = (split: unknown) =>
  split && typeof split === 'object'
    ? Object.entries(split as Record<string, number>)
        .filter(([, percent]) => percent > 0)
        .map(([revision, percent]) => `r${revision} ${percent} %`)
        .join(', ')
    : '';

/** What an event's details add to its reason: the step reached, where traffic went, the split before a failover. */
function eventDetail(e: DeploymentData['events'][number]): string {
  const d = (e.details ?? {}) as Record<string, unknown>;
  if (e.kind === 'STEP' && typeof d.percent === 'number') return `step ${Number(d.step) + 1}: ${d.percent} % to the new revision`;
  if (e.kind === 'ROLLED_BACK' && d.to != null) return `back to revision ${String(d.to)}`;
  if (e.kind === 'FAILED_OVER' && splitText(d.splitBefore)) return `split before: ${splitText(d.splitBefore)}`;
  if (e.kind === 'RESTORED' && splitText(d.split)) return `split restored: ${splitText(d.split)}`;
  if (e.kind === 'CREATED' && d.version != null) return `first version ${String(d.version)}`;
  return '';
}

function RolloutCard({ d }: { d: DeploymentData }) {
  const rollout = d.rollout;
  const running = rollout?.state === 'RUNNING';
  const now = useNow(1000, running && Boolean(rollout?.nextDecisionAt));
  const steps = rollout?.steps.length ? rollout.steps : d.rolloutPolicy.steps;
  const gates = d.rolloutPolicy.gates;
  return (
    <div class="card" data-rollout={rollout?.state ?? 'NONE'}>
      <h2 class="card-title">
        Rollout <RolloutChip rollout={rollout} />
      </h2>
      {rollout ? (
        <p>
          Revision {rollout.revision}
          {rollout.from ? ` taking traffic from revision ${rollout.from}` : ''}, now at {rollout.percent} %, started <Time iso={rollout.startedAt} />.
          {running && rollout.nextDecisionAt && (
            <>
              {' '}
              The gates decide in <strong data-countdown="true">{formatDuration(Math.max(0, Date.parse(rollout.nextDecisionAt) - now))}</strong>.
            </>
          )}
        </p>
      ) : (
        <p class="muted">No rollout yet.</p>
      )}
      {rollout && d.failedOver && <p data-rollout-held="true">Failed over: the fallback takes all traffic until it is restored; this rollout waits.</p>}
      {rollout?.reason && (
        <p data-rollout-reason="true">
          <strong>Why:</strong> {rollout.reason}
        </p>
      )}
      {steps.length > 0 ? (
        <ol class="rollout-steps" aria-label="Rollout steps">
          {steps.map((s, i) => {
            const current = rollout?.step === i && (rollout.state === 'RUNNING' || rollout.state === 'PAUSED');
            const done = rollout ? rollout.step > i || rollout.state === 'COMPLETE' : false;
            return (
              <li key={i} class={current ? 'current' : done ? 'done' : ''} aria-current={current ? 'step' : undefined} data-step={i}>
                {s.percent} %{s.dwellSeconds && i < steps.length - 1 ? `, hold ${formatDuration(s.dwellSeconds * 1000)}` : ''}
              </li>
            );
          })}
        </ol>
      ) : (
        <p class="muted">All traffic at once when the new revision is ready.</p>
      )}
      <p class="muted">
        {gates.length === 0
          ? 'No gates: each step passes after its hold.'
          : `Gates on the new revision: ${gates
              .map(
                (g) =>
                  `${g.metric} ${g.rule.kind.toLowerCase()}${g.rule.above != null ? ` above ${g.rule.above}` : ''}${g.rule.below != null ? ` below ${g.rule.below}` : ''}${g.rule.maxDrop != null ? ` drop over ${g.rule.maxDrop}` : ''}`,
              )
              .join('; ')}. A breach rolls back and opens an alert.`}
      </p>
      {rollout && rollout.gates.length > 0 && (
        <ul class="gate-verdicts" aria-label="Last gate verdicts">
          {rollout.gates.map((g) => (
            <li key={`${g.metric}-${g.rule}`} data-gate={g.metric} data-status={g.status}>
              <strong>{g.metric}</strong> at step {g.step + 1}: {g.status === 'NO_DATA' ? 'no observations' : g.status.toLowerCase()}
              {g.value != null && `, ${g.value}`}
              {g.baseline != null && ` against ${g.baseline}`}
              {g.message && ` (${g.message})`}, <Time iso={g.measuredAt} />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** 0.0123 → "1.2 %"; 0 → "0 %". */
const formatShare = (x: number) => `${x === 0 ? 0 : x < 0.001 ? '<0.1' : (x * 100).toFixed(1)} %`;

function RevisionsCard({ d }: { d: DeploymentData }) {
  const model = d.registeredModel.fullName;
  // A failover leaves the revisions' states as they were: the fallback (often a retired revision) takes the traffic and
  // the one serving before takes none until Restore. Their chips say so, or the table contradicts the split above it.
  const share = new Map(d.traffic.map((t) => [t.revision, t.percent]));
  const held = (r: { number: number; state: string }) => d.failedOver && r.state === 'SERVING' && !share.get(r.number);
  const [ns, name] = model.split('/');
  return (
    <div class="card">
      <h2 class="card-title">Revisions</h2>
      <DataTable
        wrap={false}
        label="Revisions"
        rows={[...d.revisions].reverse()}
        rowKey={(r) => String(r.number)}
        rowProps={(r) => ({ 'data-revision': r.number, 'data-state': r.state })}
        columns={[
          { header: 'Revision', rowHeader: true, class: 'num', cell: (r) => r.number },
          {
            header: 'Model version',
            cell: (r) =>
              r.modelVersion ? (
                <Link href={`/models/${encodeURIComponent(ns!)}/${encodeURIComponent(name!)}?version=${r.modelVersion.version}`}>
                  {model}/{r.modelVersion.version}
                </Link>
              ) : (
                '—'
              ),
          },
          {
            header: 'State',
            cell: (r) => (
              <span class="chips">
                <span
                  class={`chip ${held(r) ? 'warn' : r.state === 'SERVING' ? 'ok' : r.state === 'FAILED' || r.state === 'REFUSED' || r.state === 'ROLLED_BACK' ? 'warn' : ''}`}
                >
                  {held(r) ? 'held: failed over' : r.state.toLowerCase().replace(/_/g, ' ')}
                </span>
                {d.failedOver && Boolean(share.get(r.number)) && (
                  <span class="chip warn" data-fallback="true">
                    fallback: {share.get(r.number)} % of traffic
                  </span>
                )}
                {r.baseline && <span class="chip tag">baseline</span>}
              </span>
            ),
          },
          { header: 'Health', cell: (r) => (r.health ? r.health.toLowerCase() : '—') },
          {
            header: 'Traffic (last window)',
            cell: (r) =>
              r.serving ? (
                <span data-serving title={`measured by the router, window ending ${new Date(r.serving.at).toLocaleString()}`}>
                  {r.serving.requests} req · <span class={r.serving.errorRate > 0 ? 'error-text' : ''}>{formatShare(r.serving.errorRate)} errors</span> · p50{' '}
                  {r.serving.latencyP50Ms} ms · p99 {r.serving.latencyP99Ms} ms
                </span>
              ) : (
                <span class="muted">—</span>
              ),
          },
          { header: 'Restarts', class: 'num', cell: (r) => r.restarts },
          { header: 'Message', cell: (r) => (r.message ? <div class="row-message">{r.message}</div> : <span class="muted">—</span>) },
          { header: 'Created', cell: (r) => <Time iso={r.createdAt} /> },
        ]}
      />
    </div>
  );
}

/** Why a button is disabled: DeploymentViewerCan answers yes or no, so the reason is the documented rule. */
function permission(allowed: boolean, d: DeploymentData): Permission {
  const ns = d.registeredModel.fullName.split('/')[0];
  return {
    allowed,
    reason: allowed
      ? null
      : `Only members of the team owning "${ns}" (not viewers) holding the grant of domain "${d.domain}", and admins, may change this deployment.`,
  };
}

function ActionsCard({ d, onChange }: { d: DeploymentData; onChange(d: DeploymentData): void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [, promote] = useMutation(PROMOTE);
  const [, rollback] = useMutation(ROLLBACK);
  const [, failover] = useMutation(FAILOVER);
  const [, restore] = useMutation(RESTORE);
  const manage = permission(d.viewerCan.manage, d);
  const failoverPermission = permission(d.viewerCan.failover, d);
  const run = async (action: () => Promise<{ error?: unknown; data?: Record<string, DeploymentData> | null }>) => {
    setError(null);
    setBusy(true);
    const r = await action();
    setBusy(false);
    const next = r.data && Object.values(r.data)[0];
    if (r.error || !next) setError(errorMessage(r.error));
    else {
      setReason('');
      onChange(next);
    }
  };
  const why = reason.trim() || null;
  // refused everything (a viewer): the reason once, under buttons that point to it
  const reasonId = useId();
  const deniedId = !manage.allowed && !failoverPermission.allowed ? reasonId : null;
  const rolling = d.rollout?.state === 'RUNNING' || d.rollout?.state === 'PAUSED';
  return (
    <form class="card deployment-actions" aria-label="Act on this deployment" onSubmit={(e) => e.preventDefault()}>
      <h2 class="card-title">Actions</h2>
      {(manage.allowed || failoverPermission.allowed) && (
        <label class="wide">
          Reason <span class="muted">(kept in the history and the audit log; required to fail over)</span>
          <textarea rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
      )}
      <div class="chips">
        {rolling && (
          <Act denied={deniedId} permission={manage} class="button primary small" disabled={busy} onClick={() => run(() => promote({ id: d.id, reason: why }))}>
            Promote
          </Act>
        )}
        <Act denied={deniedId} permission={manage} class="button small" disabled={busy} onClick={() => run(() => rollback({ id: d.id, reason: why }))}>
          Roll back
        </Act>
        {d.failedOver ? (
          <Act
            denied={deniedId}
            permission={failoverPermission}
            class="button small"
            disabled={busy}
            onClick={() => run(() => restore({ id: d.id, reason: why }))}
          >
            Restore
          </Act>
        ) : (
          <Act
            denied={deniedId}
            permission={failoverPermission}
            class="button danger small"
            disabled={busy}
            onClick={() => run(() => failover({ id: d.id, reason: reason.trim() }))}
          >
            Fail over
          </Act>
        )}
      </div>
      {deniedId && <DeniedReason permission={manage} id={reasonId} />}
      <FormError message={error} />
    </form>
  );
}

/** A PermittedButton, or, when every action is refused (`denied`: the id of the one reason shown), a disabled button described by it. */
function Act({
  denied,
  permission,
  children,
  ...button
}: {
  denied: string | null;
  permission: Permission;
  class: string;
  disabled: boolean;
  onClick(): void;
  children: ComponentChildren;
}) {
  if (!denied)
    return (
      <PermittedButton permission={permission} {...button}>
        {children}
      </PermittedButton>
    );
  return (
    <button type="button" class={button.class} disabled aria-describedby={denied} title={permission.reason ?? undefined}>
      {children}
    </button>
  );
}

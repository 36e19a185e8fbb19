// Pieces the deployments list, a deployment's page and the model page share: the list's fields, the traffic split
// as a bar, readiness and rollout chips, the table of deployments, and following a list live as its deployments move.
import { DataTable } from '../components/table';
import { graphql, type ResultOf } from '../graphql';
import { type LiveDown, useLiveRefresh } from '../lib/live-refresh';
import { Link } from '../router';

/** The fields of a deployment's row, wherever deployments are listed. */
export const DEPLOYMENT_ROW = graphql(`
  fragment DeploymentRow on Deployment {
    id name model domain deployer ready message failedOver deleting
    traffic { revision percent }
    rollout { state percent revision step }
    revisions { number modelVersion { version } }
  }
`);

export type DeploymentRowData = ResultOf<typeof DEPLOYMENT_ROW>;

export const deploymentHref = (name: string) => `/deployments/${encodeURIComponent(name)}`;

/** `ns/model` of `ns/model@alias` or `ns/model/3`, for the link to the model's page. */
export function modelHref(model: string): string | null {
  const [ns, rest] = model.split('/');
  if (!ns || !rest) return null;
  return `/models/${encodeURIComponent(ns)}/${encodeURIComponent(rest.split('@')[0]!)}`;
}

const SHADES = ['#2563eb', '#16a34a', '#d97706', '#7c3aed', '#db2777'];

/**
 * The split in force as one bar, a segment per revision (its number and share, as text too); `versions` names each
 * revision's model version.
 */
export function TrafficBar({ traffic, versions }: { traffic: readonly { revision: number; percent: number }[]; versions?: Map<number, number | null> }) {
  const shown = traffic.filter((t) => t.percent > 0).sort((a, b) => a.revision - b.revision);
  if (shown.length === 0) return <span class="muted">no traffic</span>;
  const text = shown.map((t) => `revision ${t.revision}${versions?.get(t.revision) ? ` (v${versions.get(t.revision)})` : ''}: ${t.percent} %`).join(', ');
  return (
    <div class="traffic" role="img" aria-label={`Traffic: ${text}`} title={text} data-traffic={shown.map((t) => `${t.revision}:${t.percent}`).join(',')}>
      {shown.map((t) => (
        <span key={t.revision} class="traffic-part" style={{ flexGrow: t.percent, background: SHADES[t.revision % SHADES.length] }}>
          r{t.revision} {t.percent}%
        </span>
      ))}
    </div>
  );
}

export function ReadyChip({ ready, failedOver, deleting = false }: { ready: boolean; failedOver: boolean; deleting?: boolean }) {
  return (
    <span class="chips">
      {deleting && (
        <span class="chip warn" data-deleting="true">
          deleting
        </span>
      )}
      <span class={`chip ${ready ? 'ok' : 'warn'}`} data-ready={String(ready)}>
        {ready ? 'ready' : 'not ready'}
      </span>
      {failedOver && (
        <span class="chip warn" data-failed-over="true">
          failed over
        </span>
      )}
    </span>
  );
}

const rolloutClass: Record<string, string> = { RUNNING: 'tag', PAUSED: 'warn', COMPLETE: 'ok', ROLLED_BACK: 'warn' };

export function RolloutChip({ rollout }: { rollout: { state: string; percent: number; revision: number } | null | undefined }) {
  if (!rollout) return <span class="muted">—</span>;
  return (
    <span class={`chip ${rolloutClass[rollout.state] ?? ''}`} data-rollout-state={rollout.state}>
      {rollout.state.toLowerCase().replace('_', ' ')}
      {rollout.state === 'RUNNING' || rollout.state === 'PAUSED' ? ` r${rollout.revision} at ${rollout.percent}%` : ''}
    </span>
  );
}

export const revisionVersions = (d: DeploymentRowData) => new Map(d.revisions.map((r) => [r.number, r.modelVersion?.version ?? null]));

/** Deployments as a table: name (linked), what it serves, where and how, its split and rollout. */
export function DeploymentsTable({ rows, label, wrap }: { rows: readonly DeploymentRowData[]; label: string; wrap?: boolean }) {
  return (
    <DataTable
      wrap={wrap}
      label={label}
      rows={rows}
      rowKey={(d) => d.id}
      rowHref={(d) => deploymentHref(d.name)}
      rowProps={(d) => ({ 'data-deployment': d.name })}
      empty={<p class="muted">No deployments.</p>}
      columns={[
        { header: 'Name', rowHeader: true, cell: (d) => <Link href={deploymentHref(d.name)}>{d.name}</Link> },
        {
          header: 'Serves',
          cell: (d) => {
            const href = modelHref(d.model);
            return href ? <Link href={href}>{d.model}</Link> : d.model;
          },
        },
        { header: 'Domain', cell: (d) => d.domain },
        { header: 'Deployer', cell: (d) => d.deployer },
        { header: 'Health', cell: (d) => <ReadyChip ready={d.ready} failedOver={d.failedOver} /> },
        { header: 'Traffic', cell: (d) => <TrafficBar traffic={d.traffic} versions={revisionVersions(d)} /> },
        { header: 'Rollout', cell: (d) => <RolloutChip rollout={d.rollout} /> },
      ]}
    />
  );
}

const DEPLOYMENTS_CHANGED = graphql(`
  subscription DeploymentsLive($model: String) {
    deploymentsChanged(model: $model) { kind id }
  }
`);

/**
 * Asks for a list of deployments (of one model, when given) again whenever one the caller may read is created,
 * changes or is deleted (`deploymentsChanged`: a failover, a monitor's rollback, another person's promotion, the
 * deployer's state), and after a reconnect; nothing polls while live updates are up (lib/live-refresh.ts).
 */
export function useFollowDeployments(reexecute: (opts: { requestPolicy: 'network-only' }) => void, model?: string): LiveDown {
  return useLiveRefresh(DEPLOYMENTS_CHANGED, { model: model ?? null }, () => reexecute({ requestPolicy: 'network-only' }), [model]);
}

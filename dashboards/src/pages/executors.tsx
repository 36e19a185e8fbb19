// Executors: pools with their health and queue, the hosts that heartbeat (capacity, running, GPUs, draining, last
// heard from) and the hot clusters they keep warm. Live: the page reads them again whenever `executorsChanged` says
// a host or a hot cluster changed (a host announced, its load changed, it drains or went silent), and nothing polls
// meanwhile.

import { refetch } from '../api/client';
import { LiveDownBanner } from '../components/live-down';
import { EmptyState, QueryState } from '../components/states';
import { DataTable } from '../components/table';
import { graphql } from '../graphql';
import { formatAgo, formatDateTime, formatDuration } from '../lib/format';
import { useNow } from '../lib/hooks';
import { useLiveRefresh } from '../lib/live-refresh';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { EXECUTORS_CHANGED } from './executor-documents';

const EXECUTORS = graphql(`
  query Executors {
    executorPools { name health capacity running queued gpus lastSeenAt hosts { id name } }
    executorHosts { id name live draining capacity running gpus executors pools hotClusters version startedAt lastSeenAt }
    hotClusters { id name executor pool state message idleTimeoutMs lastUsedAt createdAt }
  }
`);

const healthLabel: Record<string, string> = { HEALTHY: 'Healthy', STALE: 'Stale', NO_HOSTS: 'No hosts' };
const healthHint: Record<string, string> = {
  HEALTHY: 'at least one live host serves it',
  STALE: 'hosts served it, but none has sent a heartbeat recently: its tasks wait',
  NO_HOSTS: 'tasks are queued for it, but no host has ever announced it',
};
const clusterLabel: Record<string, string> = { READY: 'Ready', STARTING: 'Starting', ENDED: 'Ended' };

export function ExecutorsPage() {
  useTitle('Executors');
  const [result, reexecute] = useQuery({ query: EXECUTORS });
  const now = useNow(1000);
  const live = useLiveRefresh(EXECUTORS_CHANGED, {}, () => reexecute({ requestPolicy: 'network-only' }), []);
  const data = result.data;
  return (
    <section aria-labelledby="executors-title">
      <div class="page-header">
        <h1 id="executors-title">Executors</h1>
        <span class="muted">Updates live</span>
      </div>
      <LiveDownBanner live={live} />
      {result.error && data && (
        <p class="banner warn" role="alert">
          Could not refresh: {result.error.message.replace(/^\[\w+\]\s*/, '')}. Showing what was last loaded.
        </p>
      )}
      <QueryState data={data} error={result.error} errorTitle="Executors could not be loaded" retry={refetch(reexecute)} loading="Loading executors…">
        {(data) => (
          <>
            <div class="card">
              <h2 class="card-title">Pools</h2>
              <DataTable
                label="Pools"
                rows={data.executorPools}
                rowKey={(p) => p.name}
                rowProps={(p) => ({ 'data-pool': p.name })}
                empty={
                  <p class="muted">
                    No pool yet: hosts announce theirs when they start (<code>npx atelier executor --pools NAME</code>).
                  </p>
                }
                columns={[
                  { header: 'Pool', cell: (p) => <strong>{p.name}</strong> },
                  {
                    header: 'Health',
                    cell: (p) => (
                      <span class={`chip health-${p.health}`} data-health={p.health} title={healthHint[p.health]}>
                        {healthLabel[p.health] ?? p.health}
                      </span>
                    ),
                  },
                  { header: 'Live hosts', cell: (p) => (p.hosts.length ? p.hosts.map((h) => h.name).join(', ') : <span class="muted">none</span>) },
                  {
                    header: 'Running / capacity',
                    class: 'num',
                    cell: (p) => (
                      <>
                        {p.running} / {p.capacity}
                      </>
                    ),
                  },
                  { header: 'Waiting tasks', class: 'num', cell: (p) => p.queued },
                  { header: 'GPUs', class: 'num', cell: (p) => p.gpus },
                  {
                    header: 'Last heartbeat',
                    cellProps: (p) => ({ title: formatDateTime(p.lastSeenAt) }),
                    cell: (p) => (p.lastSeenAt ? formatAgo(p.lastSeenAt, now) : '—'),
                  },
                ]}
              />
            </div>

            <div class="card">
              <h2 class="card-title">
                Hosts <span class="muted">{data.executorHosts.filter((h) => h.live).length} live, heard from in the last day</span>
              </h2>
              <DataTable
                label="Hosts"
                rows={data.executorHosts}
                rowKey={(h) => h.id}
                rowProps={(h) => ({ 'data-host': h.name })}
                empty={
                  <p class="muted">
                    No executor host has sent a heartbeat in the last day. Start one with <code>npx atelier executor</code>.
                  </p>
                }
                columns={[
                  {
                    header: 'Host',
                    cell: (h) => (
                      <>
                        <strong>{h.name}</strong>
                        <div class="row-message">
                          v{h.version} · up since {formatDateTime(h.startedAt)}
                        </div>
                      </>
                    ),
                  },
                  {
                    header: 'State',
                    cell: (h) => (
                      <span class={`chip ${h.live && !h.draining ? 'ok' : 'warn'}`} data-host-state={!h.live ? 'stale' : h.draining ? 'draining' : 'live'}>
                        {!h.live ? 'Not heard from' : h.draining ? 'Draining' : 'Live'}
                      </span>
                    ),
                  },
                  {
                    header: 'Running / capacity',
                    class: 'num',
                    cell: (h) => (
                      <>
                        <meter min={0} max={Math.max(1, h.capacity)} value={h.running} aria-label={`Slots in use on ${h.name}`} /> {h.running} / {h.capacity}
                      </>
                    ),
                  },
                  { header: 'GPUs', class: 'num', cell: (h) => h.gpus },
                  { header: 'Pools', cell: (h) => h.pools.join(', ') || '—' },
                  { header: 'Executors', cell: (h) => h.executors.join(', ') || '—' },
                  { header: 'Hot clusters', cell: (h) => h.hotClusters.join(', ') || <span class="muted">none</span> },
                  { header: 'Last heartbeat', cellProps: (h) => ({ title: formatDateTime(h.lastSeenAt) }), cell: (h) => formatAgo(h.lastSeenAt, now) },
                ]}
              />
            </div>

            <div class="card">
              <h2 class="card-title">Hot clusters</h2>
              <DataTable
                label="Hot clusters"
                rows={data.hotClusters}
                rowKey={(c) => c.id}
                rowProps={(c) => ({ 'data-cluster': c.name })}
                empty={
                  <EmptyState title="No hot clusters">
                    <p>
                      Keep compute warm for tasks with <code>npx atelier cluster create NAME --executor local</code>; tasks asking for it skip provisioning.
                    </p>
                  </EmptyState>
                }
                columns={[
                  {
                    header: 'Cluster',
                    cell: (c) => (
                      <>
                        <strong>{c.name}</strong>
                        {c.message && <div class="row-message">{c.message}</div>}
                      </>
                    ),
                  },
                  {
                    header: 'State',
                    cell: (c) => (
                      <span class={`chip cluster-${c.state}`} data-state={c.state}>
                        {clusterLabel[c.state] ?? c.state}
                      </span>
                    ),
                  },
                  { header: 'Executor', cell: (c) => c.executor },
                  { header: 'Pool', cell: (c) => c.pool },
                  { header: 'Idle timeout', class: 'num', cell: (c) => formatDuration(c.idleTimeoutMs) },
                  {
                    header: 'Last used',
                    cellProps: (c) => ({ title: formatDateTime(c.lastUsedAt) }),
                    cell: (c) => (c.lastUsedAt ? formatAgo(c.lastUsedAt, now) : 'not yet'),
                  },
                ]}
              />
            </div>
          </>
        )}
      </QueryState>
    </section>
  );
}

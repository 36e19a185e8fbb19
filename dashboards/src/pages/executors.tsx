// Executors: pools with their health and queue, the hosts that heartbeat (capacity, running, GPUs, last heard
// from) and the hot clusters they keep warm. The API has no subscription for heartbeats, so the page asks again
// every few seconds while it is open.
import { useQuery } from '@urql/preact';
import { useEffect } from 'preact/hooks';
import { EmptyState, ErrorState, Loading } from '../components/states';
import { graphql } from '../graphql';
import { formatAgo, formatDateTime, formatDuration } from '../lib/format';
import { useNow } from '../lib/hooks';
import { useTitle } from '../lib/title';

const EXECUTORS = graphql(`
  query Executors {
    executorPools { name health capacity running queued gpus lastSeenAt hosts { id name } }
    executorHosts { id name live capacity running gpus executors pools hotClusters version startedAt lastSeenAt }
    hotClusters { id name executor pool state message idleTimeoutMs lastUsedAt createdAt }
  }
`);

export const EXECUTORS_REFRESH_MS = 3000;

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
  useEffect(() => {
    const timer = setInterval(() => reexecute({ requestPolicy: 'network-only' }), EXECUTORS_REFRESH_MS);
    return () => clearInterval(timer);
  }, [reexecute]);
  const data = result.data;
  return (
    <section aria-labelledby="executors-title">
      <div class="page-header">
        <h1 id="executors-title">Executors</h1>
        <span class="muted">Refreshed every {EXECUTORS_REFRESH_MS / 1000} s</span>
      </div>
      {result.error && (
        data ? (
          <p class="banner warn" role="alert">
            Could not refresh: {result.error.message.replace(/^\[\w+\]\s*/, '')}. Showing what was last loaded.
          </p>
        ) : (
          <ErrorState title="Executors could not be loaded" error={result.error} retry={() => reexecute({ requestPolicy: 'network-only' })} />
        )
      )}
      {!data ? (
        !result.error && <Loading label="Loading executors…" />
      ) : (
        <>
          <div class="card">
            <h2 class="card-title">Pools</h2>
            {data.executorPools.length === 0 ? (
              <p class="muted">No pool yet: hosts announce theirs when they start (<code>npx atelier executor --pools NAME</code>).</p>
            ) : (
              <div class="table-wrap">
                <table aria-label="Pools">
                  <thead>
                    <tr>
                      <th scope="col">Pool</th>
                      <th scope="col">Health</th>
                      <th scope="col">Live hosts</th>
                      <th scope="col">Running / capacity</th>
                      <th scope="col">Waiting tasks</th>
                      <th scope="col">GPUs</th>
                      <th scope="col">Last heartbeat</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.executorPools.map((p) => (
                      <tr key={p.name} data-pool={p.name}>
                        <td>
                          <strong>{p.name}</strong>
                        </td>
                        <td>
                          <span class={`chip health-${p.health}`} data-health={p.health} title={healthHint[p.health]}>
                            {healthLabel[p.health] ?? p.health}
                          </span>
                        </td>
                        <td>{p.hosts.length ? p.hosts.map((h) => h.name).join(', ') : <span class="muted">none</span>}</td>
                        <td class="num">
                          {p.running} / {p.capacity}
                        </td>
                        <td class="num">{p.queued}</td>
                        <td class="num">{p.gpus}</td>
                        <td title={formatDateTime(p.lastSeenAt)}>{p.lastSeenAt ? formatAgo(p.lastSeenAt, now) : '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>

          <div class="card">
            <h2 class="card-title">
              Hosts <span class="muted">{data.executorHosts.filter((h) => h.live).length} live, heard from in the last day</span>
            </h2>
            {data.executorHosts.length === 0 ? (
              <p class="muted">
                No executor host has sent a heartbeat in the last day. Start one with <code>npx atelier executor</code>.
              </p>
            ) : (
              <div class="table-wrap">
                <table aria-label="Hosts">
                  <thead>
                    <tr>
                      <th scope="col">Host</th>
                      <th scope="col">State</th>
                      <th scope="col">Running / capacity</th>
                      <th scope="col">GPUs</th>
                      <th scope="col">Pools</th>
                      <th scope="col">Executors</th>
                      <th scope="col">Hot clusters</th>
                      <th scope="col">Last heartbeat</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.executorHosts.map((h) => (
                      <tr key={h.id} data-host={h.name}>
                        <td>
                          <strong>{h.name}</strong>
                          <div class="row-message">
                            v{h.version} · up since {formatDateTime(h.startedAt)}
                          </div>
                        </td>
                        <td>
                          <span class={`chip ${h.live ? 'ok' : 'warn'}`}>{h.live ? 'Live' : 'Not heard from'}</span>
                        </td>
                        <td class="num">
                          <meter min={0} max={Math.max(1, h.capacity)} value={h.running} aria-label={`Slots in use on ${h.name}`} /> {h.running} / {h.capacity}
                        </td>
                        <td class="num">{h.gpus}</td>
                        <td>{h.pools.join(', ') || '—'}</td>
                        <td>{h.executors.join(', ') || '—'}</td>
                        <td>{h.hotClusters.join(', ') || <span class="muted">none</span>}</td>
                        <td title={formatDateTime(h.lastSeenAt)}>{formatAgo(h.lastSeenAt, now)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>

          <div class="card">
            <h2 class="card-title">Hot clusters</h2>
            {data.hotClusters.length === 0 ? (
              <EmptyState title="No hot clusters">
                <p>
                  Keep compute warm for tasks with <code>npx atelier cluster create NAME --executor local</code>; tasks asking for it skip provisioning.
                </p>
              </EmptyState>
            ) : (
              <div class="table-wrap">
                <table aria-label="Hot clusters">
                  <thead>
                    <tr>
                      <th scope="col">Cluster</th>
                      <th scope="col">State</th>
                      <th scope="col">Executor</th>
                      <th scope="col">Pool</th>
                      <th scope="col">Idle timeout</th>
                      <th scope="col">Last used</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.hotClusters.map((c) => (
                      <tr key={c.id} data-cluster={c.name}>
                        <td>
                          <strong>{c.name}</strong>
                          {c.message && <div class="row-message">{c.message}</div>}
                        </td>
                        <td>
                          <span class={`chip cluster-${c.state}`} data-state={c.state}>
                            {clusterLabel[c.state] ?? c.state}
                          </span>
                        </td>
                        <td>{c.executor}</td>
                        <td>{c.pool}</td>
                        <td class="num">{formatDuration(c.idleTimeoutMs)}</td>
                        <td title={formatDateTime(c.lastUsedAt)}>{c.lastUsedAt ? formatAgo(c.lastUsedAt, now) : 'not yet'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        </>
      )}
    </section>
  );
}

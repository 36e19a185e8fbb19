// Executor hosts and hot clusters, live: `executorsChanged` says which hosts and hot clusters changed, as the control
// plane learns it (server/compute/host-changes.ts): a host announced, its capacity, load, pools or hot clusters
// changed, it started draining or went silent; a hot cluster created, warm or ended; tasks entered or left the pools'
// queues (at most once a second). It carries names only: the
// page reads `executorHosts`, `executorPools` and `hotClusters` again, with the same access rule.
import { forbidden } from '../../server/errors';
import { pushStream } from '../../server/events/live-changes';
import { builder } from '../builder';
import { liveStream, watchAccess } from '../live-access';

interface ExecutorsChange {
  listening: boolean;
  hostIds: string[];
  hotClusters: string[];
  pools: boolean;
  at: Date;
}

const ChangeRef = builder.objectRef<ExecutorsChange>('ExecutorsChange').implement({
  description: 'Executor hosts or hot clusters changed: read them again.',
  fields: (t) => ({
    listening: t.exposeBoolean('listening', {
      description: 'The first event: from it on, no change is missed. Read the hosts after it (and again after a reconnect).',
    }),
    hostIds: t.exposeIDList('hostIds', { description: 'The hosts (ExecutorHost.id) that changed.' }),
    hotClusters: t.exposeStringList('hotClusters', { description: 'The hot clusters (by name) that changed.' }),
    pools: t.exposeBoolean('pools', { description: 'Tasks entered or left the pools’ queues (`ExecutorPool.queued`); said at most once a second.' }),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

const ofKind = (keys: Set<string>, prefix: string) => [...keys].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));

/**
 * One event object per batch, whoever asks: every listener is handed the same batch (live-changes.ts), so every
 * subscriber yields the same object and its execution is shared by all who share a document and access
 * (server/http/shared-results.ts), instead of each running it.
 */
const eventOfBatch = new WeakMap<Set<string>, ExecutorsChange>();
function changeOf(keys: Set<string>): ExecutorsChange {
  let change = eventOfBatch.get(keys);
  if (!change)
    eventOfBatch.set(
      keys,
      (change = { listening: false, hostIds: ofKind(keys, 'host:'), hotClusters: ofKind(keys, 'cluster:'), pools: keys.has('pools'), at: new Date() }),
    );
  return change;
}

builder.subscriptionField('executorsChanged', (t) =>
  t.field({
    type: ChangeRef,
    description:
      'Live changes of executor hosts and hot clusters, coalesced (a host beating with nothing new is no change): first `listening`, then one event per batch of changes. Ends with UNAUTHENTICATED or FORBIDDEN if your access is revoked meanwhile.',
    authScopes: { can: ['read', 'ExecutorHost'] },
    subscribe: (_r, _a, ctx) =>
      liveStream<ExecutorsChange>(ctx, async function* (live) {
        const watch = watchAccess(ctx, live);
        const { push, iterator } = pushStream<Set<string>>(live.signal);
        const unlisten = ctx.services.liveChanges.listen('executors', push);
        live.signal.addEventListener('abort', unlisten, { once: true });
        yield { listening: true, hostIds: [], hotClusters: [], pools: false, at: new Date() };
        for await (const keys of iterator) {
          if (!watch.ability().can('read', 'ExecutorHost'))
            throw forbidden('Your access to executor hosts was revoked (a grant or your role changed), so this subscription has ended.');
          yield changeOf(keys);
        }
        watch.assertStillValid();
      }),
    resolve: (c) => c,
  }),
);

// The registry's live events: `registryEvents(model)` streams version registrations, alias moves, deprecations
// and promotion requests and decisions as they commit (server/registry/live.ts), over graphql-ws and SSE alike,
// to callers who may read the model; each carries ids and names only, as the registry's webhooks do.
import { subject } from '@casl/ability';
import type { LiveRegistryEvent } from '../../server/registry/live';
import { parseModelName } from '../../server/registry/models';
import { builder } from '../builder';
import { liveStream, watchAccess } from '../live-access';
import { IdentityRef } from './identity';

const RegistryEventRef = builder.objectRef<LiveRegistryEvent>('RegistryEvent').implement({
  description: 'A change in the model registry, as it committed.',
  fields: (t) => ({
    seq: t.exposeInt('seq', { description: 'Its number among all registry events (increasing, with gaps).' }),
    type: t.exposeString('type', {
      description: '`version.registered`, `version.deprecated`, `alias.moved`, `promotion.requested`, `promotion.decided`, `model.created`, `model.updated`…',
    }),
    modelId: t.exposeID('modelId'),
    model: t.exposeString('model', { description: 'namespace/name' }),
    actor: t.field({ type: IdentityRef, nullable: true, resolve: (e) => e.actorId }),
    payload: t.field({ type: 'JSON', description: 'Ids and names only (never metrics, lineage or other run data).', resolve: (e) => e.payload }),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

builder.subscriptionField('registryEvents', (t) =>
  t.field({
    type: RegistryEventRef,
    description:
      'Registry events as they commit, live (no snapshot, no replay): of one model (`namespace/name`) or of every model you may read. Ends with UNAUTHENTICATED if the token is revoked meanwhile.',
    args: { model: t.arg.string({ description: 'namespace/name: only this model’s events.' }) },
    authScopes: { can: ['read', 'Model'] },
    subscribe: (_root, args, ctx) => {
      const only = args.model ?? null;
      if (only) parseModelName(only);
      return liveStream(ctx, async function* (live) {
        const watch = watchAccess(ctx, live);
        for await (const event of ctx.services.registryFeed.stream(live.signal)) {
          if (only && event.model !== only) continue;
          if (!watch.ability().can('read', subject('Model', { id: event.modelId, namespace: event.namespace, name: event.name }))) continue;
          yield event;
        }
        watch.assertStillValid();
      });
    },
    resolve: (event) => event,
  }),
);

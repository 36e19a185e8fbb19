// Deployments, live: `deploymentsChanged` (every deployment the caller may read, new and deleted ones included) and
// `deploymentChanged` (one deployment). Both follow the replica's deployment watcher (server/deployments/live.ts),
// which reads a touched deployment once for all subscribers; each subscription passes on only what its caller may
// read, by the rule of the `deployments` query (server/deployments/access.ts), re-checked as its access changes.
import { mayReadDeployment } from '../../server/deployments/access';
import { findDeployment } from '../../server/deployments/deployments';
import type { DeploymentChange } from '../../server/deployments/live';
import { notFound } from '../../server/errors';
import { findModel } from '../../server/registry/models';
import { builder } from '../builder';
import type { Context } from '../context';
import { liveStream, watchAccess } from '../live-access';
import { caller, DeploymentRef } from './deployments';

type ChangeEvent = Omit<DeploymentChange, 'kind' | 'id' | 'name'> & { kind: DeploymentChange['kind'] | 'LISTENING'; id: string | null; name: string | null };

const ChangeKindEnum = builder.enumType('DeploymentChangeKind', {
  description:
    'LISTENING (the first event: read your list after it and nothing is missed), CREATED, CHANGED (its traffic, readiness, rollout, failover, revisions, message or deletion under way), DELETED (gone).',
  values: ['LISTENING', 'CREATED', 'CHANGED', 'DELETED'] as const,
});

const ChangeRef = builder.objectRef<ChangeEvent>('DeploymentChange').implement({
  description: 'A deployment you may read was created, changed or deleted.',
  fields: (t) => ({
    kind: t.field({ type: ChangeKindEnum, resolve: (c) => c.kind }),
    id: t.exposeID('id', { nullable: true, description: 'Null on LISTENING.' }),
    name: t.exposeString('name', { nullable: true, description: 'Null on LISTENING.' }),
    deployment: t.field({ type: DeploymentRef, nullable: true, description: 'As it is now; null on LISTENING and DELETED.', resolve: (c) => c.row }),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

/**
 * Whether the subscriber may read a deployment of a team, as of its latest access check: asked once per team and
 * ability (a member's membership is one query, an admin's none), not once per event.
 */
function readableTeams(ctx: Context, ability: () => Context['ability']) {
  let asOf = ability();
  const known = new Map<string | null, Promise<boolean>>();
  return (teamId: string | null) => {
    if (ability() !== asOf) {
      asOf = ability();
      known.clear();
    }
    let readable = known.get(teamId);
    if (!readable) known.set(teamId, (readable = mayReadDeployment(ctx.services.db, { identity: ctx.identity, ability: asOf }, { teamId })));
    return readable;
  };
}

builder.subscriptionField('deploymentsChanged', (t) =>
  t.field({
    type: ChangeRef,
    description:
      'Every deployment you may read (of one model when given), live: first LISTENING, then each creation, change and deletion as the control plane learns it (a person’s change at once, the deployer’s state at its next check, every ATELIER_DEPLOYMENT_POLL_MS). Read your list after LISTENING, and again after a reconnect. Ends with UNAUTHENTICATED or FORBIDDEN if your access is revoked meanwhile.',
    args: { model: t.arg.string({ description: 'ns/model: only its deployments.' }) },
    subscribe: (_r, args, ctx) =>
      liveStream<ChangeEvent>(ctx, async function* (live) {
        const watch = watchAccess(ctx, live);
        const model = args.model ? await findModel(ctx.services.db, args.model).catch(() => null) : null;
        if (args.model && !model) throw notFound(`No model ${args.model}; \`npx atelier model list\` shows them.`);
        const readable = readableTeams(ctx, watch.ability);
        const { ready, events } = ctx.services.deploymentWatch.stream(live.signal);
        await ready;
        yield { kind: 'LISTENING', id: null, name: null, modelId: model?.id ?? '', teamId: null, row: null, at: new Date() };
        for await (const change of events) {
          if (model && change.modelId !== model.id) continue;
          if (await readable(change.teamId)) yield change;
        }
        watch.assertStillValid();
      }),
    resolve: (c) => c,
  }),
);

builder.subscriptionField('deploymentChanged', (t) =>
  t.field({
    type: DeploymentRef,
    description:
      'The deployment now, then again whenever its traffic, readiness, rollout, failover or revisions change (as `deploymentsChanged` learns it); ends when it is deleted or you may no longer read it.',
    args: { id: t.arg.string({ required: true, description: 'Id or name.' }) },
    subscribe: (_r, args, ctx) =>
      liveStream(ctx, async function* (live) {
        const watch = watchAccess(ctx, live);
        // Listening before the first read: a change in between is passed on, not lost.
        const { ready, events } = ctx.services.deploymentWatch.stream(live.signal);
        await ready;
        const first = await findDeployment(ctx.services.db, caller(ctx), args.id); // missing or unreadable: NOT_FOUND, as the query says
        yield first;
        for await (const change of events) {
          if (change.id !== first.id) continue;
          if (!change.row || change.row.deletingAt) return;
          if (!(await mayReadDeployment(ctx.services.db, { identity: ctx.identity, ability: watch.ability() }, change.row))) return;
          yield change.row;
        }
        watch.assertStillValid();
      }),
    resolve: (d) => d,
  }),
);

// Webhooks: a team's subscriptions to events, their delivery log (a Relay connection) and attempts, and the mutations
// that manage them and replay a delivery. The work is in server/webhooks/.
import { type ResolveCursorConnectionArgs, resolveCursorConnection } from '@pothos/plugin-relay';
import type { Webhook, WebhookAttempt, WebhookDelivery } from '../../server/db/tables/webhooks';
import { webhookDeliveryStatuses } from '../../server/db/tables/webhooks';
import { attemptsOf, decodeDeliveryCursor, deliveriesPage, encodeDeliveryCursor, replayDelivery } from '../../server/webhooks/deliveries';
import {
  type CreatedWebhook,
  createWebhook,
  deleteWebhook,
  listWebhooks,
  rotateWebhookSecret,
  updateWebhook,
  webhookManagers,
  webhooksByIds,
} from '../../server/webhooks/subscriptions';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { checkId } from '../ids';
import { IdentityRef } from './identity';
import { TeamRef } from './teams';

const WebhookDeliveryStatusEnum = builder.enumType('WebhookDeliveryStatus', {
  values: webhookDeliveryStatuses,
  description: 'PENDING: due or waiting for a retry; SUCCEEDED: a 2xx answer; FAILED: a permanent error or out of tries (replay queues it again).',
});

/** Per request: each team's webhook managers, looked up once. */
const managersCache = new WeakMap<Context, Map<string, Promise<string[]>>>();
function managersOf(ctx: Context, teamId: string): Promise<string[]> {
  let perRequest = managersCache.get(ctx);
  if (!perRequest) managersCache.set(ctx, (perRequest = new Map()));
  let managers = perRequest.get(teamId);
  if (!managers) perRequest.set(teamId, (managers = webhookManagers(ctx.services.db, [teamId]).then((m) => m.get(teamId) ?? [])));
  return managers;
}

const WebhookRef = builder.loadableObjectRef('Webhook', {
  load: (ids: string[], ctx: Context) => webhooksByIds(ctx.services.db, ids),
  sort: (w) => w.id,
});

WebhookRef.implement({
  // Readable by the writing members of its owning team (and admins) only.
  authScopes: guard('Webhook', 'Webhook', async (w: Webhook, ctx) => ({ ...w, managers: await managersOf(ctx, w.teamId) })),
  description: 'A team’s subscription to events: each matching event is POSTed to its URL, signed with its secret (README "Webhooks").',
  fields: (t) => ({
    id: t.exposeID('id'),
    team: t.field({ type: TeamRef, resolve: (w) => w.teamId }),
    url: t.exposeString('url'),
    events: t.exposeStringList('events', { description: 'Exact event types (run.failed), prefixes (run.*), or * for every event.' }),
    description: t.exposeString('description'),
    active: t.exposeBoolean('active', { description: 'An inactive webhook receives no new deliveries; pending ones wait until it is active again.' }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (w) => w.createdBy }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    previousSecretExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Until when the secret before the last rotation still signs beside the current one; null when it no longer does.',
      resolve: (w) => (w.previousSecretExpiresAt && w.previousSecretExpiresAt > new Date() ? w.previousSecretExpiresAt : null),
    }),
  }),
});

const WebhookAttemptRef = builder.objectRef<WebhookAttempt>('WebhookAttempt').implement({
  description: 'One POST of a delivery: what the receiver answered (the first KiB) or why it failed.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt'),
    at: t.expose('at', { type: 'DateTime' }),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: 'The HTTP status; null when no answer came.' }),
    durationMs: t.exposeInt('durationMs'),
    error: t.exposeString('error', { nullable: true }),
    responseSnippet: t.exposeString('responseSnippet', { nullable: true, description: 'The first KiB of the answer.' }),
  }),
});

const WebhookDeliveryRef = builder.objectRef<WebhookDelivery>('WebhookDelivery');

WebhookDeliveryRef.implement({
  authScopes: guard('WebhookDelivery', 'WebhookDelivery', async (d: WebhookDelivery, ctx) => {
    const webhook = await WebhookRef.getDataloader(ctx).load(d.webhookId);
    return { ...d, managers: webhook ? await managersOf(ctx, webhook.teamId) : [] };
  }),
  description: 'One event sent (or to be sent) to one webhook, with every attempt.',
  fields: (t) => ({
    id: t.exposeID('id'),
    eventId: t.exposeID('eventId', { description: 'The event’s id (`Atelier-Webhook-Id`): the same on every retry and replay; receivers dedupe by it.' }),
    eventType: t.exposeString('eventType'),
    subject: t.exposeString('subject', { description: 'What the event is about, e.g. run:ID.' }),
    webhook: t.field({ type: WebhookRef, resolve: (d) => d.webhookId }),
    status: t.field({ type: WebhookDeliveryStatusEnum, resolve: (d) => d.status }),
    attempts: t.exposeInt('attempts'),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it is due (PENDING only).',
      resolve: (d) => (d.status === 'PENDING' ? d.nextAttemptAt : null),
    }),
    lastStatusCode: t.exposeInt('lastStatusCode', { nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    body: t.expose('body', { type: 'JSON', description: 'The JSON body sent: { id, type, createdAt, data }.' }),
    log: t.loadableGroup({
      type: WebhookAttemptRef,
      description: 'Every attempt, oldest first.',
      load: (ids: string[], ctx: Context) => attemptsOf(ctx.services.db, ids),
      group: (a) => a.deliveryId,
      resolve: (d) => d.id,
    }),
  }),
});

const CreatedWebhookRef = builder.objectRef<CreatedWebhook>('CreatedWebhook').implement({
  description: 'A webhook with its signing secret, shown this once (rotateWebhookSecret makes a new one).',
  fields: (t) => ({
    webhook: t.field({ type: WebhookRef, resolve: (c) => c.webhook }),
    secret: t.exposeString('secret', { description: 'The HMAC-SHA256 key of `Atelier-Signature`; store it now, it is never shown again.' }),
  }),
});

builder.queryFields((t) => ({
  webhooks: t.field({
    type: [WebhookRef],
    description: 'A team’s webhooks, oldest first; for its writing members and admins.',
    args: { team: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => listWebhooks(ctx.services.db, ctx, args.team),
  }),
  webhookDeliveries: t.connection({
    type: WebhookDeliveryRef,
    description: 'A webhook’s deliveries, newest first.',
    args: { webhookId: t.arg.id({ required: true }), status: t.arg({ type: WebhookDeliveryStatusEnum }) },
    resolve: (_root, args, ctx) => {
      const webhookId = checkId(String(args.webhookId), 'webhook');
      return resolveCursorConnection({ args, toCursor: encodeDeliveryCursor }, ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
        deliveriesPage(
          ctx.services.db,
          ctx,
          webhookId,
          { status: args.status },
          { after: after ? decodeDeliveryCursor(after) : undefined, before: before ? decodeDeliveryCursor(before) : undefined, limit, inverted },
        ),
      );
    },
  }),
}));

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: CreatedWebhookRef,
    description: 'Subscribes a URL (on ATELIER_WEBHOOK_ALLOWLIST) to a team’s events; answers the signing secret once.',
    args: {
      team: t.arg.string({ required: true }),
      url: t.arg.string({ required: true }),
      events: t.arg.stringList({ required: true, description: 'Exact types (run.failed), prefixes (run.*), or *.' }),
      description: t.arg.string(),
    },
    resolve: (_root, args, ctx) => createWebhook(ctx.services.db, ctx.services.config.webhooks, ctx, args),
  }),
  updateWebhook: t.field({
    type: WebhookRef,
    description: 'Changes a webhook’s events, URL, description, or whether it is active.',
    args: {
      id: t.arg.id({ required: true }),
      events: t.arg.stringList(),
      active: t.arg.boolean(),
      url: t.arg.string(),
      description: t.arg.string(),
    },
    resolve: (_root, args, ctx) => updateWebhook(ctx.services.db, ctx.services.config.webhooks, ctx, checkId(String(args.id), 'webhook'), args),
  }),
  deleteWebhook: t.id({
    description: 'Deletes a webhook with its delivery log; answers its id.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => deleteWebhook(ctx.services.db, ctx, checkId(String(args.id), 'webhook')),
  }),
  rotateWebhookSecret: t.field({
    type: CreatedWebhookRef,
    description:
      'Replaces a webhook’s signing secret and answers the new one, this once. The old one keeps signing beside it (two signatures in `Atelier-Signature`) for `keepPreviousFor` hours (default 24, at most 168) while receivers switch; 0 stops it at once (a leaked secret).',
    args: { id: t.arg.id({ required: true }), keepPreviousFor: t.arg.int({ required: false, description: 'Hours the old secret still signs (default 24).' }) },
    resolve: (_root, args, ctx) => rotateWebhookSecret(ctx.services.db, ctx, checkId(String(args.id), 'webhook'), args.keepPreviousFor ?? 24),
  }),
  replayWebhookDelivery: t.field({
    type: WebhookDeliveryRef,
    description: 'Queues a delivery again now, with a fresh set of retries and the same event id (receivers dedupe by it).',
    args: { id: t.arg.id({ required: true }) },
    // The worker is kicked after every mutation (server/http/yoga.ts).
    resolve: (_root, args, ctx) => replayDelivery(ctx.services.db, ctx, checkId(String(args.id), 'webhook delivery')),
  }),
}));

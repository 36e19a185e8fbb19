// Webhooks: a team's subscriptions to events (URL, event names, signing secret), the deliveries each event became
// (the webhooks' outbox: one row per event and subscription, written in the transaction of the change), and every
// attempt at one (the delivery log).
import { bigserial, boolean, index, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { teams } from './teams';

export const webhookDeliveryStatuses = ['PENDING', 'SUCCEEDED', 'FAILED'] as const;
export type WebhookDeliveryStatus = (typeof webhookDeliveryStatuses)[number];

export const webhooks = pgTable(
  'webhooks',
  {
    id: id(),
    teamId: uuid('team_id')
      .notNull()
      .references(() => teams.id),
    url: text('url').notNull(),
    /** Exact event names (`run.failed`) or prefixes (`run.*`); `*` is every event. */
    events: jsonb('events').$type<string[]>().notNull(),
    description: text('description').notNull().default(''),
    active: boolean('active').notNull().default(true),
    /** The HMAC key, shown once when created or rotated; never exposed by the API (not in server/auth/fields.ts). */
    secret: text('secret').notNull(),
    /** The secret before the last rotation, which also signs until `previousSecretExpiresAt` (receivers switch meanwhile). */
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: at('previous_secret_expires_at'),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
    updatedAt: at('updated_at')
      .notNull()
      .defaultNow()
      .$onUpdate(() => new Date()),
  },
  (t) => [index('webhooks_team_idx').on(t.teamId)],
);

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: id(),
    webhookId: uuid('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    /** The event's id: the same for every subscription it went to, and for a replay (receivers dedupe by it). */
    eventId: uuid('event_id').notNull(),
    eventType: text('event_type').notNull(),
    /** What the event is about (`run:ID`, `model:NAME`). */
    subject: text('subject').notNull(),
    /** The body sent: `{ id, type, createdAt, data }`. */
    body: jsonb('body').notNull(),
    status: text('status', { enum: webhookDeliveryStatuses }).notNull().default('PENDING'),
    /** Attempts made in all, and in the current round (a replay starts a new round with the full retry budget). */
    attempts: integer('attempts').notNull().default(0),
    roundAttempts: integer('round_attempts').notNull().default(0),
    /** When it is due (PENDING), or until when a worker holds it while it posts. */
    nextAttemptAt: at('next_attempt_at').notNull().defaultNow(),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    deliveredAt: at('delivered_at'),
    createdAt: createdAt(),
  },
  (t) => [index('webhook_deliveries_due_idx').on(t.status, t.nextAttemptAt), index('webhook_deliveries_webhook_idx').on(t.webhookId, t.createdAt)],
);

export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deliveryId: uuid('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    at: createdAt(),
    statusCode: integer('status_code'),
    durationMs: integer('duration_ms').notNull(),
    error: text('error'),
    /** The first KiB of the receiver's answer. */
    responseSnippet: text('response_snippet'),
  },
  (t) => [index('webhook_attempts_delivery_idx').on(t.deliveryId, t.attempt)],
);

export type Webhook = typeof webhooks.$inferSelect;
export type WebhookDelivery = typeof webhookDeliveries.$inferSelect;
export type WebhookAttempt = typeof webhookAttempts.$inferSelect;

// Monitoring: observations (metric streams with dimensions about a model version, an alias, a dataset or a
// workflow), monitors with their rules and per-rule state, the alerts they open, and every event of either (people's
// feedback included). See server/monitoring/.
import { sql } from 'drizzle-orm';
import { bigserial, boolean, doublePrecision, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { teams } from './teams';

export const targetKinds = ['MODEL_VERSION', 'ALIAS', 'DATASET', 'WORKFLOW'] as const;
export type TargetKind = (typeof targetKinds)[number];

export const alertStates = ['OPEN', 'ACKNOWLEDGED', 'RESOLVED', 'FALSE_POSITIVE'] as const;
export type AlertState = (typeof alertStates)[number];

export const monitorEventKinds = [
  'CREATED',
  'UPDATED',
  'PAUSED',
  'RESUMED',
  'DELETED',
  'OPENED',
  'ACKNOWLEDGED',
  'RESOLVED',
  'FALSE_POSITIVE',
  'ANNOTATED',
  'REBASELINED',
  'ACTION',
] as const;
export type MonitorEventKind = (typeof monitorEventKinds)[number];

/**
 * One observed value. `targetId` is the model version, model (for an alias), dataset or workflow; `versionId` is the
 * model version it was about when observed (for an alias: the one it pointed at then), so an alias's stream follows
 * the alias and a version's series also holds what was observed through an alias.
 */
export const observations = pgTable(
  'observations',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    targetKind: text('target_kind', { enum: targetKinds }).notNull(),
    targetId: uuid('target_id').notNull(),
    /** For ALIAS: the alias's name. */
    alias: text('alias'),
    versionId: uuid('version_id'),
    /** The target's owning team when observed. */
    teamId: uuid('team_id'),
    metric: text('metric').notNull(),
    value: doublePrecision('value').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
    dimensions: jsonb('dimensions').$type<Record<string, string>>().notNull().default({}),
    recordedBy: uuid('recorded_by'),
  },
  (t) => [
    index('observations_target_idx').on(t.targetKind, t.targetId, t.metric, t.at),
    index('observations_version_idx').on(t.versionId, t.metric, t.at).where(sql`version_id is not null`),
    // For retention: observations arrive roughly in time order, so a BRIN index finds the old ones cheaply.
    index('observations_at_brin').using('brin', t.at),
  ],
);

export const monitors = pgTable(
  'monitors',
  {
    id: id(),
    name: text('name').notNull(),
    teamId: uuid('team_id').references(() => teams.id),
    createdBy: uuid('created_by').references(() => identities.id),
    /** The scopes of the token that created it (null: unscoped): the runs its actions start read no more than that token may. */
    scopes: text('scopes').array(),
    targetKind: text('target_kind', { enum: targetKinds }).notNull(),
    targetId: uuid('target_id').notNull(),
    alias: text('alias'),
    metric: text('metric').notNull(),
    /** The rules (server/monitoring/rules.ts `MonitorRule`), each with a stable id. */
    rules: jsonb('rules').$type<unknown[]>().notNull(),
    /** What an alert's opening does besides notifying (server/monitoring/actions.ts `MonitorAction`). */
    actions: jsonb('actions').$type<unknown[]>().notNull().default([]),
    /** Per rule id: consecutive breaches, the last value, a baseline set by a person (rules.ts `RuleState`). */
    state: jsonb('state').$type<Record<string, unknown>>().notNull().default({}),
    intervalSeconds: integer('interval_seconds').notNull(),
    paused: boolean('paused').notNull().default(false),
    nextDueAt: at('next_due_at').notNull().defaultNow(),
    lastEvaluatedAt: at('last_evaluated_at'),
    deletedAt: at('deleted_at'),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [index('monitors_due_idx').on(t.nextDueAt).where(sql`not paused and deleted_at is null`), index('monitors_target_idx').on(t.targetKind, t.targetId)],
);

/** An alert: opened by a monitor's rule (or another check, by `key`); at most one open per key. */
export const alerts = pgTable(
  'alerts',
  {
    id: id(),
    /** What may have one open alert at a time: `monitor:ID:RULE`, `freshness:DATASET`. */
    key: text('key').notNull(),
    monitorId: uuid('monitor_id').references(() => monitors.id),
    ruleId: text('rule_id'),
    teamId: uuid('team_id').references(() => teams.id),
    targetKind: text('target_kind', { enum: targetKinds }).notNull(),
    targetId: uuid('target_id').notNull(),
    alias: text('alias'),
    title: text('title').notNull(),
    state: text('state', { enum: alertStates }).notNull().default('OPEN'),
    value: doublePrecision('value'),
    bound: doublePrecision('bound'),
    breaches: integer('breaches').notNull().default(1),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    openedAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow(),
    closedAt: at('closed_at'),
  },
  (t) => [
    uniqueIndex('alerts_one_open_key').on(t.key).where(sql`state in ('OPEN', 'ACKNOWLEDGED')`),
    index('alerts_team_idx').on(t.teamId, t.openedAt),
    index('alerts_monitor_idx').on(t.monitorId),
  ],
);

/** What happened to a monitor or an alert, and who did it: changes, openings and people's feedback. */
export const monitorEvents = pgTable(
  'monitor_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    monitorId: uuid('monitor_id').references(() => monitors.id),
    alertId: uuid('alert_id').references(() => alerts.id),
    kind: text('kind', { enum: monitorEventKinds }).notNull(),
    actorId: uuid('actor_id').references(() => identities.id),
    reason: text('reason').notNull().default(''),
    /** ANNOTATED: `{ from, to }`, the window left out of trailing baselines; REBASELINED: `{ rule, baseline }`. */
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [index('monitor_events_monitor_idx').on(t.monitorId, t.id), index('monitor_events_alert_idx').on(t.alertId, t.id)],
);

export const alertActionStatuses = ['PENDING', 'DONE', 'REFUSED', 'FAILED'] as const;
export type AlertActionStatus = (typeof alertActionStatuses)[number];

/**
 * One action of a monitor for one alert it opened: written PENDING in the alert's opening transaction (UNIQUE per
 * alert and action, so once across replicas), then carried out by the action worker and decided (server/monitoring/
 * actions.ts).
 */
export const alertActions = pgTable(
  'alert_actions',
  {
    id: id(),
    alertId: uuid('alert_id')
      .notNull()
      .references(() => alerts.id),
    monitorId: uuid('monitor_id')
      .notNull()
      .references(() => monitors.id),
    /** The action's place in the monitor's `actions` when the alert opened. */
    position: integer('position').notNull(),
    /** The action as it was when the alert opened. */
    action: jsonb('action').$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: alertActionStatuses }).notNull().default('PENDING'),
    runId: uuid('run_id'),
    message: text('message'),
    createdAt: createdAt(),
    decidedAt: at('decided_at'),
  },
  (t) => [uniqueIndex('alert_actions_once').on(t.alertId, t.position), index('alert_actions_pending_idx').on(t.createdAt).where(sql`status = 'PENDING'`)],
);

export type AlertActionRow = typeof alertActions.$inferSelect;
export type Observation = typeof observations.$inferSelect;
export type Monitor = typeof monitors.$inferSelect;
export type Alert = typeof alerts.$inferSelect;
export type MonitorEvent = typeof monitorEvents.$inferSelect;

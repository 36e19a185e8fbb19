// Triggers beyond cron: signals (events recorded by their sources in the change's own transaction, each once by its
// unique key), the triggers that start a workflow on them, and their firings: one row per (trigger, signal), whose
// UNIQUE key makes each trigger fire at most once per signal across replicas and restarts.
import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import { domains, firingOutcomes, overlapPolicies, signalTypes, triggerKinds } from '../../vocabulary';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { runs } from './runs';
import { teams } from './teams';
import { workflows } from './workflows';

export const signals = pgTable(
  'signals',
  {
    id: id(),
    type: text('type', { enum: signalTypes }).notNull(),
    /** The team that owns what it is about (a dataset's namespace's, a model's, a workflow's, a monitor's); null: none. */
    teamId: uuid('team_id').references(() => teams.id, { onDelete: 'set null' }),
    /** What it is about, as triggers match it: `dataset:ns/name`, `alias:ns/model@alias`, `workflow:ID`, `monitor:ID`, `trigger:ID`. */
    subject: text('subject').notNull(),
    /** The same event recorded twice (a retried transaction, a redelivered hook) is one signal. */
    key: text('key').notNull(),
    /** Ids, names and versions only (never run data): what a trigger's parameter mapping reads. */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default({}),
    /** Set once the dispatcher matched it to triggers (and wrote their firings) in the same transaction. */
    handledAt: at('handled_at'),
    createdAt: createdAt(),
  },
  (t) => [
    unique('signals_key_key').on(t.key),
    index('signals_unhandled_idx').on(t.createdAt).where(sql`handled_at is null`),
    // For retention: a range of creation times costs a few pages of summary, not a scan.
    index('signals_created_brin').using('brin', t.createdAt),
  ],
);

export const workflowTriggers = pgTable(
  'workflow_triggers',
  {
    id: id(),
    /** Unique: an HTTP trigger is reached at `POST /hooks/trigger/NAME`. */
    name: text('name').notNull(),
    workflowId: uuid('workflow_id')
      .notNull()
      .references(() => workflows.id),
    kind: text('kind', { enum: triggerKinds }).notNull(),
    /** What it listens to as written (a dataset name, `ns/model@alias`, a workflow name, a monitor id); null: any alert of its team, or HTTP. */
    source: text('source'),
    /** The signal subject it fires on (`dataset:ns/name`…); null for ALERT_OPENED of any monitor of its team. */
    matchSubject: text('match_subject'),
    /** Fixed run parameters; the mapped ones (below) override them. */
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull().default({}),
    /** Run parameter → JSON pointer into the signal's payload (for HTTP: the posted JSON body). */
    parameterMap: jsonb('parameter_map').$type<Record<string, string>>().notNull().default({}),
    /** The domain its workflow was in when its parameters were set (as for schedules). */
    parametersDomain: text('parameters_domain', { enum: domains }).notNull().default('production'),
    overlap: text('overlap', { enum: overlapPolicies }).notNull().default('ALLOW'),
    /** The priority of the runs it starts (-10..10; see docs/batch-inference.md). */
    priority: integer('priority').notNull().default(0),
    /** Most runs it starts in any minute; the signals beyond are recorded RATE_LIMITED. */
    maxRunsPerMinute: integer('max_runs_per_minute').notNull().default(10),
    paused: boolean('paused').notNull().default(false),
    /** HTTP only: the HMAC key of signed hooks (shown once at creation and at rotation). */
    secret: text('secret'),
    createdBy: uuid('created_by').references(() => identities.id),
    /** The scopes of the token that created it (null: unscoped): its runs read no more than that token may. */
    scopes: text('scopes').array(),
    /** The owning team: its writing members (and admins) change it; its runs act for the team. Null: its creator. */
    teamId: uuid('team_id').references(() => teams.id),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [unique('workflow_triggers_name_key').on(t.name), index('workflow_triggers_match_idx').on(t.kind, t.matchSubject)],
);

export const triggerFirings = pgTable(
  'trigger_firings',
  {
    id: id(),
    triggerId: uuid('trigger_id')
      .notNull()
      .references(() => workflowTriggers.id, { onDelete: 'cascade' }),
    signalId: uuid('signal_id')
      .notNull()
      .references(() => signals.id, { onDelete: 'cascade' }),
    /** The run it started (STARTED), or the one it coalesced into. */
    runId: uuid('run_id').references(() => runs.id),
    outcome: text('outcome', { enum: firingOutcomes }).notNull(),
    message: text('message'),
    createdAt: createdAt(),
    decidedAt: at('decided_at'),
  },
  (t) => [
    // The exactly-once key: whoever inserts a (trigger, signal) first owns it.
    unique('trigger_firings_trigger_signal_key').on(t.triggerId, t.signalId),
    index('trigger_firings_pending_idx').on(t.triggerId, t.createdAt).where(sql`outcome = 'PENDING'`),
    index('trigger_firings_recent_idx').on(t.triggerId, t.createdAt.desc().nullsFirst()),
    index('trigger_firings_run_idx').on(t.runId),
  ],
);

export type Signal = typeof signals.$inferSelect;
export type NewSignal = typeof signals.$inferInsert;
export type WorkflowTrigger = typeof workflowTriggers.$inferSelect;
export type NewWorkflowTrigger = typeof workflowTriggers.$inferInsert;
export type TriggerFiring = typeof triggerFirings.$inferSelect;

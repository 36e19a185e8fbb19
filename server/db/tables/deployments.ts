// Deployments (server/deployments/): one serving endpoint per row, following a model alias or pinned to a version,
// driven through a deployer plugin; its revisions (one per model version it rolled out, numbered per deployment) and
// its event log. The reconciler claims a deployment by its lease columns; the rollout and failover state here is the
// desired state the deployer is made to match (the deployer's `status` is the truth about what runs).
import { bigserial, boolean, index, integer, jsonb, pgTable, text, unique, uuid } from 'drizzle-orm/pg-core';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { modelVersions, registeredModels } from './registry';
import { teams } from './teams';

export const revisionStates = ['PENDING', 'ROLLING_OUT', 'SERVING', 'STANDBY', 'RETIRED', 'ROLLED_BACK', 'FAILED', 'REFUSED'] as const;
export type RevisionState = (typeof revisionStates)[number];

export const deploymentEventKinds = [
  'CREATED',
  'REVISION_CREATED',
  'REVISION_FAILED',
  'REVISION_REFUSED',
  'STEP',
  'HOLDING',
  'PROMOTED',
  'COMPLETED',
  'ROLLED_BACK',
  'FAILED_OVER',
  'RESTORED',
  'DELETING',
] as const;
export type DeploymentEventKind = (typeof deploymentEventKinds)[number];

/** One step of a rollout: the new revision's share of traffic, held for `dwellSeconds` before the gates decide. */
export interface RolloutStep {
  percent: number;
  dwellSeconds: number;
}

/** A gate: a monitor rule (server/monitoring/rules.ts `MonitorRule`, checked there) over one metric of the new version. */
export interface RolloutGate {
  metric: string;
  rule: { id: string; kind: string } & Record<string, unknown>;
}

export interface RolloutPolicy {
  /** Empty: all traffic at once once the new revision is ready. */
  steps: RolloutStep[];
  gates: RolloutGate[];
  /** How long a new revision (or one at a step) may be unhealthy before the rollout rolls back. */
  readyTimeoutSeconds: number;
  /**
   * A gate with no observations of the new revision after a step's dwell: HOLD the step until they come (default),
   * PASS it, or ROLLBACK. Absent in policies stored before it existed: HOLD.
   */
  noData?: NoDataPolicy;
  /** How long a step may hold for lack of observations before the rollout is stuck and rolls back (default 3600). */
  holdTimeoutSeconds?: number;
}

export const noDataPolicies = ['HOLD', 'PASS', 'ROLLBACK'] as const;
export type NoDataPolicy = (typeof noDataPolicies)[number];

/** PREVIOUS: the revision that served before the current one; BASELINE: a model version applied up front. */
export type Fallback = { kind: 'PREVIOUS' } | { kind: 'BASELINE'; versionId: string };

/** The rollout of one revision; null on the deployment when none is running. */
export interface Rollout {
  revision: number;
  /** The revision it takes traffic from (null: the first revision, nothing to take from). */
  from: number | null;
  /** -1 while the new revision is not yet given traffic. */
  step: number;
  /** The new revision's share at this step (0 before the first). */
  percent: number;
  startedAt: string;
  stepStartedAt: string;
  state: 'RUNNING' | 'PAUSED' | 'COMPLETE' | 'ROLLED_BACK';
  reason: string | null;
  /** Each gate's last verdict, measured when a step's dwell ended (kept through the next step until measured again). */
  gates?: GateResult[];
}

/** One gate measured over one step's window. */
export interface GateResult {
  metric: string;
  rule: string;
  /** The step whose window it measured. */
  step: number;
  status: 'PASS' | 'BREACH' | 'NO_DATA';
  /** The aggregate over the new revision's observations (null: none). */
  value: number | null;
  /** What a REGRESSION gate compared it with (null otherwise, or when there was nothing to compare). */
  baseline: number | null;
  message: string | null;
  measuredAt: string;
}

export const deployments = pgTable(
  'deployments',
  {
    id: id(),
    name: text('name').notNull(),
    modelId: uuid('model_id')
      .notNull()
      .references(() => registeredModels.id),
    /** The alias followed, or null when pinned. */
    alias: text('alias'),
    /** The version pinned, or null when following an alias. */
    pinnedVersionId: uuid('pinned_version_id').references(() => modelVersions.id),
    domain: text('domain').notNull(),
    deployer: text('deployer').notNull(),
    settings: jsonb('settings').$type<Record<string, unknown>>().notNull().default({}),
    teamId: uuid('team_id').references(() => teams.id),
    policy: jsonb('policy').$type<RolloutPolicy>().notNull(),
    fallback: jsonb('fallback').$type<Fallback>().notNull(),
    rollout: jsonb('rollout').$type<Rollout | null>(),
    /** Failed over: all traffic on `failoverRevision`; `splitBeforeFailover` is what restore brings back. */
    failedOver: boolean('failed_over').notNull().default(false),
    failoverRevision: integer('failover_revision'),
    splitBeforeFailover: jsonb('split_before_failover').$type<Record<number, number> | null>(),
    /** Bumped by every change people make: a reconciler pass that read an older one does not move traffic. */
    generation: integer('generation').notNull().default(0),
    /** What the deployer last said (for reads; the deployer's own status is the truth). */
    url: text('url'),
    ready: boolean('ready').notNull().default(false),
    message: text('message').notNull().default('waiting for the first reconciliation'),
    traffic: jsonb('traffic').$type<Record<number, number>>().notNull().default({}),
    leaseOwner: text('lease_owner'),
    leaseUntil: at('lease_until'),
    checkedAt: at('checked_at').notNull().defaultNow(),
    deletingAt: at('deleting_at'),
    createdBy: uuid('created_by').references(() => identities.id),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [unique('deployments_name_key').on(t.name), index('deployments_model_idx').on(t.modelId)],
);

export const deploymentRevisions = pgTable(
  'deployment_revisions',
  {
    id: id(),
    deploymentId: uuid('deployment_id')
      .notNull()
      .references(() => deployments.id, { onDelete: 'cascade' }),
    number: integer('number').notNull(),
    modelVersionId: uuid('model_version_id')
      .notNull()
      .references(() => modelVersions.id),
    state: text('state', { enum: revisionStates }).notNull(),
    /** MAIN: what the deployment follows; BASELINE: the fallback version applied up front (no traffic until a failover). */
    role: text('role', { enum: ['MAIN', 'BASELINE'] })
      .notNull()
      .default('MAIN'),
    health: text('health'),
    restarts: integer('restarts').notNull().default(0),
    message: text('message'),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (t) => [unique('deployment_revisions_number_key').on(t.deploymentId, t.number)],
);

export const deploymentEvents = pgTable(
  'deployment_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deploymentId: uuid('deployment_id')
      .notNull()
      .references(() => deployments.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: deploymentEventKinds }).notNull(),
    revision: integer('revision'),
    actorId: uuid('actor_id').references(() => identities.id),
    reason: text('reason'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [index('deployment_events_deployment_idx').on(t.deploymentId, t.id)],
);

export type DeploymentRow = typeof deployments.$inferSelect;
export type DeploymentRevisionRow = typeof deploymentRevisions.$inferSelect;
export type DeploymentEvent = typeof deploymentEvents.$inferSelect;

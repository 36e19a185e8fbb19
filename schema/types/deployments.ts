// Deployments (server/deployments/): one serving endpoint per model alias or pinned version, with its revisions,
// traffic split, rollout progress, fallback and events; the changes people make to it. Every Deployment returned was
// checked readable by server/deployments/access.ts (others answer as missing); resolvers declare and delegate.
import { eq } from 'drizzle-orm';
import type { DeploymentEvent, DeploymentRevisionRow, DeploymentRow, GateResult, RolloutGate, RolloutStep } from '../../server/db/tables/deployments';
import { deploymentEventKinds, deploymentEvents, noDataPolicies, revisionStates } from '../../server/db/tables/deployments';
import { registeredModels } from '../../server/db/tables/registry';
import { type Caller, mayReadDeployment, viewerMayManage } from '../../server/deployments/access';
import {
  deploymentsOfModels,
  deploymentsOfVersions,
  fallbackRevision,
  findDeployment,
  listDeployments,
  revisionsOf,
} from '../../server/deployments/deployments';
import { DEFAULT_HOLD_TIMEOUT_S } from '../../server/deployments/rollout';
import { lastServingWindow } from '../../server/deployments/serving';
import type { MonitorRule } from '../../server/monitoring/rules';
import type { Domain } from '../../server/vocabulary';
import { builder } from '../builder';
import type { Context } from '../context';
import { ServingRef } from './deployment-serving';
import { IdentityRef } from './identity';
import { ModelRef, ModelVersionRef } from './models';
import { RuleInput, RuleRef } from './monitoring-monitors';
import { TeamRef } from './teams';

export const caller = (ctx: Context): Caller => ({ identity: ctx.identity, ability: ctx.ability });

const RevisionStateEnum = builder.enumType('DeploymentRevisionState', {
  description:
    'PENDING (to apply), ROLLING_OUT (taking traffic step by step), SERVING, STANDBY (a baseline fallback, no traffic), RETIRED (served before), ROLLED_BACK, FAILED (could not start), REFUSED (not allowed in the domain).',
  values: revisionStates,
});
const EventKindEnum = builder.enumType('DeploymentEventKind', { values: deploymentEventKinds });

const TrafficRef = builder.objectRef<{ revision: number; percent: number }>('DeploymentTraffic').implement({
  fields: (t) => ({ revision: t.exposeInt('revision'), percent: t.exposeInt('percent') }),
});

const RevisionRef = builder.objectRef<DeploymentRevisionRow>('DeploymentRevision').implement({
  description: 'One model version a deployment rolled out (or holds as its baseline), numbered per deployment.',
  fields: (t) => ({
    number: t.exposeInt('number'),
    modelVersion: t.field({ type: ModelVersionRef, nullable: true, resolve: (r) => r.modelVersionId }),
    state: t.field({ type: RevisionStateEnum, resolve: (r) => r.state }),
    baseline: t.boolean({ description: 'The fallback version applied up front.', resolve: (r) => r.role === 'BASELINE' }),
    health: t.exposeString('health', { nullable: true, description: 'STARTING, READY, RESTARTING or FAILED, as the deployer last said.' }),
    restarts: t.exposeInt('restarts'),
    message: t.exposeString('message', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    serving: t.field({
      type: ServingRef,
      nullable: true,
      description: 'Its traffic in the last window recorded (requests, error rate, latency); null before it had any.',
      resolve: (r, _args, ctx) => lastServingWindow(ctx.services.db, r.deploymentId, r.number, r.modelVersionId),
    }),
  }),
});

const NoDataEnum = builder.enumType('RolloutNoData', {
  description:
    'What a step does when a gate has no observations of the new revision after its dwell: HOLD until they come (rolling back once holdTimeoutSeconds pass), PASS, or ROLLBACK.',
  values: noDataPolicies,
});
const StepRef = builder.objectRef<RolloutStep>('RolloutStep').implement({
  fields: (t) => ({ percent: t.exposeInt('percent'), dwellSeconds: t.exposeInt('dwellSeconds') }),
});
const GateRef = builder.objectRef<RolloutGate>('RolloutGate').implement({
  fields: (t) => ({
    metric: t.exposeString('metric'),
    rule: t.field({ type: RuleRef, resolve: (g) => g.rule as unknown as MonitorRule }),
  }),
});
const PolicyRef = builder.objectRef<DeploymentRow['policy']>('RolloutPolicy').implement({
  fields: (t) => ({
    steps: t.field({ type: [StepRef], resolve: (p) => p.steps }),
    gates: t.field({ type: [GateRef], resolve: (p) => p.gates }),
    readyTimeoutSeconds: t.exposeInt('readyTimeoutSeconds'),
    noData: t.field({ type: NoDataEnum, resolve: (p) => p.noData ?? 'HOLD' }),
    holdTimeoutSeconds: t.int({ resolve: (p) => p.holdTimeoutSeconds ?? DEFAULT_HOLD_TIMEOUT_S }),
  }),
});

type RolloutView = NonNullable<DeploymentRow['rollout']> & { steps: RolloutStep[]; pollMs: number };
const GateResultRef = builder.objectRef<GateResult>('RolloutGateResult').implement({
  description: 'One gate measured over one step’s window of the new revision’s observations.',
  fields: (t) => ({
    metric: t.exposeString('metric'),
    rule: t.exposeString('rule', { description: 'The rule’s id.' }),
    step: t.exposeInt('step', { description: 'The step whose window it measured.' }),
    status: t.exposeString('status', { description: 'PASS, BREACH or NO_DATA (no observations in the window).' }),
    value: t.exposeFloat('value', { nullable: true, description: 'The rule’s aggregate over the window.' }),
    baseline: t.exposeFloat('baseline', { nullable: true, description: 'What a REGRESSION gate compared it with.' }),
    message: t.exposeString('message', { nullable: true }),
    measuredAt: t.field({ type: 'DateTime', resolve: (g) => new Date(g.measuredAt) }),
  }),
});
const RolloutRef = builder.objectRef<RolloutView>('DeploymentRollout').implement({
  description: 'The rollout of the newest revision: which step, since when, and how it ended.',
  fields: (t) => ({
    revision: t.exposeInt('revision'),
    from: t.exposeInt('from', { nullable: true, description: 'The revision it takes traffic from.' }),
    step: t.exposeInt('step', { description: '0-based index into steps; -1 before the new revision takes traffic.' }),
    percent: t.exposeInt('percent', { description: 'The new revision’s share now.' }),
    steps: t.field({ type: [StepRef], resolve: (r) => r.steps }),
    state: t.exposeString('state', { description: 'RUNNING, PAUSED (failed over), COMPLETE or ROLLED_BACK.' }),
    startedAt: t.field({ type: 'DateTime', resolve: (r) => new Date(r.startedAt) }),
    stepStartedAt: t.field({ type: 'DateTime', resolve: (r) => new Date(r.stepStartedAt) }),
    nextDecisionAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the current step’s dwell ends and the gates decide (null when not running).',
      resolve: (r) => {
        if (r.state !== 'RUNNING') return null;
        const dwell = r.step >= 0 ? (r.steps[r.step]?.dwellSeconds ?? 0) : 0;
        return new Date(new Date(r.stepStartedAt).getTime() + dwell * 1000);
      },
    }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it was rolled back (or promoted by hand).' }),
    gates: t.field({
      type: [GateResultRef],
      description: 'Each gate’s last verdict, measured when a step’s dwell ended (empty before the first).',
      resolve: (r) => r.gates ?? [],
    }),
  }),
});

const FallbackRef = builder.objectRef<{ d: DeploymentRow; revisions: DeploymentRevisionRow[] }>('DeploymentFallback').implement({
  fields: (t) => ({
    kind: t.string({ description: 'PREVIOUS (the revision served before) or BASELINE (a version applied up front).', resolve: ({ d }) => d.fallback.kind }),
    revision: t.int({
      nullable: true,
      description: 'The revision a failover would send all traffic to now.',
      resolve: ({ d, revisions }) => fallbackRevision(d, revisions)?.number ?? null,
    }),
    modelVersion: t.field({
      type: ModelVersionRef,
      nullable: true,
      resolve: ({ d, revisions }) => (d.fallback.kind === 'BASELINE' ? d.fallback.versionId : (fallbackRevision(d, revisions)?.modelVersionId ?? null)),
    }),
  }),
});

const EventRef = builder.objectRef<DeploymentEvent>('DeploymentEvent').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.field({ type: EventKindEnum, resolve: (e) => e.kind }),
    revision: t.exposeInt('revision', { nullable: true }),
    actor: t.field({ type: IdentityRef, nullable: true, description: 'Who did it (null: the reconciler).', resolve: (e) => e.actorId }),
    reason: t.exposeString('reason', { nullable: true }),
    details: t.expose('details', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const ViewerCanRef = builder.objectRef<{ manage: boolean }>('DeploymentViewerCan').implement({
  fields: (t) => ({
    manage: t.exposeBoolean('manage', { description: 'Promote, roll back, delete.' }),
    failover: t.exposeBoolean('manage', { description: 'Fail over and restore.' }),
  }),
});

const modelOf = async (d: DeploymentRow, ctx: Context) => (await ctx.services.db.select().from(registeredModels).where(eq(registeredModels.id, d.modelId)))[0]!;

export const DeploymentRef = builder.objectRef<DeploymentRow>('Deployment').implement({
  description: 'One serving endpoint: a model alias (followed) or version (pinned) served in a domain by a deployer.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    model: t.string({
      description: 'ns/model@alias (follows the alias) or ns/model/3 (pinned).',
      resolve: async (d, _a, ctx) => {
        const m = await modelOf(d, ctx);
        if (d.alias) return `${m.namespace}/${m.name}@${d.alias}`;
        const revisions = await revisionsOf(ctx.services.db, d.id);
        const pinned = revisions.find((r) => r.modelVersionId === d.pinnedVersionId);
        return pinned ? `${m.namespace}/${m.name}/${pinned.number}` : `${m.namespace}/${m.name}`;
      },
    }),
    registeredModel: t.field({ type: ModelRef, resolve: (d) => d.modelId }),
    domain: t.exposeString('domain'),
    deployer: t.exposeString('deployer'),
    settings: t.expose('settings', { type: 'JSON' }),
    team: t.field({ type: TeamRef, nullable: true, resolve: (d) => d.teamId }),
    url: t.exposeString('url', { nullable: true }),
    ready: t.exposeBoolean('ready'),
    deleting: t.boolean({
      description: 'Its deletion is recorded and its deployer has not stopped it yet (only `deployment(id:)` shows such a one).',
      resolve: (d) => d.deletingAt !== null,
    }),
    message: t.exposeString('message'),
    traffic: t.field({
      type: [TrafficRef],
      description: 'The split in force as the deployer last reported it.',
      resolve: (d) => Object.entries(d.traffic).map(([revision, percent]) => ({ revision: Number(revision), percent })),
    }),
    revisions: t.field({ type: [RevisionRef], description: 'Oldest first.', resolve: (d, _a, ctx) => revisionsOf(ctx.services.db, d.id) }),
    rolloutPolicy: t.field({ type: PolicyRef, resolve: (d) => d.policy }),
    rollout: t.field({
      type: RolloutRef,
      nullable: true,
      resolve: (d, _a, ctx) => (d.rollout ? { ...d.rollout, steps: d.policy.steps, pollMs: ctx.services.config.deploymentPollMs } : null),
    }),
    fallback: t.field({ type: FallbackRef, resolve: async (d, _a, ctx) => ({ d, revisions: await revisionsOf(ctx.services.db, d.id) }) }),
    failedOver: t.exposeBoolean('failedOver'),
    events: t.field({
      type: [EventRef],
      description: 'Newest first.',
      args: { limit: t.arg.int({ defaultValue: 50, description: '1 to 500.' }) },
      resolve: (d, args, ctx) =>
        ctx.services.db.query.deploymentEvents.findMany({
          where: eq(deploymentEvents.deploymentId, d.id),
          orderBy: (e, { desc }) => [desc(e.id)],
          limit: Math.min(Math.max(args.limit ?? 50, 1), 500),
        }),
    }),
    viewerCan: t.field({
      type: ViewerCanRef,
      resolve: async (d, _a, ctx) => ({ manage: await viewerMayManage(ctx.services.db, caller(ctx), await modelOf(d, ctx), d.domain as Domain) }),
    }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (d) => d.createdBy }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const missingAsNull = (error: unknown) => {
  if ((error as { code?: string }).code === 'NOT_FOUND') return null;
  throw error;
};

builder.queryFields((t) => ({
  deployments: t.field({
    type: [DeploymentRef],
    description: 'Deployments you may read, by name; of one model when given. Page with `after` (the last name seen).',
    args: { model: t.arg.string({ description: 'ns/model' }), first: t.arg.int({ defaultValue: 50, description: '1 to 500.' }), after: t.arg.string() },
    resolve: (_r, args, ctx) =>
      listDeployments(ctx.services.db, caller(ctx), { model: args.model, first: Math.min(Math.max(args.first ?? 50, 1), 500), after: args.after }),
  }),
  deployment: t.field({
    type: DeploymentRef,
    nullable: true,
    description: 'By id or name; null when it does not exist or you may not read it. One being deleted shows `deleting` until it is gone.',
    args: { id: t.arg.string({ description: 'Id or name.' }), name: t.arg.string() },
    resolve: (_r, args, ctx) => {
      const key = args.id ?? args.name;
      return key ? findDeployment(ctx.services.db, caller(ctx), key, { deleting: true }).catch(missingAsNull) : null;
    },
  }),
}));

builder.objectField(ModelRef, 'deployments', (t) =>
  t.field({
    type: [DeploymentRef],
    description: 'The deployments of this model you may read.',
    resolve: async (m, _a, ctx) => {
      const rows = await deploymentsOfModels(ctx.services.db, [m.id]);
      const readable = await Promise.all(rows.map((d) => mayReadDeployment(ctx.services.db, caller(ctx), d)));
      return rows.filter((_d, i) => readable[i]);
    },
  }),
);

builder.objectField(ModelVersionRef, 'deployments', (t) =>
  t.field({
    type: [DeploymentRef],
    description: 'The deployments you may read that serve this version now (or hold it as their baseline).',
    resolve: async (v, _a, ctx) => {
      const rows = await deploymentsOfVersions(ctx.services.db, [v.id]);
      const readable = await Promise.all(rows.map((d) => mayReadDeployment(ctx.services.db, caller(ctx), d)));
      return rows.filter((_d, i) => readable[i]);
    },
  }),
);

const StepInput = builder.inputType('RolloutStepInput', {
  fields: (t) => ({
    percent: t.int({ required: true, description: 'The new revision’s share, 1 to 100; growing, the last 100.' }),
    dwellSeconds: t.int({ description: 'How long to hold before the gates decide (default 60).' }),
  }),
});
const GateInput = builder.inputType('RolloutGateInput', {
  fields: (t) => ({
    metric: t.string({ required: true, description: 'An observation metric of the new revision’s model version.' }),
    rule: t.field({ type: RuleInput, required: true, description: 'THRESHOLD or REGRESSION (TRAILING: against the old revision in the same window).' }),
  }),
});
const PolicyInput = builder.inputType('RolloutPolicyInput', {
  fields: (t) => ({
    steps: t.field({ type: [StepInput], description: 'None: all traffic at once once ready.' }),
    gates: t.field({ type: [GateInput] }),
    readyTimeoutSeconds: t.int({ description: 'Default 300.' }),
    noData: t.field({ type: NoDataEnum, description: 'A gate with no observations of the new revision after a dwell (default HOLD).' }),
    holdTimeoutSeconds: t.int({ description: 'How long a step may hold for observations before the rollout is stuck and rolls back (default 3600).' }),
  }),
});
const CreateInput = builder.inputType('CreateDeploymentInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'Lowercase letters, digits and dashes; unique.' }),
    model: t.string({ required: true, description: 'ns/model@alias (follows the alias) or ns/model/3 (pinned).' }),
    domain: t.string({ required: true, description: 'experimentation, adhoc or production.' }),
    deployer: t.string({ defaultValue: 'local', description: 'A deployer of this control plane (default local).' }),
    settings: t.field({ type: 'JSON', description: 'For the deployer, under its own keys (local: {"port": 8080}).' }),
    rollout: t.field({ type: PolicyInput }),
    fallbackVersion: t.int({ description: 'A version of the same model applied up front as the fallback; none: the previous revision.' }),
  }),
});

builder.mutationFields((t) => ({
  createDeployment: t.field({
    type: DeploymentRef,
    args: { input: t.arg({ type: CreateInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      ctx.services.deployments.create(caller(ctx), {
        ...input,
        deployer: input.deployer ?? 'local',
        settings: input.settings as Record<string, unknown> | null,
      }),
  }),
  deleteDeployment: t.field({
    type: 'ID',
    description: 'Stops serving and deletes the deployment; returns its id.',
    args: { id: t.arg.string({ required: true, description: 'Id or name.' }) },
    resolve: async (_r, { id }, ctx) => (await ctx.services.deployments.delete(caller(ctx), id)).id,
  }),
  promoteDeployment: t.field({
    type: DeploymentRef,
    description: 'Skips a running rollout to 100 % of the new revision.',
    args: { id: t.arg.string({ required: true }), reason: t.arg.string({ description: 'Why (kept in the events and the audit log).' }) },
    resolve: (_r, a, ctx) => ctx.services.deployments.promote(caller(ctx), a.id, a.reason),
  }),
  rollbackDeployment: t.field({
    type: DeploymentRef,
    description: 'Rolls a running rollout back at any step; with none running, back to the previous revision.',
    args: { id: t.arg.string({ required: true }), reason: t.arg.string({ description: 'Why (kept in the events and the audit log).' }) },
    resolve: (_r, a, ctx) => ctx.services.deployments.rollback(caller(ctx), a.id, a.reason),
  }),
  failoverDeployment: t.field({
    type: DeploymentRef,
    description: 'All traffic to the fallback in one deployer call; pauses a running rollout until restored.',
    args: { id: t.arg.string({ required: true }), reason: t.arg.string({ required: true }) },
    resolve: (_r, a, ctx) => ctx.services.deployments.failover(caller(ctx), a.id, a.reason),
  }),
  restoreDeployment: t.field({
    type: DeploymentRef,
    description: 'Reverses a failover: the split before it comes back.',
    args: { id: t.arg.string({ required: true }), reason: t.arg.string({ description: 'Why (kept in the events and the audit log).' }) },
    resolve: (_r, a, ctx) => ctx.services.deployments.restore(caller(ctx), a.id, a.reason),
  }),
}));

// Triggers: what starts a workflow on an event (a new dataset version, an alias moved, another workflow's run
// succeeding, an alert opening, an inbound hook) with their recent firings; `Workflow.triggers`, `Run.triggeredBy`;
// create, update, pause, resume, delete, and rotate an HTTP trigger's secret.
import { assertCan } from '../../server/auth/ability';
import type { Run } from '../../server/db/tables/runs';
import type { WorkflowTrigger } from '../../server/db/tables/triggers';
import { assertMayIn, assertMayStartIn } from '../../server/governance/grants';
import { ownerOf } from '../../server/teams/ownership';
import {
  createTrigger,
  deleteTrigger,
  type FiringWithSignal,
  findTrigger,
  firingsOfRuns,
  listTriggers,
  recentFirings,
  rotateTriggerSecret,
  setTriggerPaused,
  triggersOfWorkflows,
  updateTrigger,
} from '../../server/triggers/triggers';
import { type Domain, firingOutcomes, moreGuarded, triggerKinds } from '../../server/vocabulary';
import { workflowDomainOf } from '../../server/workflows/queries';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { OverlapEnum } from './enums';
import { IdentityRef } from './identity';
import { RunRef } from './runs';
import { TeamRef } from './teams';
import { WorkflowRef } from './workflows';

type Firing = FiringWithSignal & { domain: Domain };

const TriggerKindEnum = builder.enumType('TriggerKind', {
  description: 'What a trigger listens for.',
  values: triggerKinds,
});
const FiringOutcomeEnum = builder.enumType('TriggerFiringOutcome', {
  description:
    'How a (trigger, signal) pair ended: STARTED a run; COALESCED into a newer signal’s run (storm policy); RATE_LIMITED (the trigger’s maxRunsPerMinute was reached); SKIPPED_OVERLAP; FAILED (message says why); PENDING until decided.',
  values: firingOutcomes,
});

export const TriggerRef = builder.objectRef<WorkflowTrigger>('Trigger');
const TriggerFiringRef = builder.objectRef<Firing>('TriggerFiring');

/** The domain a trigger's parameters (and its signals' payloads) are the data of. */
const domainOf = async (t: WorkflowTrigger, ctx: Context): Promise<Domain> =>
  moreGuarded((await WorkflowRef.getDataloader(ctx).load(t.workflowId))?.domain ?? 'production', t.parametersDomain);

/** The run a run.* signal's payload names (its id is meta, and the Run answers under its own rules). */
function signalRunId(signal: { type: string; payload: Record<string, unknown> }): string | null {
  if (signal.type !== 'run.succeeded' && signal.type !== 'run.failed') return null;
  const id = (signal.payload.run as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? id : null;
}

TriggerFiringRef.implement({
  authScopes: guard('TriggerFiring', 'Trigger'),
  description: 'One signal a trigger matched: the run it started, or why it started none.',
  fields: (t) => ({
    id: t.exposeID('id'),
    trigger: t.field({ type: TriggerRef, nullable: true, resolve: (f, _a, ctx) => findTrigger(ctx.services.db, f.triggerId).catch(() => null) }),
    outcome: t.field({ type: FiringOutcomeEnum, resolve: (f) => f.outcome }),
    message: t.exposeString('message', { nullable: true }),
    run: t.field({ type: RunRef, nullable: true, resolve: (f) => f.runId }),
    signalRun: t.field({
      type: RunRef,
      nullable: true,
      description: 'The run whose end the signal records (run.succeeded, run.failed): the run that failed, for a failure trigger; null for other signals.',
      resolve: (f) => signalRunId(f.signal),
    }),
    signalId: t.field({ type: 'ID', resolve: (f) => f.signal.id }),
    signalType: t.string({
      description: 'dataset.version, alias.moved, run.succeeded, run.failed, alert.opened or hook.received.',
      resolve: (f) => f.signal.type,
    }),
    signalSubject: t.string({
      description: 'What the signal is about: dataset:ns/name, alias:ns/model@alias, workflow:ID, monitor:ID, trigger:ID.',
      resolve: (f) => f.signal.subject,
    }),
    signalPayload: t.field({
      type: 'JSON',
      nullable: true,
      description: 'What the trigger’s parameter mapping read (for HTTP: the posted body).',
      resolve: (f) => f.signal.payload,
    }),
    signalAt: t.field({ type: 'DateTime', resolve: (f) => f.signal.createdAt }),
    decidedAt: t.expose('decidedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

TriggerRef.implement({
  authScopes: guard('Trigger', 'Trigger', async (tr: WorkflowTrigger, ctx) => ({ ...tr, domain: await domainOf(tr, ctx) })),
  description: 'Starts runs of a workflow (its latest version) on events, each event at most once.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    workflow: t.field({ type: WorkflowRef, resolve: (tr) => tr.workflowId }),
    kind: t.field({ type: TriggerKindEnum, resolve: (tr) => tr.kind }),
    source: t.exposeString('source', {
      nullable: true,
      description: 'A dataset (ns/name), an alias (ns/model@alias), a workflow name, a monitor id; none for HTTP or any alert of its team.',
    }),
    parameters: t.expose('parameters', { type: 'JSON', nullable: true, description: 'Fixed run parameters (the mapped ones override them).' }),
    parameterMap: t.expose('parameterMap', { type: 'JSON', description: 'Run parameter → JSON pointer into the signal’s payload.' }),
    overlap: t.field({ type: OverlapEnum, resolve: (tr) => tr.overlap }),
    priority: t.exposeInt('priority', {
      description:
        'Priority of the runs it starts, -10 to 10 (default 0): in a saturated pool, tasks of higher-priority runs dispatch first (aged while waiting, see docs/batch-inference.md).',
    }),
    maxRunsPerMinute: t.exposeInt('maxRunsPerMinute'),
    paused: t.exposeBoolean('paused'),
    hookPath: t.string({
      nullable: true,
      description: 'HTTP triggers: where to POST.',
      resolve: (tr) => (tr.kind === 'HTTP' ? `/hooks/trigger/${tr.name}` : null),
    }),
    firings: t.field({
      type: [TriggerFiringRef],
      description: 'Recent firings, newest first.',
      args: { limit: t.arg.int({ defaultValue: 20, description: '1 to 500.' }) },
      resolve: async (tr, args, ctx) => {
        const domain = await domainOf(tr, ctx);
        return (await recentFirings(ctx.services.db, tr.id, Math.min(Math.max(args.limit ?? 20, 1), 500))).map((f) => ({ ...f, domain }));
      },
    }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (tr) => tr.createdBy }),
    team: t.field({ type: TeamRef, nullable: true, description: 'Its owning team: its runs act for it.', resolve: (tr) => tr.teamId }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const CreatedTriggerRef = builder.objectRef<{ trigger: WorkflowTrigger; secret: string | null }>('CreatedTrigger').implement({
  description: 'A trigger with, for HTTP triggers, its HMAC secret, shown this once (rotateTriggerSecret makes a new one).',
  fields: (t) => ({
    trigger: t.field({ type: TriggerRef, resolve: (c) => c.trigger }),
    secret: t.exposeString('secret', { nullable: true, description: 'The HMAC-SHA256 key of X-Atelier-Signature; store it now, it is never shown again.' }),
  }),
});

builder.objectField(RunRef, 'triggeredBy', (t) =>
  t.field({
    type: TriggerFiringRef,
    nullable: true,
    description: 'The trigger firing (trigger and signal) that started this run (trigger EVENT); null otherwise.',
    resolve: async (run, _a, ctx) => {
      const firing = (await firingsOfRuns(ctx.services.db, [(run as Run).id])).get((run as Run).id);
      return firing ? { ...firing, domain: await domainOf(firing.trigger, ctx) } : null;
    },
  }),
);

builder.objectField(WorkflowRef, 'triggers', (t) =>
  t.loadableGroup({
    type: TriggerRef,
    description: 'The triggers that start runs of this workflow.',
    load: (ids: string[], ctx: Context) => triggersOfWorkflows(ctx.services.db, ids),
    group: (tr) => tr.workflowId,
    resolve: (w, _a, ctx) => {
      assertCan(ctx.ability, 'read', 'Trigger', 'read triggers');
      return w.id;
    },
  }),
);

builder.queryFields((t) => ({
  triggers: t.field({
    type: [TriggerRef],
    description: 'Triggers, oldest first; only those of one workflow when `workflow` is given.',
    args: { workflow: t.arg.string({ description: 'Workflow name or id.' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Trigger', 'list triggers');
      return listTriggers(ctx.services.db, args.workflow);
    },
  }),
  trigger: t.field({
    type: TriggerRef,
    nullable: true,
    args: { id: t.arg.string({ required: true, description: 'Trigger id or name.' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Trigger', 'read triggers');
      return findTrigger(ctx.services.db, args.id).catch((error) => {
        if ((error as { code?: string }).code === 'NOT_FOUND') return null;
        throw error;
      });
    },
  }),
}));

const CreateTriggerInput = builder.inputType('CreateTriggerInput', {
  fields: (t) => ({
    workflow: t.string({ required: true, description: 'Workflow name or id.' }),
    name: t.string({ required: true, description: 'Unique; an HTTP trigger is reached at /hooks/trigger/NAME.' }),
    kind: t.field({ type: TriggerKindEnum, required: true }),
    source: t.string({
      description:
        'DATASET_VERSION: ns/name; ALIAS_MOVED: ns/model@alias; RUN_SUCCEEDED: another workflow’s name; RUN_FAILED: a workflow’s name (its own: rerun on failure, at most 5 in a row); ALERT_OPENED: a monitor id (none: any of the team’s monitors); HTTP: none.',
    }),
    parameters: t.field({ type: 'JSON', description: 'Fixed run parameters.' }),
    parameterMap: t.field({ type: 'JSON', description: 'Run parameter → JSON pointer into the signal’s payload, e.g. {"version": "/version"}.' }),
    overlap: t.field({ type: OverlapEnum, description: 'Default ALLOW.' }),
    priority: t.int({
      description:
        'Priority of the runs it starts, -10 to 10 (default 0): in a saturated pool, tasks of higher-priority runs dispatch first (aged while waiting, see docs/batch-inference.md).',
    }),
    maxRunsPerMinute: t.int({ description: 'Default 10, at most 600; signals beyond are recorded RATE_LIMITED.' }),
    paused: t.boolean(),
    team: t.string({ description: 'The owning team (one of yours). Default: the workflow’s team when you are in it, else your only team.' }),
  }),
});

const UpdateTriggerInput = builder.inputType('UpdateTriggerInput', {
  description: 'Fields left out keep their value.',
  fields: (t) => ({
    parameters: t.field({ type: 'JSON' }),
    parameterMap: t.field({ type: 'JSON' }),
    overlap: t.field({ type: OverlapEnum }),
    priority: t.int(),
    maxRunsPerMinute: t.int(),
  }),
});

/** Throws unless the caller may change triggers in the trigger's domain; NOT_FOUND for none. Ownership is checked by the change. */
async function assertMayChangeTrigger(ctx: Context, id: string, what: string): Promise<void> {
  assertCan(ctx.ability, 'update', 'Trigger', what);
  const trigger = await findTrigger(ctx.services.db, id);
  assertMayIn(ctx.ability, 'update', 'Trigger', await domainOf(trigger, ctx), what);
}

const ownerIn = (ctx: Context) => ownerOf(ctx.identity, ctx.ability);
type JsonObject = Record<string, unknown> | null | undefined;

builder.mutationFields((t) => ({
  createTrigger: t.field({
    type: CreatedTriggerRef,
    description: 'Creates a trigger; everything is checked first (source, workflow, parameters and their mapping).',
    args: { input: t.arg({ type: CreateTriggerInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      assertCan(ctx.ability, 'create', 'Trigger', 'create triggers');
      // A trigger starts runs in its workflow's domain on its owners' behalf: creating one needs that grant.
      const domain = await workflowDomainOf(ctx.services.db, input.workflow);
      if (domain) {
        assertMayIn(ctx.ability, 'create', 'Trigger', domain, 'create triggers');
        assertMayStartIn(ctx.ability, domain);
      }
      return createTrigger(
        ctx.services.db,
        { ...input, parameters: input.parameters as JsonObject, parameterMap: input.parameterMap as Record<string, string> | null },
        ctx.identity,
        ownerIn(ctx),
        new Date(),
        ctx.scopes,
      );
    },
  }),
  updateTrigger: t.field({
    type: TriggerRef,
    args: { id: t.arg.string({ required: true, description: 'Trigger id or name.' }), input: t.arg({ type: UpdateTriggerInput, required: true }) },
    resolve: async (_root, { id, input }, ctx) => {
      await assertMayChangeTrigger(ctx, id, 'change triggers');
      return updateTrigger(
        ctx.services.db,
        id,
        { ...input, parameters: input.parameters as JsonObject, parameterMap: input.parameterMap as Record<string, string> | null },
        new Date(),
        ownerIn(ctx),
      );
    },
  }),
  pauseTrigger: t.field({
    type: TriggerRef,
    description: 'Stops a trigger matching new signals until resumed (signals meanwhile start nothing).',
    args: { id: t.arg.string({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await assertMayChangeTrigger(ctx, id, 'pause triggers');
      return setTriggerPaused(ctx.services.db, id, true, new Date(), ownerIn(ctx));
    },
  }),
  resumeTrigger: t.field({
    type: TriggerRef,
    args: { id: t.arg.string({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await assertMayChangeTrigger(ctx, id, 'resume triggers');
      return setTriggerPaused(ctx.services.db, id, false, new Date(), ownerIn(ctx));
    },
  }),
  rotateTriggerSecret: t.field({
    type: CreatedTriggerRef,
    description: 'A new HMAC secret for an HTTP trigger; the old one stops working at once.',
    args: { id: t.arg.string({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await assertMayChangeTrigger(ctx, id, 'rotate trigger secrets');
      return rotateTriggerSecret(ctx.services.db, id, new Date(), ownerIn(ctx));
    },
  }),
  deleteTrigger: t.field({
    type: 'ID',
    description: 'Deletes a trigger and its firing records (the runs it started stay); returns its id.',
    args: { id: t.arg.string({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await assertMayChangeTrigger(ctx, id, 'delete triggers');
      return (await deleteTrigger(ctx.services.db, id, ownerIn(ctx))).id;
    },
  }),
}));

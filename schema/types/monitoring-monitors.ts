// Monitors, their alerts and history, and people's feedback on alerts. Declares and delegates to server/monitoring/
// (access is checked there: a monitor or alert the caller may not read is answered as one that does not exist).
import {
  type Alert,
  type AlertActionRow,
  alertActionStatuses,
  alertStates,
  type Monitor,
  type MonitorEvent,
  monitorEventKinds,
} from '../../server/db/tables/monitoring';
import { actionKinds, actionsOf, actionsOfAlert, type MonitorAction } from '../../server/monitoring/actions';
import { type AlertAction, actOnAlert, alertsByIds, eventsOfAlert, findAlert, listAlerts } from '../../server/monitoring/alerts';
import {
  createMonitor,
  deleteMonitor,
  findMonitor,
  historyOf,
  monitorsByIds,
  monitorsOf,
  monitorsOfTeams,
  pauseMonitor,
  rulesOf,
  updateMonitor,
} from '../../server/monitoring/monitors';
import { aggregates, type MonitorRule, ruleKindNames } from '../../server/monitoring/rules';
import { targetOf } from '../../server/monitoring/targets';
import { builder } from '../builder';
import type { Context } from '../context';
import { IdentityRef } from './identity';
import { MonitorTargetRef, TargetInput } from './monitoring';
import { TeamRef } from './teams';

const AlertStateEnum = builder.enumType('AlertState', {
  values: alertStates,
  description: 'OPEN and ACKNOWLEDGED are open (a continuing breach updates the alert); RESOLVED and FALSE_POSITIVE are closed.',
});
const MonitorEventKindEnum = builder.enumType('MonitorEventKind', { values: monitorEventKinds });
const RuleKindEnum = builder.enumType('MonitorRuleKind', { values: ruleKindNames });
const AggregateEnum = builder.enumType('MonitorAggregate', { values: aggregates });
const BaselineEnum = builder.enumType('MonitorBaseline', {
  values: ['EVALUATION', 'TRAILING'] as const,
  description: 'EVALUATION: the model version’s evaluation metric; TRAILING: the same aggregate over the trailing window, annotated windows left out.',
});

const targetField = async (row: Monitor | Alert, _args: unknown, ctx: Context) => {
  const target = await targetOf(ctx.services.db, row);
  return { kind: row.targetKind, ref: target?.ref ?? '(deleted)' };
};

export const RuleRef = builder.objectRef<MonitorRule>('MonitorRule').implement({
  description: 'A rule of a monitor; fields of other kinds are null.',
  fields: (t) => ({
    id: t.exposeString('id'),
    kind: t.field({ type: RuleKindEnum, resolve: (r) => r.kind }),
    aggregate: t.field({ type: AggregateEnum, resolve: (r) => r.aggregate }),
    windowSeconds: t.exposeInt('windowSeconds'),
    consecutive: t.exposeInt('consecutive', { description: 'Breaches in a row before an alert opens.' }),
    above: t.float({ nullable: true, resolve: (r) => (r.kind === 'THRESHOLD' ? r.above : null) }),
    below: t.float({ nullable: true, resolve: (r) => (r.kind === 'THRESHOLD' ? r.below : null) }),
    baseline: t.field({ type: BaselineEnum, nullable: true, resolve: (r) => (r.kind === 'REGRESSION' ? r.baseline : null) }),
    evaluationMetric: t.string({ nullable: true, resolve: (r) => (r.kind === 'REGRESSION' ? r.evaluationMetric : null) }),
    trailingSeconds: t.int({ nullable: true, resolve: (r) => (r.kind === 'REGRESSION' ? r.trailingSeconds : null) }),
    maxDrop: t.float({ nullable: true, resolve: (r) => (r.kind === 'REGRESSION' ? r.maxDrop : null) }),
    higherIsBetter: t.boolean({ nullable: true, resolve: (r) => (r.kind === 'REGRESSION' ? r.higherIsBetter : null) }),
    dataset: t.string({ nullable: true, resolve: (r) => (r.kind === 'DRIFT' ? r.dataset : null) }),
    baselineVersion: t.int({ nullable: true, resolve: (r) => (r.kind === 'DRIFT' ? r.baselineVersion : null) }),
    columns: t.stringList({ nullable: true, resolve: (r) => (r.kind === 'DRIFT' ? r.columns : null) }),
    psi: t.float({ nullable: true, resolve: (r) => (r.kind === 'DRIFT' ? r.thresholds.psi : null) }),
    ks: t.float({ nullable: true, resolve: (r) => (r.kind === 'DRIFT' ? r.thresholds.ks : null) }),
    chiSquarePValue: t.float({ nullable: true, resolve: (r) => (r.kind === 'DRIFT' ? r.thresholds.chiSquarePValue : null) }),
    jensenShannon: t.float({ nullable: true, resolve: (r) => (r.kind === 'DRIFT' ? r.thresholds.jensenShannon : null) }),
  }),
});

export const RuleInput = builder.inputType('MonitorRuleInput', {
  description: 'One rule; which fields apply depends on kind (docs/monitoring.md).',
  fields: (t) => ({
    id: t.string(),
    kind: t.field({ type: RuleKindEnum, required: true }),
    aggregate: t.field({ type: AggregateEnum }),
    windowSeconds: t.int(),
    consecutive: t.int(),
    above: t.float(),
    below: t.float(),
    baseline: t.field({ type: BaselineEnum }),
    evaluationMetric: t.string(),
    trailingSeconds: t.int(),
    maxDrop: t.float({ description: 'REGRESSION: the relative drop that breaches (0.05 = 5 %).' }),
    higherIsBetter: t.boolean(),
    dataset: t.string({ description: 'DRIFT on a model version or alias: which dataset of its lineage (default: the only one).' }),
    baselineVersion: t.int({ description: 'DRIFT on a dataset: the baseline version (default: the one before the newest).' }),
    columns: t.stringList({ description: 'DRIFT: only these columns (default: all the owner may read).' }),
    psi: t.float({ description: 'DRIFT: breach when a numeric column’s PSI is above (default 0.2).' }),
    ks: t.float({ description: 'DRIFT: breach when a numeric column’s KS statistic is above (default: not watched).' }),
    chiSquarePValue: t.float({ description: 'DRIFT: breach when a categorical column’s chi-square p-value is below (default: not watched).' }),
    jensenShannon: t.float({ description: 'DRIFT: breach when a categorical column’s Jensen–Shannon distance is above (default 0.1).' }),
  }),
});

const ActionKindEnum = builder.enumType('MonitorActionKind', {
  values: actionKinds,
  description: 'NOTIFY: the alert.* webhooks (always sent); START_WORKFLOW: start a run for the owning team; ROLLBACK_ALIAS: move an alias back.',
});
const ActionStatusEnum = builder.enumType('AlertActionStatus', { values: alertActionStatuses });

const MonitorActionRef = builder.objectRef<MonitorAction>('MonitorAction').implement({
  description: 'What an alert’s opening does (docs/monitoring.md); fields of other kinds are null.',
  fields: (t) => ({
    kind: t.field({ type: ActionKindEnum, resolve: (a) => a.kind }),
    workflow: t.string({ nullable: true, resolve: (a) => (a.kind === 'START_WORKFLOW' ? a.workflow : null) }),
    parameters: t.field({ type: 'JSON', nullable: true, resolve: (a) => (a.kind === 'START_WORKFLOW' ? a.parameters : null) }),
    model: t.string({ nullable: true, resolve: (a) => (a.kind === 'ROLLBACK_ALIAS' ? a.model : null) }),
    alias: t.string({ nullable: true, resolve: (a) => (a.kind === 'ROLLBACK_ALIAS' ? a.alias : null) }),
  }),
});

const AlertActionRef = builder.objectRef<AlertActionRow>('AlertActionTaken').implement({
  description: 'A monitor action for one alert: PENDING until the worker carries it out, then DONE, REFUSED (grants) or FAILED, with why.',
  fields: (t) => ({
    kind: t.field({ type: ActionKindEnum, resolve: (a) => (a.action as MonitorAction).kind }),
    action: t.field({ type: MonitorActionRef, resolve: (a) => a.action as MonitorAction }),
    status: t.field({ type: ActionStatusEnum, resolve: (a) => a.status }),
    runId: t.id({ nullable: true, description: 'START_WORKFLOW: the run started.', resolve: (a) => a.runId }),
    message: t.string({ nullable: true, resolve: (a) => a.message }),
    decidedAt: t.expose('decidedAt', { type: 'DateTime', nullable: true }),
  }),
});

const ActionInput = builder.inputType('MonitorActionInput', {
  description: 'One action; at most one of each kind per monitor.',
  fields: (t) => ({
    kind: t.field({ type: ActionKindEnum, required: true }),
    workflow: t.string({ description: 'START_WORKFLOW: the workflow to start.' }),
    parameters: t.field({ type: 'JSON', description: 'START_WORKFLOW: its parameters.' }),
    model: t.string({ description: 'ROLLBACK_ALIAS: namespace/name.' }),
    alias: t.string({ description: 'ROLLBACK_ALIAS: the alias to move back.' }),
  }),
});

export const MonitorEventRef = builder.objectRef<MonitorEvent>('MonitorEvent').implement({
  description: 'What happened to a monitor or one of its alerts, who did it and why.',
  fields: (t) => ({
    id: t.id({ resolve: (e) => String(e.id) }),
    kind: t.field({ type: MonitorEventKindEnum, resolve: (e) => e.kind }),
    actor: t.field({ type: IdentityRef, nullable: true, description: 'Null: the evaluator.', resolve: (e) => e.actorId }),
    reason: t.exposeString('reason'),
    details: t.field({ type: 'JSON', description: 'ANNOTATED: { from, to }; REBASELINED: { rule, baseline, previous }.', resolve: (e) => e.details }),
    alertId: t.id({ nullable: true, resolve: (e) => e.alertId }),
    at: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const MonitorRef = builder.loadableObjectRef('Monitor', {
  load: (ids: string[], ctx: Context) => monitorsByIds(ctx.services.db, ids),
  sort: (m) => m.id,
});

export const AlertRef = builder.loadableObjectRef('Alert', {
  load: (ids: string[], ctx: Context) => alertsByIds(ctx.services.db, ids),
  sort: (a) => a.id,
});

MonitorRef.implement({
  description: 'Rules over one metric of one target, owned by a team; its breaches open alerts.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    team: t.field({ type: TeamRef, nullable: true, resolve: (m) => m.teamId }),
    target: t.field({ type: MonitorTargetRef, resolve: targetField }),
    metric: t.exposeString('metric'),
    rules: t.field({ type: [RuleRef], resolve: (m) => rulesOf(m) }),
    actions: t.field({ type: [MonitorActionRef], description: 'What an alert’s opening does besides notifying.', resolve: (m) => actionsOf(m) }),
    state: t.field({ type: 'JSON', description: 'Per rule id: consecutive breaches, last value and baseline, a person’s baseline.', resolve: (m) => m.state }),
    intervalSeconds: t.exposeInt('intervalSeconds'),
    paused: t.exposeBoolean('paused'),
    lastEvaluatedAt: t.expose('lastEvaluatedAt', { type: 'DateTime', nullable: true }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (m) => m.createdBy }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    alerts: t.field({
      type: [AlertRef],
      args: { states: t.arg({ type: [AlertStateEnum] }) },
      resolve: (m, args, ctx) => listAlerts(ctx.services.db, null, { monitorId: m.id, states: args.states, limit: 200 }),
    }),
    history: t.field({ type: [MonitorEventRef], description: 'Newest first.', resolve: (m, _a, ctx) => historyOf(ctx.services.db, m.id) }),
  }),
});

AlertRef.implement({
  description: 'A breach the owning team should hear about, with people’s feedback.',
  fields: (t) => ({
    id: t.exposeID('id'),
    key: t.exposeString('key'),
    state: t.field({ type: AlertStateEnum, resolve: (a) => a.state }),
    title: t.exposeString('title'),
    monitor: t.field({ type: MonitorRef, nullable: true, resolve: (a) => a.monitorId }),
    rule: t.exposeString('ruleId', { nullable: true }),
    team: t.field({ type: TeamRef, nullable: true, resolve: (a) => a.teamId }),
    target: t.field({ type: MonitorTargetRef, resolve: targetField }),
    value: t.exposeFloat('value', { nullable: true }),
    bound: t.exposeFloat('bound', { nullable: true }),
    breaches: t.exposeInt('breaches', { description: 'Evaluations that found the breach while this alert was open.' }),
    openedAt: t.expose('openedAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    closedAt: t.expose('closedAt', { type: 'DateTime', nullable: true }),
    events: t.field({ type: [MonitorEventRef], description: 'Oldest first.', resolve: (a, _args, ctx) => eventsOfAlert(ctx.services.db, a.id) }),
    actions: t.field({
      type: [AlertActionRef],
      description: 'The monitor’s actions for this alert and what came of them.',
      resolve: (a, _args, ctx) => actionsOfAlert(ctx.services.db, a.id),
    }),
  }),
});

builder.queryFields((t) => ({
  monitors: t.field({
    type: [MonitorRef],
    description: 'The monitors of a target you may read; without `target`, those of your teams (admins: all, at most 500).',
    args: { target: t.arg({ type: TargetInput }) },
    resolve: (_r, args, ctx) => (args.target ? monitorsOf(ctx.services.db, ctx, args.target) : monitorsOfTeams(ctx.services.db, ctx)),
  }),
  monitor: t.field({
    type: MonitorRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => findMonitor(ctx.services.db, ctx, String(args.id)),
  }),
  alerts: t.field({
    type: [AlertRef],
    description: 'Alerts of your teams (admins: all), newest first.',
    args: { states: t.arg({ type: [AlertStateEnum] }), limit: t.arg.int() },
    resolve: (_r, args, ctx) => listAlerts(ctx.services.db, ctx, args),
  }),
  alert: t.field({
    type: AlertRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => findAlert(ctx.services.db, ctx, String(args.id)),
  }),
}));

const alertMutation = (action: AlertAction, description: string, window = false) =>
  builder.mutationField(
    {
      acknowledge: 'acknowledgeAlert',
      resolve: 'resolveAlert',
      falsePositive: 'markAlertFalsePositive',
      annotate: 'annotateAlert',
      rebaseline: 'rebaselineAlert',
    }[action],
    (t) =>
      t.field({
        type: AlertRef,
        description,
        args: {
          id: t.arg.id({ required: true }),
          reason: t.arg.string({ required: action !== 'acknowledge' }),
          ...(window ? { from: t.arg({ type: 'DateTime' }), to: t.arg({ type: 'DateTime' }) } : {}),
        },
        resolve: async (_r, args, ctx) => {
          const a = args as { id: string | number; reason?: string | null; from?: Date | null; to?: Date | null };
          const done = await actOnAlert(ctx.services.db, ctx, { id: String(a.id), action, reason: a.reason, from: a.from, to: a.to });
          ctx.services.webhooks.kick(); // its alert.* delivery, written in the action's transaction
          return done;
        },
      }),
  );

alertMutation('acknowledge', 'Someone is looking at it (an open alert only).');
alertMutation('resolve', 'Closes it: fixed. The rule’s breach count starts over.');
alertMutation('falsePositive', 'Closes it as a false alarm, with why; the rule is not changed (change it with updateMonitor).');
alertMutation('annotate', 'Marks a one-off event (default: from its opening to now): that window is left out of trailing baselines.', true);
alertMutation('rebaseline', 'After a lasting change: the value the rule measured last is its baseline from now on; closes the alert.');

const MonitorInput = builder.inputType('MonitorInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    target: t.field({ type: TargetInput, required: true }),
    metric: t.string({ required: true }),
    rules: t.field({ type: [RuleInput], required: true }),
    intervalSeconds: t.int({ description: 'Default 60; 10 to 86400.' }),
    team: t.string({ description: 'The owning team (default: your only team).' }),
    actions: t.field({ type: [ActionInput], description: 'What an alert’s opening does besides notifying (default: nothing more).' }),
  }),
});

const MonitorChangeInput = builder.inputType('MonitorChangeInput', {
  fields: (t) => ({
    name: t.string(),
    metric: t.string(),
    rules: t.field({ type: [RuleInput], description: 'Replaces the rules; a rule kept as it was keeps its state.' }),
    intervalSeconds: t.int(),
    actions: t.field({ type: [ActionInput], description: 'Replaces the actions (for alerts opened from now on).' }),
    reason: t.string(),
  }),
});

builder.mutationFields((t) => ({
  createMonitor: t.field({
    type: MonitorRef,
    description: 'Creates a monitor of a target you may read, owned by one of your teams.',
    args: { input: t.arg({ type: MonitorInput, required: true }) },
    resolve: (_r, args, ctx) => createMonitor(ctx.services.db, ctx, args.input),
  }),
  updateMonitor: t.field({
    type: MonitorRef,
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: MonitorChangeInput, required: true }) },
    resolve: (_r, args, ctx) => updateMonitor(ctx.services.db, ctx, String(args.id), args.input),
  }),
  pauseMonitor: t.field({
    type: MonitorRef,
    description: 'Pauses (paused: true) or resumes a monitor; a resumed one is evaluated at once.',
    args: { id: t.arg.id({ required: true }), paused: t.arg.boolean({ required: true }), reason: t.arg.string() },
    resolve: (_r, args, ctx) => pauseMonitor(ctx.services.db, ctx, String(args.id), args.paused, args.reason),
  }),
  deleteMonitor: t.field({
    type: MonitorRef,
    description: 'Deletes a monitor (its history is kept); its open alerts are resolved.',
    args: { id: t.arg.id({ required: true }), reason: t.arg.string() },
    resolve: (_r, args, ctx) => deleteMonitor(ctx.services.db, ctx, String(args.id), args.reason),
  }),
}));

// Runs and tasks: queries (a run, a paginated list), starting and cancelling, task logs, and the live
// `runEvents` subscription.
import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { and, asc, desc, eq, gt, gte, inArray, lt, or } from 'drizzle-orm';
import { identities } from '../../server/db/tables/identities';
import { subject } from '@casl/ability';
import { assertCan, defineAbilityFor, type AppAbility } from '../../server/auth/ability';
import { runStatuses, runs, taskStatuses, tasks, triggers, type Run, type Task } from '../../server/db/tables/runs';
import { taskEvents } from '../../server/db/tables/task-events';
import { domains, workflows, type Domain } from '../../server/db/tables/workflows';
import { AtelierError, badInput, forbidden, notFound } from '../../server/errors';
import { feedIterator, type FeedEvent } from '../../server/events/feed';
import { sessionForToken } from '../../server/auth/tokens';
import { audited } from '../../server/governance/audit';
import { assertMayIn, assertMayStartIn } from '../../server/governance/grants';
import { guard } from '../auth';
import { NodeRef } from '../node';
import { builder } from '../builder';
import type { Context } from '../context';
import { IdentityRef } from './identity';
import { ModuleVersionRef } from './modules';
import { WorkflowRef, WorkflowVersionRef } from './workflows';

const RunStatusEnum = builder.enumType('RunStatus', { values: runStatuses });
const TaskStatusEnum = builder.enumType('TaskStatus', { values: taskStatuses });
const TriggerEnum = builder.enumType('RunTrigger', { values: triggers });
export const DomainEnum = builder.enumType('Domain', { values: domains, description: 'The data boundary a workflow, run or dataset belongs to.' });

export const RunRef = builder.objectRef<Run>('Run');
export const TaskRef = builder.objectRef<Task>('Task');

interface LogLine {
  seq: number;
  stream: string;
  line: string;
  at: Date;
}
const LogLineRef = builder.objectRef<LogLine>('LogLine').implement({
  fields: (t) => ({
    stream: t.exposeString('stream'),
    line: t.exposeString('line'),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

interface Attempt {
  attempt: number;
  host: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  state: string | null;
  reason: string | null;
  message: string | null;
  durationMs: number | null;
}
const AttemptRef = builder.objectRef<Attempt>('TaskAttempt').implement({
  description: 'One attempt of a task, as its executor host reported it.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt'),
    host: t.exposeString('host', { nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    state: t.exposeString('state', { nullable: true, description: 'SUCCEEDED, FAILED, CANCELLED or TIMED_OUT; null while it runs.' }),
    reason: t.exposeString('reason', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
    durationMs: t.exposeInt('durationMs', { nullable: true }),
  }),
});

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const checkId = (id: string, what: string) => {
  if (!uuidRe.test(id)) throw badInput(`"${id}" is not a ${what} id (a UUID).`);
  return id;
};

async function loadRun(ctx: Context, id: string): Promise<Run> {
  const [run] = await ctx.services.db.select().from(runs).where(eq(runs.id, checkId(id, 'run')));
  if (!run) throw notFound(`No run ${id}.`);
  return run;
}

/** The domain of each run a request has seen, so the tasks listed under a run are checked without a lookup. */
const seenRunDomains = new WeakMap<Context, Map<string, Domain>>();
const runInstance = (run: Run, ctx: Context) => {
  let seen = seenRunDomains.get(ctx);
  if (!seen) seenRunDomains.set(ctx, (seen = new Map()));
  seen.set(run.id, run.domain);
  return run;
};

/** A task as the ability sees it: with its run's domain (a task whose run is gone counts as production). */
export const taskInstance = (task: Task, ctx: Context): object | Promise<object> => {
  const domain = seenRunDomains.get(ctx)?.get(task.runId);
  if (domain) return { ...task, domain };
  return ctx.loaders.run.load(task.runId).then((run) => ({ ...task, domain: run?.domain ?? 'production' }));
};

RunRef.implement({
  authScopes: guard('Run', 'Run', runInstance),
  interfaces: [NodeRef],
  description: 'One execution of a workflow version, with its tasks.',
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: RunStatusEnum, resolve: (r) => r.status }),
    trigger: t.field({ type: TriggerEnum, resolve: (r) => r.trigger }),
    domain: t.field({ type: DomainEnum, description: 'The data domain the run works in; its tasks reuse cached results of this domain only.', resolve: (r) => r.domain }),
    cacheNamespace: t.exposeString('cacheNamespace', { nullable: true, description: 'Its private cache namespace, if any.' }),
    refreshCache: t.exposeBoolean('refreshCache', { description: 'Whether the run executes cacheable tasks even when a result is cached.' }),
    parameters: t.expose('parameters', { type: 'JSON', nullable: true, description: 'Null (with a FORBIDDEN error) unless your teams are granted the run’s domain.' }),
    message: t.exposeString('message', { nullable: true }),
    sourceRunId: t.exposeID('sourceRunId', { nullable: true }),
    sourceRun: t.field({
      type: RunRef,
      nullable: true,
      description: 'The run this one was cloned or rerun from.',
      resolve: (r, _a, ctx) => (r.sourceRunId ? ctx.loaders.run.load(r.sourceRunId) : null),
    }),
    idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
    parentRunId: t.exposeID('parentRunId', { nullable: true, description: 'For a nested workflow’s run: the run whose workflow node started it.' }),
    childRuns: t.field({
      type: [RunRef],
      description: 'Runs started by this run’s workflow nodes.',
      resolve: (r, _a, ctx) => ctx.loaders.childRunsOf.load(r.id),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    workflow: t.field({ type: WorkflowRef, resolve: async (r, _a, ctx) => (await ctx.loaders.workflow.load(r.workflowId))! }),
    workflowVersion: t.field({ type: WorkflowVersionRef, resolve: async (r, _a, ctx) => (await ctx.loaders.workflowVersion.load(r.workflowVersionId))! }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (r, _a, ctx) => (r.createdBy ? ctx.loaders.identity.load(r.createdBy) : null) }),
    tasks: t.field({
      type: [TaskRef],
      resolve: (r, _a, ctx) => ctx.loaders.tasksOfRun.load(r.id),
    }),
  }),
});

TaskRef.implement({
  authScopes: guard('Task', 'Task', taskInstance),
  interfaces: [NodeRef],
  description: 'One node of a run: its pinned module version, parameters, attempts, timings and outcome.',
  fields: (t) => ({
    id: t.exposeID('id'),
    node: t.exposeString('node'),
    status: t.field({ type: TaskStatusEnum, resolve: (r) => r.status }),
    kind: t.exposeString('kind', { description: 'module, workflow (a nested workflow run) or map (a module fanned out over a list).' }),
    moduleRef: t.exposeString('moduleRef', { nullable: true, description: 'The module as the spec named it (a tag or a version).' }),
    moduleVersion: t.field({
      type: ModuleVersionRef,
      nullable: true,
      description: 'The version it was pinned to when the run started.',
      resolve: (r, _a, ctx) => (r.moduleVersionId ? ctx.loaders.moduleVersion.load(r.moduleVersionId) : null),
    }),
    workflowRef: t.exposeString('workflowRef', { nullable: true, description: 'For a workflow node: the nested workflow as the spec named it.' }),
    childRun: t.field({
      type: RunRef,
      nullable: true,
      description: 'For a workflow node: its current nested run.',
      resolve: (r, _a, ctx) => (r.childRunId ? ctx.loaders.run.load(r.childRunId) : null),
    }),
    mapParent: t.exposeString('mapParent', { nullable: true, description: 'For one item of a map: the map node.' }),
    mapIndex: t.exposeInt('mapIndex', { nullable: true }),
    parameters: t.expose('parameters', { type: 'JSON', nullable: true, description: 'Null (with a FORBIDDEN error) unless your teams are granted the run’s domain.' }),
    dependsOn: t.exposeStringList('dependsOn'),
    triggerRule: t.exposeString('triggerRule', { description: 'all_succeeded, all_done or any_failed.' }),
    retryAt: t.expose('retryAt', { type: 'DateTime', nullable: true, description: 'When a RETRYING task is tried again.' }),
    reusedFromTaskId: t.exposeID('reusedFromTaskId', { nullable: true, description: 'Set when a rerun reused an earlier run’s result for this node.' }),
    attempts: t.field({
      type: [AttemptRef],
      nullable: true,
      description: 'Every attempt that ended, oldest first, with its outcome.',
      resolve: async (task, _a, ctx) => {
        const rows = await ctx.loaders.attemptEventsOf.load(task.id);
        const byAttempt = new Map<number, Attempt>();
        for (const row of rows) {
          const a = byAttempt.get(row.attempt) ?? { attempt: row.attempt, host: null, startedAt: null, finishedAt: null, state: null, reason: null, message: null, durationMs: null };
          const payload = row.payload as { host?: string; outcome?: { state: string; reason?: string; message?: string }; durationMs?: number };
          a.host = payload.host ?? a.host;
          if (row.kind === 'started') a.startedAt ??= row.at;
          else {
            a.finishedAt = row.at;
            a.state = payload.outcome?.state ?? null;
            a.reason = payload.outcome?.reason ?? null;
            a.message = payload.outcome?.message ?? null;
            a.durationMs = payload.durationMs ?? null;
          }
          byAttempt.set(row.attempt, a);
        }
        return [...byAttempt.values()];
      },
    }),
    attempt: t.exposeInt('attempt'),
    maxAttempts: t.exposeInt('maxAttempts'),
    executor: t.exposeString('executor'),
    pool: t.exposeString('pool'),
    host: t.exposeString('host', { nullable: true }),
    outputs: t.expose('outputs', { type: 'JSON', nullable: true }),
    reason: t.exposeString('reason', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
    exitCode: t.exposeInt('exitCode', { nullable: true }),
    progress: t.exposeFloat('progress', { nullable: true }),
    progressMessage: t.exposeString('progressMessage', { nullable: true }),
    queuedAt: t.expose('queuedAt', { type: 'DateTime', nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    durationMs: t.int({
      nullable: true,
      resolve: (r) => (r.startedAt && r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null),
    }),
    metrics: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The latest value of each metric the current attempt reported: { name: { value, step } }.',
      resolve: (task, _a, ctx) => ctx.loaders.latestMetricsOf.load(task.id),
    }),
    logs: t.field({
      type: [LogLineRef],
      nullable: true,
      description: 'Log lines of the current attempt, oldest first.',
      args: { attempt: t.arg.int(), limit: t.arg.int({ defaultValue: 1000 }) },
      resolve: async (task, args, ctx) => {
        const limit = Math.min(Math.max(args.limit ?? 1000, 1), 10000);
        const rows = await ctx.services.db
          .select()
          .from(taskEvents)
          .where(and(eq(taskEvents.taskId, task.id), eq(taskEvents.attempt, args.attempt ?? task.attempt), eq(taskEvents.kind, 'log')))
          .orderBy(asc(taskEvents.seq));
        const lines: LogLine[] = [];
        for (const row of rows) {
          const payload = row.payload as { stream: string; lines: string[] };
          for (const line of payload.lines) lines.push({ seq: row.seq, stream: payload.stream, line, at: row.at });
        }
        return lines.slice(-limit);
      },
    }),
  }),
});

const RunFilter = builder.inputType('RunFilter', {
  fields: (t) => ({
    workflow: t.string({ description: 'Workflow name.' }),
    status: t.field({ type: [RunStatusEnum] }),
    trigger: t.field({ type: [TriggerEnum] }),
    createdBy: t.string({ description: 'Name of the identity that started the runs.' }),
    domain: t.field({ type: [DomainEnum] }),
    since: t.field({ type: 'DateTime', description: 'Runs created at or after this time.' }),
    until: t.field({ type: 'DateTime', description: 'Runs created before this time.' }),
  }),
});

const encodeCursor = (r: Run) => Buffer.from(`${r.createdAt.toISOString()}|${r.id}`).toString('base64url');
const decodeCursor = (cursor: string) => {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const at = new Date(iso ?? '');
  if (!id || !uuidRe.test(id) || Number.isNaN(at.getTime())) throw badInput('The pagination cursor is malformed; pass back an endCursor or startCursor from a previous page.');
  return { at, id };
};

builder.queryFields((t) => ({
  run: t.field({
    type: RunRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'read runs');
      const [run] = await ctx.services.db.select().from(runs).where(eq(runs.id, checkId(String(args.id), 'run')));
      return run ?? null;
    },
  }),
  runs: t.connection({
    type: RunRef,
    description: 'Runs, newest first.',
    args: { filter: t.arg({ type: RunFilter }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'list runs');
      let workflowId: string | undefined;
      if (args.filter?.workflow) {
        const [w] = await ctx.services.db.select({ id: workflows.id }).from(workflows).where(eq(workflows.name, args.filter.workflow));
        if (!w) return resolveCursorConnection({ args, toCursor: encodeCursor }, async () => [] as Run[]);
        workflowId = w.id;
      }
      let createdBy: string | undefined;
      if (args.filter?.createdBy) {
        const [who] = await ctx.services.db.select({ id: identities.id }).from(identities).where(eq(identities.name, args.filter.createdBy));
        if (!who) return resolveCursorConnection({ args, toCursor: encodeCursor }, async () => [] as Run[]);
        createdBy = who.id;
      }
      return resolveCursorConnection({ args, toCursor: encodeCursor }, async ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) => {
        const conditions = [
          workflowId ? eq(runs.workflowId, workflowId) : undefined,
          args.filter?.status?.length ? inArray(runs.status, args.filter.status) : undefined,
          args.filter?.trigger?.length ? inArray(runs.trigger, args.filter.trigger) : undefined,
          createdBy ? eq(runs.createdBy, createdBy) : undefined,
          args.filter?.domain?.length ? inArray(runs.domain, args.filter.domain) : undefined,
          args.filter?.since ? gte(runs.createdAt, args.filter.since) : undefined,
          args.filter?.until ? lt(runs.createdAt, args.filter.until) : undefined,
        ];
        if (after) {
          const c = decodeCursor(after);
          conditions.push(or(lt(runs.createdAt, c.at), and(eq(runs.createdAt, c.at), lt(runs.id, c.id))));
        }
        if (before) {
          const c = decodeCursor(before);
          conditions.push(or(gt(runs.createdAt, c.at), and(eq(runs.createdAt, c.at), gt(runs.id, c.id))));
        }
        return ctx.services.db
          .select()
          .from(runs)
          .where(and(...conditions))
          .orderBy(...(inverted ? [asc(runs.createdAt), asc(runs.id)] : [desc(runs.createdAt), desc(runs.id)]))
          .limit(limit);
      });
    },
  }),
}));

const RerunFromEnum = builder.enumType('RerunFrom', { values: ['FAILED', 'ALL', 'NODES'] as const });
const ModuleOverrideInput = builder.inputType('ModuleOverride', {
  fields: (t) => ({
    node: t.string({ required: true }),
    module: t.string({ required: true, description: '`namespace/name@tag-or-version` to use for this node instead.' }),
  }),
});

function jsonObject(value: unknown, name: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw badInput(`${name} must be a JSON object.`);
  return value as Record<string, unknown>;
}

builder.mutationFields((t) => ({
  startRun: t.field({
    type: RunRef,
    description: 'Starts a run of a workflow (its latest version unless `version` is given). Module tags are resolved and pinned now.',
    args: {
      workflow: t.arg.string({ required: true, description: 'Workflow name or id.' }),
      version: t.arg.int(),
      parameters: t.arg({ type: 'JSON' }),
      trigger: t.arg({ type: TriggerEnum, defaultValue: 'API' }),
      idempotencyKey: t.arg.string({ description: 'Retrying a request with the same key returns the run the first one started.' }),
      useModules: t.arg.stringList({ description: 'Module versions to use wherever the workflow uses those modules, e.g. `["ml/train@7"]` to try a fresh alpha.' }),
      domain: t.arg({ type: DomainEnum, description: 'Default: the workflow’s own domain. Nested runs, clones and reruns keep it.' }),
      refreshCache: t.arg.boolean({ defaultValue: false, description: 'Execute every cacheable task even when its result is cached, replacing the entries.' }),
      hotCluster: t.arg.string({ description: 'Run the module nodes that name no hot cluster of their own on this one.' }),
      cacheNamespace: t.arg.string({ description: 'Experimentation runs only: a private cache namespace; the run reuses and feeds only entries of that namespace.' }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'start', 'Run', 'start runs');
      const domain = args.domain ?? (await workflowDomain(ctx, args.workflow));
      if (domain) assertMayStartIn(ctx.ability, domain);
      return audited(ctx.services.db, () => ctx.services.orchestrator.startRun(
        {
          workflow: args.workflow,
          version: args.version ?? undefined,
          parameters: jsonObject(args.parameters, 'parameters'),
          trigger: args.trigger ?? 'API',
          idempotencyKey: args.idempotencyKey ?? undefined,
          useModules: args.useModules ?? undefined,
          domain: args.domain ?? undefined,
          refreshCache: args.refreshCache ?? false,
          hotCluster: args.hotCluster ?? undefined,
          cacheNamespace: args.cacheNamespace ?? undefined,
        },
        ctx.identity,
      ));
    },
  }),
  cloneRun: t.field({
    type: RunRef,
    description: 'Starts a new run of the same workflow version with the same pinned module versions, changing some parameters.',
    args: { id: t.arg.id({ required: true }), parameters: t.arg({ type: 'JSON', description: 'Run parameters to change; the others keep the source run’s values.' }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'start', 'Run', 'clone runs');
      await assertMayRestart(ctx, String(args.id));
      return audited(ctx.services.db, () => ctx.services.orchestrator.cloneRun(String(args.id), jsonObject(args.parameters, 'parameters'), ctx.identity));
    },
  }),
  rerunRun: t.field({
    type: RunRef,
    description:
      'Starts a new run that reuses the source run’s succeeded results and executes again only what is asked (and everything downstream of it): FAILED (what did not succeed), ALL, or NODES. `modules` swaps the module version of chosen nodes.',
    args: {
      id: t.arg.id({ required: true }),
      from: t.arg({ type: RerunFromEnum, required: true }),
      nodes: t.arg.stringList(),
      modules: t.arg({ type: [ModuleOverrideInput] }),
    },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'start', 'Run', 'rerun runs');
      await assertMayRestart(ctx, String(args.id));
      return audited(ctx.services.db, () => ctx.services.orchestrator.rerunRun(
        String(args.id),
        { from: args.from, nodes: args.nodes ?? undefined, modules: Object.fromEntries((args.modules ?? []).map((m) => [m.node, m.module])) },
        ctx.identity,
      ));
    },
  }),
  cancelRun: t.field({
    type: RunRef,
    description: 'Cancels a run: queued tasks never start, running ones are stopped on their executors.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'cancel', 'Run', 'cancel runs');
      const run = await loadRun(ctx, String(args.id));
      assertMayIn(ctx.ability, 'cancel', 'Run', run.domain, 'cancel runs');
      return ctx.services.orchestrator.cancelRun(run.id, ctx.identity);
    },
  }),
}));

// --- live events -------------------------------------------------------------------------------------------

type Of<K extends FeedEvent['kind']> = Extract<FeedEvent, { kind: K }>;
const eventFields = <T extends FeedEvent>(t: any) => ({
  runId: t.exposeID('runId'),
  at: t.string({ resolve: (e: T) => e.at }),
});

const RunStatusEvent = builder.objectRef<Of<'run-status'>>('RunStatusEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    // Not `status`: a union member's field may not clash in type with TaskStatusEvent.status.
    runStatus: t.field({ type: RunStatusEnum, resolve: (e) => e.status }),
    message: t.exposeString('message', { nullable: true }),
  }),
});
const TaskStatusEvent = builder.objectRef<Of<'task-status'>>('TaskStatusEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    status: t.field({ type: TaskStatusEnum, resolve: (e) => e.status }),
    attempt: t.exposeInt('attempt'),
    reason: t.exposeString('reason', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
  }),
});
const TaskProgressEvent = builder.objectRef<Of<'task-progress'>>('TaskProgressEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    fraction: t.exposeFloat('fraction', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
  }),
});
const TaskLogEvent = builder.objectRef<Of<'task-log'>>('TaskLogEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    stream: t.exposeString('stream'),
    lines: t.exposeStringList('lines'),
  }),
});
const TaskMetricEvent = builder.objectRef<Of<'task-metric'>>('TaskMetricEvent').implement({
  fields: (t) => ({
    ...eventFields(t),
    taskId: t.exposeID('taskId'),
    node: t.exposeString('node'),
    metrics: t.expose('metrics', { type: 'JSON' }),
    step: t.exposeInt('step', { nullable: true }),
  }),
});

const typeOfKind = {
  'run-status': 'RunStatusEvent',
  'task-status': 'TaskStatusEvent',
  'task-progress': 'TaskProgressEvent',
  'task-log': 'TaskLogEvent',
  'task-metric': 'TaskMetricEvent',
} as const;

const RunEvent = builder.unionType('RunEvent', {
  types: [RunStatusEvent, TaskStatusEvent, TaskProgressEvent, TaskLogEvent, TaskMetricEvent],
  resolveType: (e) => typeOfKind[(e as FeedEvent).kind],
});

const terminalRun = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/**
 * Checks a live subscription's access again every ATELIER_TOKEN_RECHECK_MS, over graphql-ws and SSE alike: the
 * token (revoked or expired: UNAUTHENTICATED) and the ability rebuilt from the identity's current teams and grants
 * (a revoked grant or a removal from a team: FORBIDDEN, when `stillAllowed` no longer holds). Either ends it.
 */
function watchAccess(ctx: Context, abort: AbortController, stillAllowed?: (ability: AppAbility) => boolean) {
  let ended: AtelierError | null = null;
  const end = (error: AtelierError) => {
    ended = error;
    abort.abort();
  };
  const timer = setInterval(() => {
    void (async () => {
      const session = await sessionForToken(ctx.services.db, ctx.token);
      if (!session) return end(new AtelierError('UNAUTHENTICATED', 'Your token was revoked or has expired, so this subscription has ended; subscribe again with a valid token.'));
      const ability = defineAbilityFor(session.identity, session.grants, session.scopes);
      watched.set(ctx, ability);
      if (stillAllowed && !stillAllowed(ability)) end(forbidden('Your access to this run’s events changed (a grant was revoked or you left a team), so this subscription has ended.'));
    })().catch(() => undefined); // a failed check is retried at the next one
  }, ctx.services.config.tokenRecheckMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    /** The ability as of the last check (the request's own until the first). */
    ability: () => watched.get(ctx) ?? ctx.ability,
    assertStillValid() {
      if (ended) throw ended;
    },
  };
}
const watched = new WeakMap<Context, AppAbility>();

/** Whether the ability lets its holder read a run's events (its data: logs, metrics, messages). */
const mayWatch = (ability: AppAbility, run: Pick<Run, 'domain'>) => ability.can('read', subject('Run', { domain: run.domain }), 'events');

builder.subscriptionField('runEvents', (t) =>
  t.field({
    type: RunEvent,
    description:
      'Everything that happens in a run, live: first the current state (the run and each task), then status changes, progress, log lines and metrics. Completes after the run ends. Ends with FORBIDDEN if the access to the run’s domain is revoked meanwhile.',
    args: { runId: t.arg.id({ required: true }) },
    // Authorized when subscribing (authorizeOnSubscribe): the caller must be able to read this run's events.
    authScopes: async (_root, args, ctx) => {
      const run = uuidRe.test(String(args.runId)) ? await ctx.loaders.run.load(String(args.runId)) : null;
      return run ? mayWatch(ctx.ability, run) : ctx.ability.can('read', 'Run'); // an unknown run: the resolver says NOT_FOUND
    },
    unauthorizedError: () => forbidden('A run’s events hold its data (logs, metrics, messages): watching them needs a grant to the run’s domain for one of your teams; an admin grants one with `npx atelier team grant TEAM DOMAIN`.'),
    subscribe: async function* (_root, args, ctx) {
      const runId = checkId(String(args.runId), 'run');
      const abort = new AbortController();
      const run = await loadRun(ctx, runId);
      const watch = watchAccess(ctx, abort, (ability) => mayWatch(ability, run));
      // Subscribe before reading the snapshot, so nothing that happens in between is missed.
      const live = feedIterator(ctx.services.feed, runId, abort.signal);
      try {
        const snapshot = await ctx.services.db.select().from(tasks).where(eq(tasks.runId, runId)).orderBy(asc(tasks.node));
        const [current] = await ctx.services.db.select().from(runs).where(eq(runs.id, runId));
        const at = new Date().toISOString();
        for (const task of snapshot) {
          yield { kind: 'task-status', runId, taskId: task.id, node: task.node, status: task.status, attempt: task.attempt, reason: task.reason, message: task.message, at } as FeedEvent;
        }
        yield { kind: 'run-status', runId, status: current!.status, message: current!.message, at } as FeedEvent;
        if (terminalRun.has(current!.status)) return;
        // A change that landed between subscribing and reading the snapshot arrives live too: each state the
        // snapshot already showed is passed over once, so a subscriber sees every change exactly once.
        const shown = new Map<string, string>(snapshot.map((task) => [task.id, `${task.status}|${task.attempt}|${task.message ?? ''}`]));
        shown.set(runId, `${current!.status}|${current!.message ?? ''}`);
        for await (const event of live) {
          const key = event.kind === 'task-status' ? event.taskId : event.kind === 'run-status' ? runId : null;
          if (key !== null && shown.has(key)) {
            const state = event.kind === 'task-status' ? `${event.status}|${event.attempt}|${event.message ?? ''}` : event.kind === 'run-status' ? `${event.status}|${event.message ?? ''}` : '';
            const seen = shown.get(key) === state;
            shown.delete(key);
            if (seen) continue;
          }
          yield event;
          if (event.kind === 'run-status' && terminalRun.has(event.status)) return;
        }
        watch.assertStillValid();
      } finally {
        watch.stop();
        abort.abort();
      }
    },
    resolve: (event) => event,
  }),
);

builder.subscriptionField('allRunEvents', (t) =>
  t.field({
    type: RunEvent,
    description: 'Every event of every run whose events you may read, live, with no snapshot: the feed behind live run lists and monitors.',
    authScopes: { can: ['read', 'Run'] },
    subscribe: async function* (_root, _args, ctx) {
      const abort = new AbortController();
      const watch = watchAccess(ctx, abort);
      // Each run's domain, read once: an event is passed on only if its run's events are readable now.
      const domainOf = new Map<string, Promise<Domain | null>>();
      const domainOfRun = (id: string) => {
        let domain = domainOf.get(id);
        if (!domain) {
          if (domainOf.size > 10_000) domainOf.clear();
          domain = ctx.services.db.select({ domain: runs.domain }).from(runs).where(eq(runs.id, id)).then(([r]) => r?.domain ?? null);
          domainOf.set(id, domain);
        }
        return domain;
      };
      try {
        for await (const event of feedIterator(ctx.services.feed, '*', abort.signal)) {
          const domain = await domainOfRun(event.runId);
          if (domain && mayWatch(watch.ability(), { domain })) yield event;
        }
        watch.assertStillValid();
      } finally {
        watch.stop();
        abort.abort();
      }
    },
    resolve: (event) => event,
  }),
);

/** The domain a new run of a workflow gets by default; undefined when there is no such workflow (startRun says so). */
export async function workflowDomain(ctx: Context, ref: string) {
  const [row] = await ctx.services.db.select({ domain: workflows.domain }).from(workflows).where(uuidRe.test(ref) ? or(eq(workflows.id, ref), eq(workflows.name, ref)) : eq(workflows.name, ref));
  return row?.domain;
}

/** Clones and reruns keep their source's domain, so starting them needs the same grant. */
async function assertMayRestart(ctx: Context, runId: string) {
  const source = uuidRe.test(runId) ? await ctx.loaders.run.load(runId) : null;
  if (source) assertMayStartIn(ctx.ability, source.domain);
}

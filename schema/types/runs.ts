// The Run object: one execution of a workflow version, its fields, and the instance its access is checked as.
// Its tasks are in tasks.ts, the run queries, mutations and live events in run-*.ts.

import type { Run } from '../../server/db/tables/runs';
import { childRunsOf, runsByIds } from '../../server/runs/queries';
import type { Domain } from '../../server/vocabulary';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { NodeRef } from '../node';
import { DomainEnum, RunStatusEnum, TriggerEnum } from './enums';
import { IdentityRef } from './identity';
import { WorkflowRef, WorkflowVersionRef } from './workflows';

/** A run by id, loaded once per request however many fields name it (a missing one is null). */
export const RunRef = builder.loadableObjectRef('Run', {
  load: (ids: string[], ctx: Context) => runsByIds(ctx.services.db, ids),
  sort: (run) => run.id,
});

/** The domain of each run a request has seen, so the tasks listed under a run are checked without a lookup. */
const seenRunDomains = new WeakMap<Context, Map<string, Domain>>();
const runInstance = (run: Run, ctx: Context) => {
  let seen = seenRunDomains.get(ctx);
  if (!seen) seenRunDomains.set(ctx, (seen = new Map()));
  seen.set(run.id, run.domain);
  return run;
};

/** The domain of a run this request has already checked, if it has. */
export const seenRunDomain = (ctx: Context, runId: string): Domain | undefined => seenRunDomains.get(ctx)?.get(runId);

RunRef.implement({
  authScopes: guard('Run', 'Run', runInstance),
  interfaces: [NodeRef],
  description: 'One execution of a workflow version, with its tasks.',
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: RunStatusEnum, resolve: (r) => r.status }),
    trigger: t.field({ type: TriggerEnum, resolve: (r) => r.trigger }),
    domain: t.field({
      type: DomainEnum,
      description: 'The data domain the run works in; its tasks reuse cached results of this domain only.',
      resolve: (r) => r.domain,
    }),
    cacheNamespace: t.exposeString('cacheNamespace', { nullable: true, description: 'Its private cache namespace, if any.' }),
    refreshCache: t.exposeBoolean('refreshCache', { description: 'Whether the run executes cacheable tasks even when a result is cached.' }),
    priority: t.exposeInt('priority', {
      description: 'In a saturated pool, tasks of higher-priority runs dispatch first (-10..10, default 0; aged while waiting).',
    }),
    parameters: t.expose('parameters', {
      type: 'JSON',
      nullable: true,
      description: 'Null (with a FORBIDDEN error) unless your teams are granted the run’s domain.',
    }),
    message: t.exposeString('message', {
      nullable: true,
      description:
        'Why the run waits, failed or was cancelled, in public terms: a failed run names its failed nodes and their statuses; their messages are on the tasks, behind the domain’s grant.',
    }),
    sourceRunId: t.exposeID('sourceRunId', { nullable: true }),
    sourceRun: t.field({
      type: RunRef,
      nullable: true,
      description: 'The run this one was cloned or rerun from.',
      resolve: (r) => r.sourceRunId,
    }),
    idempotencyKey: t.exposeString('idempotencyKey', {
      nullable: true,
      description: 'The key the run was started with; null (with a FORBIDDEN error) unless you started the run.',
    }),
    parentRunId: t.exposeID('parentRunId', { nullable: true, description: 'For a nested workflow’s run: the run whose workflow node started it.' }),
    childRuns: t.loadableGroup({
      type: RunRef,
      description: 'Runs started by this run’s workflow nodes.',
      load: (ids: string[], ctx: Context) => childRunsOf(ctx.services.db, ids),
      // Typed as the ref's shape (a key or a row), but the load above returns rows only.
      group: (run) => (run as Run).parentRunId!,
      resolve: (r) => r.id,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    timeoutSeconds: t.float({
      nullable: true,
      description: 'Its time limit (the spec’s `timeoutSeconds` or startRun’s), counted from its admission; null: none.',
      resolve: (r) => (r.timeoutMs === null ? null : r.timeoutMs / 1000),
    }),
    deadlineAt: t.expose('deadlineAt', {
      type: 'DateTime',
      nullable: true,
      description:
        'When it ends FAILED ("ran past its time limit of N s") if still open: admission plus its time limit, never later than its parent run’s. Null while it waits for admission, or with no limit.',
    }),
    workflow: t.field({
      type: WorkflowRef,
      nullable: true,
      description: 'Null for a run logged from outside a workflow (trigger EXTERNAL).',
      resolve: (r) => r.workflowId,
    }),
    workflowVersion: t.field({ type: WorkflowVersionRef, nullable: true, resolve: (r) => r.workflowVersionId }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (r) => r.createdBy }),
  }),
});

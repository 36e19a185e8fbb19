// The run mutations: start, clone, rerun and cancel. The orchestrator does the work; these check the caller's
// grants to the run's domain first.

import { audited } from '../../server/audit/audit';
import { assertCan } from '../../server/auth/ability';
import type { Run } from '../../server/db/tables/runs';
import { isUuid } from '../../server/db/uuid';
import { badInput } from '../../server/errors';
import { assertMayIn, assertMayStartIn, assertMayStartWorkflowIn, workflowStartRefusal } from '../../server/governance/grants';
import { assertCancellable } from '../../server/orchestrator/cancel';
import type { StartRunInput } from '../../server/orchestrator/orchestrator';
import { findRun } from '../../server/runs/queries';
import type { Domain } from '../../server/vocabulary';
import { workflowDomainRef } from '../../server/workflows/queries';
import { builder } from '../builder';
import type { Context } from '../context';
import { checkId } from '../ids';
import { DomainEnum, RerunFromEnum, StartTriggerEnum } from './enums';
import { RunRef } from './runs';

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

/** Clones and reruns keep their source's domain, so starting them needs the same grant. */
export async function assertMayRestart(ctx: Context, runId: string, what: string) {
  assertCan(ctx.ability, 'start', 'Run', what);
  const source = isUuid(runId) ? await RunRef.getDataloader(ctx).load(runId) : null;
  if (source) assertMayStartIn(ctx.ability, source.domain);
}

/**
 * Whether the caller may start a run of `workflow` in `domain` (default: the workflow's own); a refusal off the
 * workflow's domain is audited at once (asking about its own domain, as `viewerCan.start` does, never is).
 */
export async function assertMayStartWorkflow(ctx: Context, workflowRef: string, domainArg?: Domain | null, version?: number | null) {
  assertCan(ctx.ability, 'start', 'Run', 'start runs');
  const workflow = await workflowDomainRef(ctx.services.db, workflowRef, version ?? undefined);
  const domain = domainArg ?? workflow?.domain;
  if (domain) assertMayStartIn(ctx.ability, domain);
  // Outside the workflow's own domain only for who may read its spec (the orchestrator checks it again, for every start).
  if (workflow && domain) await assertMayStartWorkflowIn(ctx.services.db, ctx.ability, ctx.identity, workflow, domain);
}

/**
 * startRun's checks, as {@link assertMayStartWorkflow} makes them, without a read of their own: what needs no workflow
 * now, the rest handed to the orchestrator, which makes it on the workflow its transaction reads (a refusal is thrown
 * there, and audited by `audited` once the transaction has rolled back).
 */
function startChecks(ctx: Context, domainArg?: Domain | null): StartRunInput['authorize'] {
  assertCan(ctx.ability, 'start', 'Run', 'start runs');
  if (domainArg) assertMayStartIn(ctx.ability, domainArg);
  return (workflow, runDomain) => {
    assertMayStartIn(ctx.ability, runDomain);
    const refused = workflowStartRefusal(ctx.ability, ctx.identity, workflow, runDomain);
    if (refused) throw refused;
  };
}

/** Whether the caller may cancel the run (a refusal names the grant; an ended run has nothing to cancel). */
export function assertMayCancel(ctx: Context, run: Pick<Run, 'id' | 'status' | 'domain'>) {
  assertCan(ctx.ability, 'cancel', 'Run', 'cancel runs');
  assertMayIn(ctx.ability, 'cancel', 'Run', run.domain, 'cancel runs');
  assertCancellable(run);
}

builder.mutationFields((t) => ({
  startRun: t.field({
    type: RunRef,
    description: 'Starts a run of a workflow (its latest version unless `version` is given). Module tags are resolved and pinned now.',
    args: {
      workflow: t.arg.string({ required: true, description: 'Workflow name or id.' }),
      version: t.arg.int(),
      parameters: t.arg({ type: 'JSON' }),
      trigger: t.arg({ type: StartTriggerEnum, defaultValue: 'API', description: 'How you started it (recorded on the run).' }),
      idempotencyKey: t.arg.string({ description: 'Retrying a request with the same key returns the run the first one started.' }),
      useModules: t.arg.stringList({
        description: 'Module versions to use wherever the workflow uses those modules, e.g. `["ml/train@7"]` to try a fresh alpha.',
      }),
      domain: t.arg({ type: DomainEnum, description: 'Default: the workflow’s own domain. Nested runs, clones and reruns keep it.' }),
      refreshCache: t.arg.boolean({ defaultValue: false, description: 'Execute every cacheable task even when its result is cached, replacing the entries.' }),
      hotCluster: t.arg.string({ description: 'Run the module nodes that name no hot cluster of their own on this one.' }),
      cacheNamespace: t.arg.string({
        description: 'Experimentation runs only: a private cache namespace; the run reuses and feeds only entries of that namespace.',
      }),
      experiment: t.arg.string({
        description: 'The experiment to group the run in (made on first use, by name); default: the workflow’s own.',
      }),
      priority: t.arg.int({
        description:
          'From -10 to 10, default 0: in a saturated pool, tasks of higher-priority runs dispatch first (aged while waiting, see docs/batch-inference.md).',
      }),
      timeoutSeconds: t.arg.float({
        description:
          'The run’s time limit, overriding the spec’s `timeoutSeconds`: more than 0, at most 604800 (7 days). Counted from admission; past it the run ends FAILED.',
      }),
    },
    resolve: async (_root, args, ctx) => {
      const authorize = startChecks(ctx, args.domain);
      return audited(ctx.services.db, () =>
        ctx.services.orchestrator.startRun(
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
            experiment: args.experiment ?? undefined,
            priority: args.priority ?? undefined,
            timeoutSeconds: args.timeoutSeconds ?? undefined,
            scopes: ctx.scopes,
            authorize,
          },
          ctx.identity,
        ),
      );
    },
  }),
  cloneRun: t.field({
    type: RunRef,
    description: 'Starts a new run of the same workflow version with the same pinned module versions, changing some parameters.',
    args: {
      id: t.arg.id({ required: true }),
      parameters: t.arg({ type: 'JSON', description: 'Run parameters to change; the others keep the source run’s values.' }),
    },
    resolve: async (_root, args, ctx) => {
      await assertMayRestart(ctx, String(args.id), 'clone runs');
      return audited(ctx.services.db, () =>
        ctx.services.orchestrator.cloneRun(String(args.id), jsonObject(args.parameters, 'parameters'), ctx.identity, ctx.scopes),
      );
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
      await assertMayRestart(ctx, String(args.id), 'rerun runs');
      return audited(ctx.services.db, () =>
        ctx.services.orchestrator.rerunRun(
          String(args.id),
          { from: args.from, nodes: args.nodes ?? undefined, modules: Object.fromEntries((args.modules ?? []).map((m) => [m.node, m.module])) },
          ctx.identity,
          ctx.scopes,
        ),
      );
    },
  }),
  cancelRun: t.field({
    type: RunRef,
    description: 'Cancels a run: queued tasks never start, running ones are stopped on their executors.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'cancel', 'Run', 'cancel runs');
      const run = await findRun(ctx.services.db, checkId(String(args.id), 'run'));
      // the state is checked again under the run's lock
      assertMayCancel(ctx, run);
      return ctx.services.orchestrator.cancelRun(run.id, ctx.identity);
    },
  }),
}));

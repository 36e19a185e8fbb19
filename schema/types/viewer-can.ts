// `viewerCan`: what the caller may do to an object, asked before offering a button. Each answer runs the very
// check the mutation runs (the same function, exported beside the mutation or in its service), so the dashboards
// and the API never disagree; a refusal's message is the reason. Asking changes nothing and audits nothing: the
// checks that audit a refusal do it only inside `audited` (a mutation attempted), never here.
import type { Dataset, Declassification } from '../../server/db/tables/governance';
import type { Module, ModuleTag } from '../../server/db/tables/modules';
import type { ModelPromotion, RegisteredModel } from '../../server/db/tables/registry';
import type { Run } from '../../server/db/tables/runs';
import type { Schedule } from '../../server/db/tables/schedules';
import type { Workflow } from '../../server/db/tables/workflows';
import { AtelierError, forbidden } from '../../server/errors';
import { assertMayManage } from '../../server/governance/catalog';
import { assertMayDecide } from '../../server/governance/declassification';
import { rollbackTarget } from '../../server/modules/tags';
import { assertMayReadPinnedModels } from '../../server/orchestrator/restart-checks';
import { assertMayChangeRegistry, assertMayWriteModel } from '../../server/registry/access';
import { assertMayDecidePromotion } from '../../server/registry/promotions';
import { ownerOf, ownershipAllows, ownershipRefusal, owningTeamName } from '../../server/teams/ownership';
import { assertMayWriteNamespace } from '../../server/teams/teams';
import { builder } from '../builder';
import type { Context } from '../context';
import { DatasetRef, DeclassificationRef } from './datasets';
import { ModelRef, PromotionRef } from './models';
import { ModuleRef, ModuleTagRef } from './modules';
import { assertMayCancel, assertMayRestart, assertMayStartWorkflow } from './run-mutations';
import { RunRef } from './runs';
import { assertMayChangeSchedule, ScheduleRef } from './schedules';
import { WorkflowRef } from './workflows';

export interface Permission {
  allowed: boolean;
  reason: string | null;
}

const PermissionRef = builder.objectRef<Permission>('Permission').implement({
  description: 'Whether the caller may take an action now, and if not, why (the message the action itself would answer with).',
  fields: (t) => ({
    allowed: t.exposeBoolean('allowed'),
    reason: t.exposeString('reason', { nullable: true, description: 'Why not, and what to do about it; null when allowed.' }),
  }),
});

/** Runs a mutation's own check: allowed when it passes, the refusal's message when it throws a domain error. */
export async function permission(check: () => unknown): Promise<Permission> {
  try {
    await check();
    return { allowed: true, reason: null };
  } catch (error) {
    if (error instanceof AtelierError) return { allowed: false, reason: error.message };
    throw error;
  }
}

/** One `XViewerCan` type: a Permission field per action, each resolved by its check. */
export function viewerCanType<T extends object>(
  name: string,
  description: string,
  checks: Record<string, { description: string; check(parent: T, ctx: Context): unknown }>,
) {
  return builder.objectRef<T>(name).implement({
    description,
    fields: (t) =>
      Object.fromEntries(
        Object.entries(checks).map(([action, { description, check }]) => [
          action,
          t.field({ type: PermissionRef, description, resolve: (parent, _args, ctx) => permission(() => check(parent, ctx)) }),
        ]),
      ),
  });
}

/** A restart's own checks: the grant to restart in the run's domain, then its pins as the start checks them. */
async function assertMayRestartRun(ctx: Context, run: Run, what: string) {
  await assertMayRestart(ctx, run.id, what);
  await assertMayReadPinnedModels(ctx.services.db, run.id, ctx.identity, ctx.scopes);
}

const RunViewerCan = viewerCanType<Run>('RunViewerCan', 'What the caller may do to this run.', {
  cancel: { description: 'cancelRun (only while the run is queued or running).', check: (run, ctx) => assertMayCancel(ctx, run) },
  clone: { description: 'cloneRun (its pinned model versions included).', check: (run, ctx) => assertMayRestartRun(ctx, run, 'clone runs') },
  rerun: { description: 'rerunRun (its pinned model versions included).', check: (run, ctx) => assertMayRestartRun(ctx, run, 'rerun runs') },
});
builder.objectField(RunRef, 'viewerCan', (t) => t.field({ type: RunViewerCan, resolve: (run) => run as Run }));

const WorkflowViewerCan = viewerCanType<Workflow>('WorkflowViewerCan', 'What the caller may do with this workflow.', {
  start: { description: 'startRun in the workflow’s own domain.', check: (w, ctx) => assertMayStartWorkflow(ctx, w.id) },
});
builder.objectField(WorkflowRef, 'viewerCan', (t) => t.field({ type: WorkflowViewerCan, resolve: (w) => w as Workflow }));

const ScheduleViewerCan = viewerCanType<Schedule>('ScheduleViewerCan', 'What the caller may do to this schedule.', {
  change: {
    description: 'pauseSchedule, resumeSchedule, updateSchedule and deleteSchedule.',
    check: async (s, ctx) => {
      await assertMayChangeSchedule(ctx, s.id, 'change schedules');
      // The change itself checks (and audits) ownership; asking only reads it.
      if (!(await ownershipAllows(ctx.services.db, ownerOf(ctx.identity, ctx.ability), s))) {
        throw forbidden(ownershipRefusal(`Schedule "${s.name}"`, await owningTeamName(ctx.services.db, s), 'change'));
      }
    },
  },
});
builder.objectField(ScheduleRef, 'viewerCan', (t) => t.field({ type: ScheduleViewerCan, resolve: (s) => s }));

const ModuleViewerCan = viewerCanType<Module>('ModuleViewerCan', 'What the caller may do to this module.', {
  promote: {
    description: 'setModuleTag (and publishing into its namespace).',
    check: (m, ctx) => assertMayWriteNamespace(ctx.services.db, ctx.ability, m.namespace),
  },
});
builder.objectField(ModuleRef, 'viewerCan', (t) => t.field({ type: ModuleViewerCan, resolve: (m) => m as Module }));

const ModuleTagViewerCan = viewerCanType<ModuleTag>('ModuleTagViewerCan', 'What the caller may do to this tag.', {
  rollback: {
    description: 'rollbackModuleTag: needs write access to the namespace and an earlier version in the tag’s history.',
    check: async (tag, ctx) => rollbackTarget(ctx.services.db, ctx.ability, await ModuleRef.getDataloader(ctx).load(tag.moduleId), tag.tag),
  },
});
builder.objectField(ModuleTagRef, 'viewerCan', (t) => t.field({ type: ModuleTagViewerCan, resolve: (tag) => tag }));

const DeclassificationViewerCan = viewerCanType<Declassification>('DeclassificationViewerCan', 'What the caller may do to this request.', {
  decide: {
    description: 'decideDeclassification (approve or reject): pending, not by its author, by an admin or a member of the owning team.',
    check: async (d, ctx) => assertMayDecide(ctx.services.db, ctx.ability, ctx.identity, d, await DatasetRef.getDataloader(ctx).load(d.datasetId)),
  },
});
builder.objectField(DeclassificationRef, 'viewerCan', (t) => t.field({ type: DeclassificationViewerCan, resolve: (d) => d }));

const DatasetViewerCan = viewerCanType<Dataset>('DatasetViewerCan', 'What the caller may do to this dataset.', {
  manageCatalog: {
    description: 'publishDatasetToCatalog and withdrawDatasetFromCatalog (the blockers are on `catalog`).',
    check: (d, ctx) => assertMayManage(ctx.services.db, ctx.ability, ctx.identity, d, 'catalog.publish'),
  },
});
builder.objectField(DatasetRef, 'viewerCan', (t) => t.field({ type: DatasetViewerCan, resolve: (d) => d as Dataset }));

const ModelViewerCan = viewerCanType<RegisteredModel>('ModelViewerCan', 'What the caller may do to this model.', {
  requestPromotion: {
    description: 'requestModelPromotion (writers of the model’s namespace ask; the version is checked when asking).',
    check: (m, ctx) => {
      assertMayChangeRegistry(ctx.ability, ctx.identity, 'model.promotion.request');
      return assertMayWriteModel(ctx.services.db, ctx.ability, ctx.identity, m, 'model.promotion.request');
    },
  },
  moveAliases: {
    description: 'setModelAlias and rollbackModelAlias (writers of the namespace; a production rollback also needs the production grant).',
    check: (m, ctx) => {
      assertMayChangeRegistry(ctx.ability, ctx.identity, 'model.alias.set');
      return assertMayWriteModel(ctx.services.db, ctx.ability, ctx.identity, m, 'model.alias.move');
    },
  },
});
builder.objectField(ModelRef, 'viewerCan', (t) => t.field({ type: ModelViewerCan, resolve: (m) => m }));

const PromotionViewerCan = viewerCanType<ModelPromotion>('ModelPromotionViewerCan', 'What the caller may do to this promotion request.', {
  decide: {
    description: 'decideModelPromotion (approve or reject): pending, not by its requester, by a holder of the production grant.',
    check: async (p, ctx) => {
      assertMayChangeRegistry(ctx.ability, ctx.identity, 'model.promotion.decide');
      return assertMayDecidePromotion(ctx.services.db, ctx.ability, ctx.identity, p, await ModelRef.getDataloader(ctx).load(p.modelId));
    },
  },
});
builder.objectField(PromotionRef, 'viewerCan', (t) => t.field({ type: PromotionViewerCan, resolve: (p) => p }));

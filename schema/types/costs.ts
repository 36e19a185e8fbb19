// Cost figures: execution time and GPU time of the tasks that executed, by team, workflow or model, over a period;
// shaped like the cache savings (cache.ts cacheStats). A team's members see its own, admins all.
import { assertCan } from '../../server/auth/ability';
import { type CostRow, costFigures } from '../../server/runs/costs';
import { builder } from '../builder';
import { CostGroupingEnum } from './enums';

const CostFiguresRef = builder.objectRef<CostRow>('CostFigures').implement({
  description: 'What one group’s executed tasks cost over a period: execution time, and that time × the GPUs each asked for.',
  fields: (t) => ({
    group: t.exposeString('group', { description: 'The team owning the workflow, the workflow, or the model a task served or registered.' }),
    tasks: t.exposeInt('tasks', { description: 'Tasks that executed (cache hits and reused results executed nothing).' }),
    executionHours: t.exposeFloat('executionHours', { description: 'Their last attempts’ execution time, in hours.' }),
    gpuHours: t.exposeFloat('gpuHours', { description: 'Execution time × GPUs asked for, in hours; 0 for CPU-only tasks.' }),
  }),
});

builder.queryFields((t) => ({
  costs: t.field({
    type: [CostFiguresRef],
    description:
      'Execution hours and GPU hours of the tasks that ended since a time, by team, workflow or model. Your teams’ workflows only; an admin sees every team’s.',
    args: { since: t.arg({ type: 'DateTime', required: true }), groupBy: t.arg({ type: CostGroupingEnum, defaultValue: 'team' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Run', 'read cost figures');
      const viewer = ctx.identity.role === 'admin' ? ({ admin: true } as const) : ({ admin: false, identityId: ctx.identity.id } as const);
      return costFigures(ctx.services.db, args.since, args.groupBy ?? 'team', viewer);
    },
  }),
}));

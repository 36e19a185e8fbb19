// `viewerCan` for the operating objects (#19): alerts, monitors and triggers. Each answer runs the checks the
// mutation runs (role first, then ownership by the monitor's or trigger's team), so the dashboards offer exactly the
// buttons the API would accept; asking audits nothing (see viewer-can.ts).
import { assertCan } from '../../server/auth/ability';
import type { Alert, Monitor } from '../../server/db/tables/monitoring';
import type { WorkflowTrigger } from '../../server/db/tables/triggers';
import { assertMayIn } from '../../server/governance/grants';
import { assertMayOperate } from '../../server/monitoring/access';
import { assertOwns as assertOwnedBy, type Owned, ownerOf } from '../../server/teams/ownership';
import { moreGuarded } from '../../server/vocabulary';
import { builder } from '../builder';
import type { Context } from '../context';
import { AlertRef, MonitorRef } from './monitoring-monitors';
import { TriggerRef } from './triggers';
import { viewerCanType } from './viewer-can';
import { WorkflowRef } from './workflows';

const assertOwns = (ctx: Context, owned: Owned, label: string, verb: string) =>
  assertOwnedBy(ctx.services.db, ownerOf(ctx.identity, ctx.ability), owned, label, verb);

const caller = (ctx: Context) => ({ identity: ctx.identity, ability: ctx.ability });

const AlertViewerCan = viewerCanType<Alert>('AlertViewerCan', 'What the caller may do to this alert.', {
  act: {
    description: 'acknowledgeAlert, resolveAlert, markAlertFalsePositive, annotateAlert and rebaselineAlert (the alert’s state decides which apply).',
    check: async (alert, ctx) => {
      assertMayOperate(caller(ctx), 'alert.act');
      const monitor = alert.monitorId ? await MonitorRef.getDataloader(ctx).load(alert.monitorId) : null;
      await assertOwns(ctx, { teamId: alert.teamId, createdBy: monitor?.createdBy ?? null }, `Alert "${alert.title}"`, 'act on');
    },
  },
});
builder.objectField(AlertRef, 'viewerCan', (t) => t.field({ type: AlertViewerCan, resolve: (a) => a }));

const MonitorViewerCan = viewerCanType<Monitor>('MonitorViewerCan', 'What the caller may do to this monitor.', {
  change: {
    description: 'updateMonitor, pauseMonitor and deleteMonitor.',
    check: async (m, ctx) => {
      assertMayOperate(caller(ctx), 'monitor.update');
      await assertOwns(ctx, m, `Monitor "${m.name}"`, 'change');
    },
  },
});
builder.objectField(MonitorRef, 'viewerCan', (t) => t.field({ type: MonitorViewerCan, resolve: (m) => m }));

const TriggerViewerCan = viewerCanType<WorkflowTrigger>('TriggerViewerCan', 'What the caller may do to this trigger.', {
  change: {
    description: 'pauseTrigger, resumeTrigger, updateTrigger, rotateTriggerSecret and deleteTrigger.',
    check: async (tr, ctx) => {
      assertCan(ctx.ability, 'update', 'Trigger', 'change triggers');
      const workflow = await WorkflowRef.getDataloader(ctx).load(tr.workflowId);
      assertMayIn(ctx.ability, 'update', 'Trigger', moreGuarded(workflow?.domain ?? 'production', tr.parametersDomain), 'change triggers');
      await assertOwns(ctx, tr, `Trigger "${tr.name}"`, 'change');
    },
  },
});
builder.objectField(TriggerRef, 'viewerCan', (t) => t.field({ type: TriggerViewerCan, resolve: (tr) => tr }));

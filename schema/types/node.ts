// `node(id)`: any stored object by its UUID, answered only if the caller may read it. An object the caller may
// not read is answered exactly like one that does not exist (null, no error), so the query is no existence oracle.
import { eq } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { auditEvents, datasets, declassifications } from '../../server/db/tables/governance';
import { hotClusters } from '../../server/db/tables/executors';
import { identities } from '../../server/db/tables/identities';
import { moduleVersions, modules } from '../../server/db/tables/modules';
import { runs, tasks } from '../../server/db/tables/runs';
import { schedules } from '../../server/db/tables/schedules';
import { teams } from '../../server/db/tables/teams';
import { workflowVersions, workflows } from '../../server/db/tables/workflows';
import { mayReadObject } from '../auth';
import { builder } from '../builder';
import { NodeRef, nodeTypes } from '../node';

const tables: [string, PgTable & { id: never }][] = [
  ['Run', runs],
  ['Task', tasks],
  ['Workflow', workflows],
  ['WorkflowVersion', workflowVersions],
  ['Schedule', schedules],
  ['Module', modules],
  ['ModuleVersion', moduleVersions],
  ['Team', teams],
  ['Identity', identities],
  ['Dataset', datasets],
  ['Declassification', declassifications],
  ['AuditEvent', auditEvents],
  ['HotCluster', hotClusters],
] as never;

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

builder.queryField('node', (t) =>
  t.field({
    type: NodeRef,
    nullable: true,
    description: 'Any stored object by its id; null when there is none or you may not read it (the two look the same).',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const id = String(args.id);
      if (!uuidRe.test(id)) return null;
      const found = await Promise.all(tables.map(async ([type, table]) => [type, (await ctx.services.db.select().from(table as never).where(eq((table as never as { id: never }).id, id as never)).limit(1))[0]] as const));
      for (const [type, row] of found) {
        if (!row) continue;
        if (!(await mayReadObject(ctx, type, row as object))) return null;
        nodeTypes.set(row as object, type);
        return row as { id: string };
      }
      return null;
    },
  }),
);

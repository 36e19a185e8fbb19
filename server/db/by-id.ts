// Any stored object by its UUID: the row of each table that has one with that id (ids are random UUIDs, so at
// most one does), named by the object type the API calls it.
import { eq } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { Db } from './client';
import { hotClusters } from './tables/executors';
import { auditEvents, datasets, declassifications } from './tables/governance';
import { identities } from './tables/identities';
import { modules, moduleVersions } from './tables/modules';
import { modelVersions, registeredModels } from './tables/registry';
import { runs, tasks } from './tables/runs';
import { schedules } from './tables/schedules';
import { teams } from './tables/teams';
import { workflows, workflowVersions } from './tables/workflows';

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
  ['Model', registeredModels],
  ['ModelVersion', modelVersions],
] as never;

/** Each table's row with this id (undefined where none has it), in a fixed order of types; `id` must be a UUID. */
export function rowsWithId(db: Db, id: string): Promise<(readonly [string, object | undefined])[]> {
  return Promise.all(
    tables.map(
      async ([type, table]) =>
        [
          type,
          (
            await db
              .select()
              .from(table as never)
              .where(eq((table as never as { id: never }).id, id as never))
              .limit(1)
          )[0] as object | undefined,
        ] as const,
    ),
  );
}

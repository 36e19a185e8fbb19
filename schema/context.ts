// What every resolver receives: the caller's identity and CASL ability, the services, and per-request loaders.
import DataLoader from 'dataloader';
import { inArray } from 'drizzle-orm';
import type { ObjectStore } from '../server/artifacts/store';
import type { AppAbility } from '../server/auth/ability';
import type { Config } from '../server/config';
import type { Db } from '../server/db/client';
import type { Identity } from '../server/db/tables/identities';
import { identities } from '../server/db/tables/identities';
import { moduleVersions, modules, type Module, type ModuleVersion } from '../server/db/tables/modules';
import { workflowVersions, workflows, type Workflow, type WorkflowVersion } from '../server/db/tables/workflows';
import type { RunFeed } from '../server/feed';
import type { Orchestrator } from '../server/orchestrator/orchestrator';
import type { PlanDefaults } from '../server/orchestrator/plan';

export interface Services {
  db: Db;
  store: ObjectStore;
  feed: RunFeed;
  orchestrator: Orchestrator;
  config: Config;
  planDefaults: PlanDefaults;
}

export interface Context {
  identity: Identity;
  ability: AppAbility;
  services: Services;
  loaders: Loaders;
}

function byId<T extends { id: string }>(load: (ids: string[]) => Promise<T[]>) {
  return new DataLoader<string, T | null>(async (ids) => {
    const rows = await load([...ids]);
    const map = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => map.get(id) ?? null);
  });
}

/** One query per type per request, however many rows ask (no N+1). */
export function createLoaders(db: Db) {
  return {
    module: byId<Module>((ids) => db.select().from(modules).where(inArray(modules.id, ids))),
    moduleVersion: byId<ModuleVersion>((ids) => db.select().from(moduleVersions).where(inArray(moduleVersions.id, ids))),
    workflow: byId<Workflow>((ids) => db.select().from(workflows).where(inArray(workflows.id, ids))),
    workflowVersion: byId<WorkflowVersion>((ids) => db.select().from(workflowVersions).where(inArray(workflowVersions.id, ids))),
    identity: byId<Identity>((ids) => db.select().from(identities).where(inArray(identities.id, ids))),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;

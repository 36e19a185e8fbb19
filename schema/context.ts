// What every resolver receives: the caller's identity and CASL ability, the services, and per-request loaders.
import DataLoader from 'dataloader';
import { and, asc, countDistinct, desc, eq, inArray, max } from 'drizzle-orm';
import type { ObjectStore } from '../server/artifacts/store';
import type { AppAbility, Grants } from '../server/auth/ability';
import type { TaskCache } from '../server/cache/store';
import type { Config } from '../server/config';
import type { Db } from '../server/db/client';
import type { Identity } from '../server/db/tables/identities';
import type { ExecutorHostRow } from '../server/db/tables/executors';
import { datasets, type Dataset } from '../server/db/tables/governance';
import { identities } from '../server/db/tables/identities';
import { moduleTagEvents, moduleTags, moduleVersions, modules, type Module, type ModuleTag, type ModuleTagEvent, type ModuleVersion } from '../server/db/tables/modules';
import { namespaces, teamMembers, teams, type Team, type TeamMember } from '../server/db/tables/teams';
import { runs, tasks, type Run, type Task } from '../server/db/tables/runs';
import { taskEvents, type TaskEvent } from '../server/db/tables/task-events';
import { workflowVersions, workflows, type Workflow, type WorkflowVersion } from '../server/db/tables/workflows';
import type { RunFeed } from '../server/events/feed';
import type { Orchestrator } from '../server/orchestrator/orchestrator';
import type { HotClusterService } from '../server/orchestrator/hot-clusters';
import type { PlanDefaults } from '../server/orchestrator/plan';
import { knownHosts } from '../server/orchestrator/routing';

export interface Services {
  db: Db;
  store: ObjectStore;
  feed: RunFeed;
  orchestrator: Orchestrator;
  config: Config;
  planDefaults: PlanDefaults;
  cache: TaskCache;
  /** Whether a run started by an identity may reuse a result computed by a source run. */
  mayReuse: (identity: Identity | null, source: Run, grants?: Grants) => boolean;
  hotClusters: HotClusterService;
}

export interface Context {
  identity: Identity;
  /** The bearer token the request came with: live subscriptions check it again while they run. */
  token: string;
  /** The token's scopes (null: unscoped): the ability is narrowed to them. */
  scopes: string[] | null;
  ability: AppAbility;
  /** What the identity's teams grant; the ability is built from it. */
  grants: Grants;
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

/** Loads the rows belonging to each key (a run's tasks, a module's tags) in one query for all keys. */
function groupedBy<T>(load: (keys: string[]) => Promise<T[]>, keyOf: (row: T) => string) {
  return new DataLoader<string, T[]>(async (keys) => {
    const groups = new Map<string, T[]>();
    for (const row of await load([...keys])) {
      const key = keyOf(row);
      const list = groups.get(key);
      if (list) list.push(row);
      else groups.set(key, [row]);
    }
    return keys.map((k) => groups.get(k) ?? []);
  });
}

/** One query per type per request, however many rows ask (no N+1). */
export function createLoaders(db: Db) {
  return {
    run: byId<Run>((ids) => db.select().from(runs).where(inArray(runs.id, ids))),
    tasksOfRun: groupedBy<Task>((ids) => db.select().from(tasks).where(inArray(tasks.runId, ids)).orderBy(asc(tasks.node)), (t) => t.runId),
    childRunsOf: groupedBy<Run>((ids) => db.select().from(runs).where(inArray(runs.parentRunId, ids)).orderBy(asc(runs.createdAt)), (r) => r.parentRunId!),
    /** Start and result events of tasks, oldest first: what Task.attempts is built from. */
    attemptEventsOf: groupedBy<TaskEvent>(
      (ids) => db.select().from(taskEvents).where(and(inArray(taskEvents.taskId, ids), inArray(taskEvents.kind, ['started', 'result']))).orderBy(asc(taskEvents.attempt), asc(taskEvents.seq)),
      (e) => e.taskId,
    ),
    /** The latest value of each metric a task's current attempt reported, with its step. */
    latestMetricsOf: new DataLoader<string, Record<string, { value: number; step: number | null }>>(async (ids) => {
      const rows = await db
        .select({ taskId: taskEvents.taskId, payload: taskEvents.payload })
        .from(taskEvents)
        .innerJoin(tasks, and(eq(tasks.id, taskEvents.taskId), eq(tasks.attempt, taskEvents.attempt)))
        .where(and(inArray(taskEvents.taskId, [...ids]), eq(taskEvents.kind, 'metric')))
        .orderBy(asc(taskEvents.seq));
      const latest = new Map<string, Record<string, { value: number; step: number | null }>>();
      for (const row of rows) {
        const { metrics, step } = row.payload as { metrics: Record<string, number>; step: number | null };
        const entry = latest.get(row.taskId) ?? {};
        for (const [name, value] of Object.entries(metrics)) entry[name] = { value, step };
        latest.set(row.taskId, entry);
      }
      return ids.map((id) => latest.get(id) ?? {});
    }),
    tagsOf: groupedBy<ModuleTag>((ids) => db.select().from(moduleTags).where(inArray(moduleTags.moduleId, ids)).orderBy(asc(moduleTags.tag)), (t) => t.moduleId),
    versionsOf: groupedBy<ModuleVersion>((ids) => db.select().from(moduleVersions).where(inArray(moduleVersions.moduleId, ids)).orderBy(desc(moduleVersions.createdAt)), (v) => v.moduleId),
    versionsOfWorkflow: groupedBy<WorkflowVersion>((ids) => db.select().from(workflowVersions).where(inArray(workflowVersions.workflowId, ids)).orderBy(desc(workflowVersions.version)), (v) => v.workflowId),
    tagEventsOf: groupedBy<ModuleTagEvent>(
      (ids) => db.select().from(moduleTagEvents).where(inArray(moduleTagEvents.moduleId, ids)).orderBy(desc(moduleTagEvents.createdAt)),
      (e) => e.moduleId,
    ),
    /** How many runs used each module version, and when one last started. */
    usageOfVersion: new DataLoader<string, { runs: number; lastUsedAt: Date | null }>(async (ids) => {
      const rows = await db
        .select({ id: tasks.moduleVersionId, runs: countDistinct(tasks.runId), last: max(runs.createdAt) })
        .from(tasks)
        .innerJoin(runs, eq(runs.id, tasks.runId))
        .where(inArray(tasks.moduleVersionId, [...ids]))
        .groupBy(tasks.moduleVersionId);
      const byId = new Map(rows.map((r) => [r.id!, { runs: Number(r.runs), lastUsedAt: r.last ? new Date(r.last) : null }]));
      return ids.map((id) => byId.get(id) ?? { runs: 0, lastUsedAt: null });
    }),
    /** The team owning each namespace. */
    ownerOfNamespace: new DataLoader<string, Team | null>(async (names) => {
      const rows = await db.select({ name: namespaces.name, team: teams }).from(namespaces).innerJoin(teams, eq(teams.id, namespaces.teamId)).where(inArray(namespaces.name, [...names]));
      const byName = new Map(rows.map((r) => [r.name, r.team]));
      return names.map((n) => byName.get(n) ?? null);
    }),
    membersOf: groupedBy<TeamMember>((ids) => db.select().from(teamMembers).where(inArray(teamMembers.teamId, ids)).orderBy(asc(teamMembers.createdAt)), (m) => m.teamId),
    namespacesOf: groupedBy<{ name: string; teamId: string }>(
      (ids) => db.select({ name: namespaces.name, teamId: namespaces.teamId }).from(namespaces).where(inArray(namespaces.teamId, ids)).orderBy(asc(namespaces.name)),
      (n) => n.teamId,
    ),
    team: byId<Team>((ids) => db.select().from(teams).where(inArray(teams.id, ids))),
    dataset: byId<Dataset>((ids) => db.select().from(datasets).where(inArray(datasets.id, ids))),
    module: byId<Module>((ids) => db.select().from(modules).where(inArray(modules.id, ids))),
    moduleVersion: byId<ModuleVersion>((ids) => db.select().from(moduleVersions).where(inArray(moduleVersions.id, ids))),
    workflow: byId<Workflow>((ids) => db.select().from(workflows).where(inArray(workflows.id, ids))),
    workflowVersion: byId<WorkflowVersion>((ids) => db.select().from(workflowVersions).where(inArray(workflowVersions.id, ids))),
    identity: byId<Identity>((ids) => db.select().from(identities).where(inArray(identities.id, ids))),
    /** Every recently seen executor host (one key: there are few hosts, and each task's waitingReason needs them). */
    hosts: new DataLoader<'all', ExecutorHostRow[]>(async (keys) => {
      const hosts = await knownHosts(db, new Date());
      return keys.map(() => hosts);
    }),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;

// Reads of workflows for the API: workflows and versions by id, each workflow's versions, the list, one by
// name, and the domain a new run of a workflow gets by default.
import { and, asc, desc, eq, inArray, or } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type Workflow, type WorkflowVersion, workflows, workflowVersions } from '../db/tables/workflows';
import { isUuid } from '../db/uuid';
import { type Domain, moreGuarded } from '../vocabulary';

export const workflowsByIds = (db: Db, ids: string[]): Promise<Workflow[]> => db.select().from(workflows).where(inArray(workflows.id, ids));

export const workflowVersionsByIds = (db: Db, ids: string[]): Promise<WorkflowVersion[]> =>
  db.select().from(workflowVersions).where(inArray(workflowVersions.id, ids));

/** The versions of each workflow, newest first. */
export const versionsOfWorkflows = (db: Db, workflowIds: string[]): Promise<WorkflowVersion[]> =>
  db.select().from(workflowVersions).where(inArray(workflowVersions.workflowId, workflowIds)).orderBy(desc(workflowVersions.version));

/** Workflows by name (at most 1,000). */
export const listWorkflows = (db: Db): Promise<Workflow[]> => db.select().from(workflows).orderBy(asc(workflows.name)).limit(1000);

export async function workflowWithName(db: Db, name: string): Promise<Workflow | null> {
  const [w] = await db.select().from(workflows).where(eq(workflows.name, name));
  return w ?? null;
}

/**
 * The domain whose data a version's spec is: the more guarded of its workflow's domain now and the one it was
 * published in (a workflow moved to a more open domain does not open its older versions' specs).
 */
export const specDomainOf = (workflow: Pick<Workflow, 'domain'>, version: Pick<WorkflowVersion, 'spec'>): Domain =>
  moreGuarded(workflow.domain, version.spec.domain ?? 'experimentation');

/**
 * A workflow (by name or id) as its refusals name it: its name and the domain of its spec (of `version` when given,
 * see {@link specDomainOf}); undefined when there is none.
 */
export async function workflowDomainRef(db: Db, ref: string, version?: number): Promise<{ name: string; domain: Domain } | undefined> {
  const [row] = await db
    .select({ id: workflows.id, name: workflows.name, domain: workflows.domain })
    .from(workflows)
    .where(isUuid(ref) ? or(eq(workflows.id, ref), eq(workflows.name, ref)) : eq(workflows.name, ref));
  if (!row) return undefined;
  if (version === undefined) return { name: row.name, domain: row.domain };
  const [v] = await db
    .select({ spec: workflowVersions.spec })
    .from(workflowVersions)
    .where(and(eq(workflowVersions.workflowId, row.id), eq(workflowVersions.version, version)));
  return { name: row.name, domain: v ? specDomainOf(row, v) : row.domain };
}

/** The domain a new run of a workflow (by name or id) gets by default; undefined when there is no such workflow. */
export const workflowDomainOf = async (db: Db, ref: string): Promise<Domain | undefined> => (await workflowDomainRef(db, ref))?.domain;

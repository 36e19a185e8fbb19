// Creating workflows: a spec is validated (structure, then modules and parameters as a run would resolve them
// now) before anything is written; re-submitting an unchanged spec returns the existing version.

import { and, eq } from 'drizzle-orm';
import { digestOf } from '../artifacts/digest';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Workflow, type WorkflowVersion, workflows, workflowVersions } from '../db/tables/workflows';
import type { Domain } from '../vocabulary';
import { type PlanDefaults, planRun } from './plan';
import { readWorkflowSpec, resolveRunParameters } from './spec';

export async function createWorkflow(
  db: Db,
  source: string | unknown,
  identity: Identity | null,
  defaults: PlanDefaults,
  /** Throws to refuse: given the workflow's domain before this version (null for a new workflow) and after it. */
  authorize?: (domains: { before: Domain | null; after: Domain }) => void,
): Promise<{ workflow: Workflow; version: WorkflowVersion; created: boolean }> {
  const spec = await readWorkflowSpec(source);
  const digest = digestOf(spec);
  return db.transaction(async (tx) => {
    // Validate against the modules as they are now, with default parameters, so a typo fails here, not at run time
    // (parameters that only a run will give are checked when it starts).
    await planRun(tx, spec, resolveRunParameters(spec, {}, { partial: true }), defaults, { candidate: spec, stack: [`${spec.name}@new`], partial: true });
    const domain = spec.domain ?? 'experimentation';
    if (authorize) {
      const [existing] = await tx.select({ domain: workflows.domain }).from(workflows).where(eq(workflows.name, spec.name));
      authorize({ before: existing?.domain ?? null, after: domain });
    }
    await tx
      .insert(workflows)
      .values({ name: spec.name, description: spec.description ?? '', domain, latestVersion: 0, createdBy: identity?.id ?? null })
      .onConflictDoNothing({ target: workflows.name });
    const [workflow] = await tx.select().from(workflows).where(eq(workflows.name, spec.name)).for('update');
    const [latest] = await tx
      .select()
      .from(workflowVersions)
      .where(and(eq(workflowVersions.workflowId, workflow!.id), eq(workflowVersions.version, workflow!.latestVersion)));
    if (latest?.digest === digest) return { workflow: workflow!, version: latest, created: false };
    const next = workflow!.latestVersion + 1;
    const [version] = await tx
      .insert(workflowVersions)
      .values({ workflowId: workflow!.id, version: next, spec, digest, createdBy: identity?.id ?? null })
      .returning();
    const [updated] = await tx
      .update(workflows)
      .set({ latestVersion: next, description: spec.description ?? workflow!.description, domain })
      .where(eq(workflows.id, workflow!.id))
      .returning();
    return { workflow: updated!, version: version!, created: true };
  });
}

// Creating workflows: a spec is validated (structure, then modules and parameters as a run would resolve them
// now) before anything is written; re-submitting an unchanged spec returns the existing version. A workflow belongs to
// a team: only its owners publish new versions of it.

import { and, eq } from 'drizzle-orm';
import { digestOf } from '../artifacts/digest';
import { AuditedDenial, audited } from '../audit/audit';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Workflow, type WorkflowVersion, workflows, workflowVersions } from '../db/tables/workflows';
import { assertOwnerMay, newOwnerTeam, type Owner, owningTeamName } from '../teams/ownership';
import type { Domain } from '../vocabulary';
import { type PlanDefaults, planRun } from './plan';
import { readWorkflowSpec, resolveRunParameters } from './spec';

/** Who publishes, for an API caller: their ownership, the owning team of a new workflow, and the domain check. */
export interface WorkflowAuthor {
  owner: Owner;
  /** The owning team's name for a new workflow (default: the author's only team); naming another team moves an existing one (admins only). */
  team?: string | null;
  /** Throws to refuse: given the workflow's domain before this version (null for a new workflow) and after it. */
  authorize?: (domains: { before: Domain | null; after: Domain }) => void;
}

/**
 * Creates a workflow or a new version of it. With an author, an existing workflow changes only by its owners (the
 * writing members of its team, its teamless creator, admins): anyone else is refused (FORBIDDEN, audited, nothing
 * written). Without one (internal callers), nothing is checked and a new workflow belongs to no team.
 */
export async function createWorkflow(
  db: Db,
  source: string | unknown,
  identity: Identity | null,
  defaults: PlanDefaults,
  author?: WorkflowAuthor,
): Promise<{ workflow: Workflow; version: WorkflowVersion; created: boolean }> {
  const spec = await readWorkflowSpec(source);
  const digest = digestOf(spec);
  const thing = { action: 'workflow.publish', subject: `workflow:${spec.name}`, label: `Workflow "${spec.name}"` };
  return audited(db, () =>
    db.transaction(async (tx) => {
      // Validate against the modules as they are now, with default parameters, so a typo fails here, not at run time
      // (parameters that only a run will give are checked when it starts).
      await planRun(tx, spec, resolveRunParameters(spec, {}, { partial: true }), defaults, {
        candidate: spec,
        stack: [`${spec.name}@new`],
        partial: true,
        specDefaults: true,
      });
      const domain = spec.domain ?? 'experimentation';
      const [existing] = await tx.select().from(workflows).where(eq(workflows.name, spec.name)).for('update');
      let teamId = existing?.teamId ?? null;
      if (author) {
        if (existing) {
          await assertOwnerMay(tx, author.owner, existing, thing, 'publish a new version of');
          if (author.team !== undefined && author.team !== null && author.team !== (await owningTeamName(tx, existing))) {
            if (!author.owner.admin)
              throw new AuditedDenial(
                {
                  identity: author.owner.identity,
                  action: thing.action,
                  decision: 'deny',
                  subject: thing.subject,
                  rule: 'only admins move a workflow to another team',
                  details: { team: author.team },
                },
                `Workflow "${spec.name}" already exists and belongs to ${(await owningTeamName(tx, existing)) ?? 'no team'}; only an admin moves it to team "${author.team}". Leave out --team to publish a new version.`,
              );
            teamId = await newOwnerTeam(tx, author.owner, author.team, thing);
          }
        } else teamId = await newOwnerTeam(tx, author.owner, author.team, { ...thing, label: `workflow "${spec.name}"` });
        author.authorize?.({ before: existing?.domain ?? null, after: domain });
      }
      await tx
        .insert(workflows)
        .values({ name: spec.name, description: spec.description ?? '', domain, latestVersion: 0, createdBy: identity?.id ?? null, teamId })
        .onConflictDoNothing({ target: workflows.name });
      const [workflow] = await tx.select().from(workflows).where(eq(workflows.name, spec.name)).for('update');
      const [latest] = await tx
        .select()
        .from(workflowVersions)
        .where(and(eq(workflowVersions.workflowId, workflow!.id), eq(workflowVersions.version, workflow!.latestVersion)));
      if (latest?.digest === digest && teamId === workflow!.teamId) return { workflow: workflow!, version: latest, created: false };
      if (latest?.digest === digest) {
        const [moved] = await tx.update(workflows).set({ teamId }).where(eq(workflows.id, workflow!.id)).returning();
        return { workflow: moved!, version: latest, created: false };
      }
      const next = workflow!.latestVersion + 1;
      const [version] = await tx
        .insert(workflowVersions)
        .values({ workflowId: workflow!.id, version: next, spec, digest, createdBy: identity?.id ?? null })
        .returning();
      const [updated] = await tx
        .update(workflows)
        .set({ latestVersion: next, description: spec.description ?? workflow!.description, domain, teamId })
        .where(eq(workflows.id, workflow!.id))
        .returning();
      return { workflow: updated!, version: version!, created: true };
    }),
  );
}

// Experiments: a workflow's own (made with its first run, named after it) and named ones (made by a caller, e.g. an
// MLflow client or a notebook). Every run belongs to exactly one.
import { eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { type Experiment, experiments } from '../db/tables/tracking';

/** The workflow's own experiment, made on first use; named after the workflow (suffixed if a named one took that). */
export async function workflowExperiment(
  db: Db | Tx,
  workflow: { id: string; name: string; teamId: string | null; createdBy: string | null },
): Promise<Experiment> {
  const [found] = await db.select().from(experiments).where(eq(experiments.workflowId, workflow.id));
  if (found) return found;
  for (const name of [workflow.name, `${workflow.name} (workflow)`, `${workflow.name} (workflow ${workflow.id.slice(0, 8)})`]) {
    const [made] = await db
      .insert(experiments)
      .values({ name, workflowId: workflow.id, teamId: workflow.teamId, createdBy: workflow.createdBy })
      .onConflictDoNothing()
      .returning();
    if (made) return made;
    // Another start made it meanwhile: that one is ours.
    const [raced] = await db.select().from(experiments).where(eq(experiments.workflowId, workflow.id));
    if (raced) return raced;
  }
  throw new Error(`no free experiment name for workflow ${workflow.name}`);
}

// Run parameters kept for runs that start later (a schedule's, a trigger's): checked when they are stored, as a run
// started now would check them (the workflow's declared parameters, then each module's parameter schema), so a bad
// value is refused with the error a run start gives instead of failing every fire.
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type Workflow, workflowVersions } from '../db/tables/workflows';
import { AtelierError, badInput, notFound } from '../errors';
import { planRun } from './plan';
import { resolveRunParameters } from './spec';

export interface StoredParametersCheck {
  /** What keeps them, a noun that is also its verb: "schedule", "trigger". */
  owner: string;
  /** Parameters filled in when it fires (a trigger's mapped ones): declared, but their values are checked then. */
  filledLater?: readonly string[];
  /** The parameter each fire time goes into (a schedule's `fireTimeParameter`) and such a value: declared, and fitting. */
  fireTime?: { name: string; value: string };
}

// Only the parameters are judged here: where the tasks run (GPU pools, live hosts) is decided when a run starts.
const PARAMETERS_ONLY = { timeoutMs: 1000, executor: 'local' };

/** Throws what a run start would throw for these parameters against the workflow's latest version, prefixed. */
export async function checkStoredParameters(db: Db, workflow: Workflow, given: Record<string, unknown>, check: StoredParametersCheck): Promise<void> {
  const [version] = await db
    .select()
    .from(workflowVersions)
    .where(and(eq(workflowVersions.workflowId, workflow.id), eq(workflowVersions.version, workflow.latestVersion)));
  if (!version) throw notFound(`Workflow "${workflow.name}" has no version to ${check.owner}.`);
  const later = check.filledLater ?? [];
  if (check.fireTime) {
    const { name, value } = check.fireTime;
    const declared = Object.keys(version.spec.parameters ?? {});
    if (!declared.includes(name))
      throw badInput(
        `The ${check.owner}'s fireTimeParameter "${name}" is not a run parameter of workflow "${workflow.name}" (it declares: ${declared.join(', ') || 'none'}); declare it in the workflow (parameters: { ${name}: {} }) or name one it has.`,
        [{ path: 'fireTimeParameter', message: 'is not declared by the workflow' }],
      );
    if (Object.hasOwn(given, name))
      throw badInput(`The ${check.owner} sets "${name}" in its parameters and as its fireTimeParameter; each fire sets it, so leave it out of parameters.`, [
        { path: `parameters.${name}`, message: 'is set by each fire time' },
      ]);
    given = { ...given, [name]: value };
  }
  try {
    const resolved = resolveRunParameters(version.spec, { ...given, ...Object.fromEntries(later.map((k) => [k, null])) });
    for (const name of later) delete resolved[name];
    // Partial: a task given a parameter filled in later is checked when it fires, like a hot cluster that may not
    // exist yet; every other task's parameters are checked against its module's schema now.
    await db.transaction((tx) => planRun(tx, version.spec, resolved, PARAMETERS_ONLY, { stack: [`${workflow.name}@${version.version}`], partial: true }));
  } catch (error) {
    if (!(error instanceof AtelierError)) throw error;
    throw new AtelierError(error.code, `The ${check.owner}'s parameters do not fit workflow "${workflow.name}": ${error.message}`, error.details);
  }
}

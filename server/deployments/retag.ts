// Deployments an older version applied carry no installation id (their deployer tags a deployment when it is
// applied with one), so no deployer lists them for the orphan sweep until their next revision. The reconciler's
// first pass over each deployment on this replica applies its serving revision again, which a deployer takes as a
// no-op apart from the tag (apply is idempotent per deployment and revision number and never moves traffic).
import { eq } from 'drizzle-orm';
import type { Deployer, DeploymentStatus } from '../../plugins/deployer-sdk';
import type { DeploymentRevisionRow, DeploymentRow } from '../db/tables/deployments';
import { modelVersions, registeredModels } from '../db/tables/registry';
import { revisionOf } from './materialise';
import type { ReconcilerDeps } from './reconciler';

/** Per reconciler: the deployments already applied with the installation id by this replica. */
const taggedBy = new WeakMap<ReconcilerDeps, Set<string>>();

/**
 * Applies `d`'s serving revision again with the installation id, once per deployment per replica, where the deployer
 * can list (only `list` reads the tag) and holds that revision healthy (a FAILED one would be started afresh).
 * A failure is the pass's (tried again next pass).
 */
export async function tagOnce(deps: ReconcilerDeps, deployer: Deployer, d: DeploymentRow, revisions: DeploymentRevisionRow[], status: DeploymentStatus | null) {
  let tagged = taggedBy.get(deps);
  if (!tagged) taggedBy.set(deps, (tagged = new Set()));
  if (!deployer.list || tagged.has(d.id)) return;
  const serving = revisions.find((r) => r.state === 'SERVING');
  const held = serving && status?.revisions.find((r) => r.number === serving.number);
  if (!serving || !held || held.health === 'FAILED') return; // its next apply tags it
  await deployer.apply(await specOf(deps, d), await revisionFor(deps, serving));
  tagged.add(d.id);
}

/** The deployment as a deployer is given it (with the installation id). */
export async function specOf(deps: ReconcilerDeps, d: DeploymentRow) {
  const [model] = await deps.db.select().from(registeredModels).where(eq(registeredModels.id, d.modelId));
  const ref = `${model!.namespace}/${model!.name}${d.alias ? `@${d.alias}` : ''}`;
  return { id: d.id, name: d.name, model: ref, domain: d.domain, settings: d.settings, installation: await deps.installation() };
}

async function revisionFor(deps: ReconcilerDeps, rev: DeploymentRevisionRow) {
  const [version] = await deps.db.select().from(modelVersions).where(eq(modelVersions.id, rev.modelVersionId));
  const [model] = await deps.db.select().from(registeredModels).where(eq(registeredModels.id, version!.modelId));
  return revisionOf(deps.store, deps.filesDir, model!, version!, rev.number);
}

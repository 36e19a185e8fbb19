// Deployments as people change them: create (everything checked first, nothing written on a refusal), delete, and
// the four hands on a rollout: promote (skip to 100 %), roll back (at any step, or to the previous revision),
// fail over (all traffic to the fallback, pausing any rollout) and restore. Each writes the desired state, an event
// and an audit record in one transaction and bumps the deployment's generation; the caller then makes the deployer
// match (service.ts), and the reconciler does the same on its next pass, so a crash in between loses nothing.
import { and, asc, eq, gt, inArray, type SQL, sql } from 'drizzle-orm';
import { audit, audited } from '../audit/audit';
import { type Db, retryingTransaction, type Tx } from '../db/client';
import { type DeploymentRevisionRow, type DeploymentRow, deploymentRevisions, deployments, type Fallback, type Rollout } from '../db/tables/deployments';
import { registeredModels } from '../db/tables/registry';
import { namespaces } from '../db/tables/teams';
import { badInput, conflict, notFound } from '../errors';
import { auditedRegistry } from '../registry/access';
import { findModel, findModelVersion } from '../registry/models';
import { type Domain, domains } from '../vocabulary';
import { assertDomainGrant, assertMayChangeDeployments, assertMayManage, assertMayServe, type Caller, mayReadDeployment } from './access';
import { deploymentEvent } from './events';
import { checkDeploymentName, checkPolicy, type PolicyInput, parseModelTarget } from './spec';

export interface CreateDeploymentInput {
  name: string;
  model: string;
  domain: string;
  deployer: string;
  settings?: Record<string, unknown> | null;
  rollout?: PolicyInput | null;
  /** A version number of the same model served as the baseline fallback; none: the previous revision. */
  fallbackVersion?: number | null;
}

/** While failed over, the fallback holds all traffic: a rollout is moved only after a restore. */
function assertChangeable(d: DeploymentRow): void {
  if (d.failedOver)
    throw conflict(`Deployment "${d.name}" is failed over to revision ${d.failoverRevision}; restore it first (\`npx atelier deploy restore ${d.name}\`).`);
}

export async function createDeployment(db: Db, caller: Caller, input: CreateDeploymentInput, deployerNames: string[]): Promise<DeploymentRow> {
  assertMayChangeDeployments(caller, 'deployment.create');
  checkDeploymentName(input.name);
  const target = parseModelTarget(input.model);
  if (!domains.includes(input.domain as Domain)) throw badInput(`domain must be one of ${domains.join(', ')}.`);
  const domain = input.domain as Domain;
  if (!deployerNames.includes(input.deployer))
    throw badInput(`No deployer "${input.deployer}" on this control plane; it has ${deployerNames.map((n) => `"${n}"`).join(', ') || 'none'}.`);
  const settings = input.settings ?? {};
  if (typeof settings !== 'object' || Array.isArray(settings) || JSON.stringify(settings).length > 64_000)
    throw badInput('settings must be a JSON object (at most 64 KB) under the deployer’s own keys.');
  const policy = checkPolicy(input.rollout);
  assertDomainGrant(caller, domain, 'deployment.create', input.name);
  return auditedRegistry(db, () =>
    db.transaction(async (tx) => {
      const model = await findModel(tx, target.model);
      await assertMayManage(tx, caller, model, domain, 'deployment.create', input.name);
      const [taken] = await tx.select({ id: deployments.id }).from(deployments).where(eq(deployments.name, input.name));
      if (taken) throw conflict(`A deployment named "${input.name}" exists already; choose another name (or delete it first).`);
      const { version } = await findModelVersion(tx, target.alias ? `${target.model}@${target.alias}` : `${target.model}@${target.version}`);
      await assertMayServe(tx, caller.identity, model, version, domain, 'deployment.create', input.name);
      let fallback: Fallback = { kind: 'PREVIOUS' };
      if (input.fallbackVersion != null) {
        const { version: baseline } = await findModelVersion(tx, `${target.model}@${input.fallbackVersion}`);
        await assertMayServe(tx, caller.identity, model, baseline, domain, 'deployment.create', input.name);
        fallback = { kind: 'BASELINE', versionId: baseline.id };
      }
      const [ns] = await tx.select({ teamId: namespaces.teamId }).from(namespaces).where(eq(namespaces.name, model.namespace));
      const [row] = await tx
        .insert(deployments)
        .values({
          name: input.name,
          modelId: model.id,
          alias: target.alias,
          pinnedVersionId: target.alias ? null : version.id,
          domain,
          deployer: input.deployer,
          settings,
          teamId: ns?.teamId ?? null,
          policy,
          fallback,
          createdBy: caller.identity.id,
          checkedAt: new Date(0),
        })
        .returning();
      await deploymentEvent(tx, row!, 'CREATED', { actor: caller.identity, details: { model: input.model, version: version.version } });
      await audit(tx, {
        identity: caller.identity,
        action: 'deployment.create',
        decision: 'allow',
        subject: `deployment:${row!.name}`,
        rule: 'writers of the model’s namespace holding the domain’s grant manage its deployments',
        details: { model: input.model, domain, deployer: input.deployer, version: version.version },
      });
      return row!;
    }),
  );
}

/**
 * The deployment by id or name if the caller may read it; NOT_FOUND alike when it does not exist or may not be read.
 * One whose deletion is recorded counts as gone, unless `deleting` (one lookup shows it until its deployer let go).
 */
export async function findDeployment(
  db: Db | Tx,
  caller: Caller,
  idOrName: string,
  options: { lock?: boolean; deleting?: boolean } = {},
): Promise<DeploymentRow> {
  const isId = /^[0-9a-f-]{36}$/i.test(idOrName);
  const query = db
    .select()
    .from(deployments)
    .where(isId ? eq(deployments.id, idOrName) : eq(deployments.name, idOrName));
  const [row] = options.lock ? await query.for('update') : await query;
  if (!row || (row.deletingAt && !options.deleting) || !(await mayReadDeployment(db, caller, row)))
    throw notFound(`No deployment "${idOrName}"; list them with \`npx atelier deploy list\`.`);
  return row;
}

/** Deployments the caller may read, by name, after the cursor `after` (a name); of one model when given. */
export async function listDeployments(
  db: Db,
  caller: Caller,
  input: { model?: string | null; first: number; after?: string | null },
): Promise<DeploymentRow[]> {
  const where: SQL[] = [sql`${deployments.deletingAt} is null`];
  if (input.model) {
    const model = await findModel(db, input.model).catch(() => null);
    if (!model) return [];
    where.push(eq(deployments.modelId, model.id));
  }
  if (input.after) where.push(gt(deployments.name, input.after));
  const out: DeploymentRow[] = [];
  let cursor: string | null = null;
  for (;;) {
    const page: DeploymentRow[] = await db
      .select()
      .from(deployments)
      .where(and(...where, ...(cursor ? [gt(deployments.name, cursor)] : [])))
      .orderBy(asc(deployments.name))
      .limit(200);
    for (const row of page) if (out.length < input.first && (await mayReadDeployment(db, caller, row))) out.push(row);
    if (page.length < 200 || out.length >= input.first) return out;
    cursor = page[page.length - 1]!.name;
  }
}

export const revisionsOf = (db: Db | Tx, deploymentId: string): Promise<DeploymentRevisionRow[]> =>
  db.select().from(deploymentRevisions).where(eq(deploymentRevisions.deploymentId, deploymentId)).orderBy(asc(deploymentRevisions.number));

export async function deploymentsOfModels(db: Db, modelIds: string[]): Promise<DeploymentRow[]> {
  if (!modelIds.length) return [];
  return db
    .select()
    .from(deployments)
    .where(and(inArray(deployments.modelId, modelIds), sql`${deployments.deletingAt} is null`))
    .orderBy(asc(deployments.name));
}

export async function deploymentsOfVersions(db: Db, versionIds: string[]): Promise<(DeploymentRow & { versionId: string })[]> {
  if (!versionIds.length) return [];
  const rows = await db
    .selectDistinct({ d: deployments, versionId: deploymentRevisions.modelVersionId })
    .from(deploymentRevisions)
    .innerJoin(deployments, eq(deployments.id, deploymentRevisions.deploymentId))
    .where(and(inArray(deploymentRevisions.modelVersionId, versionIds), inArray(deploymentRevisions.state, ['SERVING', 'ROLLING_OUT', 'STANDBY'])));
  return rows.map((r) => ({ ...r.d, versionId: r.versionId }));
}

/** Runs a person's change on a deployment they may manage, locked, with its event and audit record; bumps its generation. */
async function change(
  db: Db,
  caller: Caller,
  idOrName: string,
  action: string,
  work: (tx: Tx, d: DeploymentRow, revisions: DeploymentRevisionRow[]) => Promise<Partial<DeploymentRow>>,
): Promise<DeploymentRow> {
  assertMayChangeDeployments(caller, action);
  return audited(db, () =>
    retryingTransaction(db, async (tx) => {
      const d = await findDeployment(tx, caller, idOrName, { lock: true, deleting: true });
      // Deleting again is the same deletion (its caller waits for it too); any other change is too late.
      if (d.deletingAt && action === 'deployment.delete') return d;
      if (d.deletingAt) throw conflict(`Deployment "${d.name}" is being deleted; it can no longer change.`);
      const [model] = await tx.select().from(registeredModels).where(eq(registeredModels.id, d.modelId));
      await assertMayManage(tx, caller, model!, d.domain as Domain, action, d.name);
      const patch = await work(tx, d, await revisionsOf(tx, d.id));
      const [updated] = await tx
        .update(deployments)
        .set({ ...patch, generation: sql`${deployments.generation} + 1`, updatedAt: new Date() })
        .where(eq(deployments.id, d.id))
        .returning();
      return updated!;
    }),
  );
}

const setRevision = (tx: Tx, id: string, state: DeploymentRevisionRow['state'], message?: string | null) =>
  tx
    .update(deploymentRevisions)
    .set({ state, updatedAt: new Date(), ...(message !== undefined ? { message } : {}) })
    .where(eq(deploymentRevisions.id, id));

const byNumber = (revisions: DeploymentRevisionRow[], n: number | null) => revisions.find((r) => r.number === n);
const active = (r: Rollout | null): r is Rollout => !!r && (r.state === 'RUNNING' || r.state === 'PAUSED');

function reasonOf(reason: string | null | undefined): string {
  const text = (reason ?? '').trim();
  if (!text || text.length > 2000) throw badInput('Say why (reason, 1 to 2,000 characters): it is kept in the deployment’s events and the audit log.');
  return text;
}

const auditChange = (tx: Tx, caller: Caller, d: DeploymentRow, action: string, reason: string, details: Record<string, unknown>) =>
  audit(tx, {
    identity: caller.identity,
    action,
    decision: 'allow',
    subject: `deployment:${d.name}`,
    rule: 'writers of the model’s namespace holding the domain’s grant manage its deployments',
    details: { reason, ...details },
  });

/** Skips a running rollout to 100 % of the new revision. */
export function promoteDeployment(db: Db, caller: Caller, id: string, reason?: string | null): Promise<DeploymentRow> {
  return change(db, caller, id, 'deployment.promote', async (tx, d, revisions) => {
    const why = reasonOf(reason ?? 'promoted by hand');
    assertChangeable(d);
    if (!active(d.rollout)) throw conflict(`Deployment "${d.name}" has no rollout running; there is nothing to promote.`);
    const next = byNumber(revisions, d.rollout.revision)!;
    if (next.health !== 'READY') throw conflict(`Revision ${next.number} is ${next.health ?? 'not started'}, not READY; it cannot take all traffic.`);
    await setRevision(tx, next.id, 'SERVING', null);
    const from = byNumber(revisions, d.rollout.from);
    if (from) await setRevision(tx, from.id, 'RETIRED');
    await deploymentEvent(tx, d, 'PROMOTED', { revision: next.number, actor: caller.identity, reason: why, details: { fromStep: d.rollout.step } });
    await auditChange(tx, caller, d, 'deployment.promote', why, { revision: next.number });
    return { rollout: { ...d.rollout, state: 'COMPLETE', percent: 100, reason: why } };
  });
}

/** Rolls a running rollout back to the revision it took traffic from; with none running, back to the previous revision. */
export function rollbackDeployment(db: Db, caller: Caller, id: string, reason?: string | null): Promise<DeploymentRow> {
  return change(db, caller, id, 'deployment.rollback', async (tx, d, revisions) => {
    const why = reasonOf(reason ?? 'rolled back by hand');
    assertChangeable(d);
    if (active(d.rollout)) {
      const next = byNumber(revisions, d.rollout.revision)!;
      await setRevision(tx, next.id, 'ROLLED_BACK', why);
      await deploymentEvent(tx, d, 'ROLLED_BACK', { revision: next.number, actor: caller.identity, reason: why, details: { to: d.rollout.from } });
      await auditChange(tx, caller, d, 'deployment.rollback', why, { revision: next.number, to: d.rollout.from });
      return { rollout: { ...d.rollout, state: 'ROLLED_BACK', reason: why } };
    }
    const serving = revisions.find((r) => r.state === 'SERVING');
    const previous = serving && [...revisions].reverse().find((r) => r.number < serving.number && r.state === 'RETIRED');
    if (!serving || !previous) throw conflict(`Deployment "${d.name}" has no earlier revision to roll back to.`);
    await setRevision(tx, serving.id, 'ROLLED_BACK', why);
    await setRevision(tx, previous.id, 'SERVING', null);
    await deploymentEvent(tx, d, 'ROLLED_BACK', { revision: serving.number, actor: caller.identity, reason: why, details: { to: previous.number } });
    await auditChange(tx, caller, d, 'deployment.rollback', why, { revision: serving.number, to: previous.number });
    return {};
  });
}

/** The revision a failover sends all traffic to (see Fallback), or null when there is none yet. */
export function fallbackRevision(d: DeploymentRow, revisions: DeploymentRevisionRow[]): DeploymentRevisionRow | null {
  if (d.fallback.kind === 'BASELINE') return revisions.find((r) => r.state === 'STANDBY') ?? null;
  if (active(d.rollout) && d.rollout.from !== null) return byNumber(revisions, d.rollout.from) ?? null;
  const serving = revisions.find((r) => r.state === 'SERVING');
  return (serving && [...revisions].reverse().find((r) => r.number < serving.number && r.state === 'RETIRED')) ?? null;
}

/** All traffic to the fallback in one deployer call (made by the caller after this commits); pauses a rollout. */
export function failoverDeployment(db: Db, caller: Caller, id: string, reason?: string | null): Promise<DeploymentRow> {
  return change(db, caller, id, 'deployment.failover', async (tx, d, revisions) => {
    const why = reasonOf(reason);
    if (d.failedOver) throw conflict(`Deployment "${d.name}" is failed over already (to revision ${d.failoverRevision}); restore it first.`);
    const target = fallbackRevision(d, revisions);
    if (!target)
      throw conflict(
        d.fallback.kind === 'BASELINE'
          ? `The baseline of "${d.name}" is not applied yet; wait for its first reconciliation.`
          : `Deployment "${d.name}" has no previous revision to fail over to; name a baseline version when creating a deployment for an instant fallback from the start.`,
      );
    if (target.health === 'FAILED')
      throw conflict(`The fallback, revision ${target.number}, has FAILED (${target.message ?? 'no message'}); it cannot take traffic.`);
    await deploymentEvent(tx, d, 'FAILED_OVER', { revision: target.number, actor: caller.identity, reason: why, details: { splitBefore: d.traffic } });
    await auditChange(tx, caller, d, 'deployment.failover', why, { to: target.number, splitBefore: d.traffic });
    return {
      failedOver: true,
      failoverRevision: target.number,
      splitBeforeFailover: d.traffic,
      rollout: d.rollout?.state === 'RUNNING' ? { ...d.rollout, state: 'PAUSED' } : d.rollout,
    };
  });
}

/** Reverses a failover: the split before it (a paused rollout resumes its step, its dwell counted afresh). */
export function restoreDeployment(db: Db, caller: Caller, id: string, reason?: string | null): Promise<DeploymentRow> {
  return change(db, caller, id, 'deployment.restore', async (tx, d) => {
    const why = reasonOf(reason ?? 'restored');
    if (!d.failedOver) throw conflict(`Deployment "${d.name}" is not failed over; there is nothing to restore.`);
    await deploymentEvent(tx, d, 'RESTORED', { revision: d.failoverRevision, actor: caller.identity, reason: why, details: { split: d.splitBeforeFailover } });
    await auditChange(tx, caller, d, 'deployment.restore', why, { split: d.splitBeforeFailover });
    const rollout = d.rollout?.state === 'PAUSED' ? { ...d.rollout, state: 'RUNNING' as const, stepStartedAt: new Date().toISOString() } : d.rollout;
    return { failedOver: false, failoverRevision: null, splitBeforeFailover: null, rollout };
  });
}

/** Marks the deployment for deletion; the reconciler deletes it from its deployer, then its rows. */
export function deleteDeployment(db: Db, caller: Caller, id: string): Promise<DeploymentRow> {
  return change(db, caller, id, 'deployment.delete', async (tx, d) => {
    await deploymentEvent(tx, d, 'DELETING', { actor: caller.identity });
    await auditChange(tx, caller, d, 'deployment.delete', 'deleted', {});
    return { deletingAt: new Date() };
  });
}

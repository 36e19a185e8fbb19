// The reconciler: level-triggered and crash-safe. Each pass claims deployments one at a time by a lease (a short
// transaction, FOR UPDATE SKIP LOCKED), so across replicas each is worked on by one at a time; then, with no
// transaction open, it asks the deployer what runs, creates revision N+1 when the followed alias points elsewhere
// (unique per deployment and number), applies pending revisions, steps a rollout (rollout.ts decides), and makes the
// deployer's split match what the database says it should be. Results are written after each deployer call, in a
// transaction that checks the generation read at the start: a person's change meanwhile wins, and the next pass
// (kicked at once) starts from it. A lease is renewed while its pass runs; a replica that dies mid-pass leaves it to
// expire (ATELIER_DEPLOYMENT_LEASE_MS, default 30 s) and the next one resumes from the database and the deployer's
// status, so split traffic always has an owner.
import { asc, eq } from 'drizzle-orm';
import type { DeployerRegistry } from '../../plugins/deployer-registry';
import { type Deployer, DeployerError, type DeploymentStatus } from '../../plugins/deployer-sdk';
import type { ObjectStore } from '../artifacts/store';
import { audit } from '../audit/audit';
import type { Db, Tx } from '../db/client';
import { type DeploymentRevisionRow, type DeploymentRow, deploymentRevisions, deployments, type Rollout } from '../db/tables/deployments';
import { identities } from '../db/tables/identities';
import { modelVersions, registeredModels } from '../db/tables/registry';
import { openAlert } from '../monitoring/alerts';
import { aliasOf, assertMayAlias } from '../registry/aliases';
import type { Domain } from '../vocabulary';
import { productionProblem } from './access';
import { deploymentEvent } from './events';
import { measureGates } from './gates';
import { claim, release, renewLease } from './lease';
import { revisionOf } from './materialise';
import { tagOnce } from './retag';
import { decideRollout, desiredSplit, gatesDue, type RevisionHealthState, sameSplit } from './rollout';
import type { ServingRecorder } from './serving';

export interface ReconcilerDeps {
  db: Db;
  store: ObjectStore;
  deployers: DeployerRegistry;
  /** Where model versions' files are fetched to. */
  filesDir: string;
  /** This replica's name in lease columns. */
  replica: string;
  /** This control plane's installation id (orphans.ts): every deployment is applied with it, so its deployer tags it. */
  installation: () => Promise<string>;
  /** How long a claim holds a deployment before another replica may take it; renewed every third of it while held. */
  leaseMs: number;
  log: (message: string) => void;
  /** After a commit that wrote webhook deliveries, alerts or signals. */
  afterCommit: () => void;
  now?: () => Date;
  /** Records what the deployers' routers measured as serving observations (serving.ts). */
  serving?: ServingRecorder;
  /**
   * After each write of a pass that changed what a page shows of a deployment (a revision, a rollout step, the
   * deployer's report differing from the stored one, its deletion): its live pages read it again (live.ts). A pass that
   * finds everything as it was signals nothing, so a watched deployment costs no read per pass.
   */
  touched?: (id: string) => void;
}

async function statusOf(deployer: Deployer, id: string): Promise<DeploymentStatus | null> {
  try {
    return await deployer.status(id);
  } catch (error) {
    if (error instanceof DeployerError && error.code === 'UNKNOWN_DEPLOYMENT') return null;
    throw error;
  }
}

/** A write after a deployer call: only if no person changed the deployment since `d` was read. */
async function ifUnchanged(deps: ReconcilerDeps, d: DeploymentRow, work: (tx: Tx, fresh: DeploymentRow) => Promise<void>): Promise<boolean> {
  const done = await deps.db.transaction(async (tx) => {
    const [fresh] = await tx.select().from(deployments).where(eq(deployments.id, d.id)).for('update');
    if (!fresh || fresh.generation !== d.generation) return false;
    await work(tx, fresh);
    await tx.update(deployments).set({ updatedAt: new Date() }).where(eq(deployments.id, d.id));
    return true;
  });
  if (done) {
    deps.afterCommit();
    deps.touched?.(d.id);
  }
  return done;
}

const setRevision = (tx: Tx, id: string, patch: Partial<DeploymentRevisionRow>) =>
  tx
    .update(deploymentRevisions)
    .set({ ...patch, updatedAt: new Date() })
    .where(eq(deploymentRevisions.id, id));

/** Why the reconciler may not roll this version out now (label policy, production approval), or null. */
async function serveProblem(db: Db, d: DeploymentRow, versionId: string): Promise<string | null> {
  const [model] = await db.select().from(registeredModels).where(eq(registeredModels.id, d.modelId));
  const [version] = await db.select().from(modelVersions).where(eq(modelVersions.id, versionId));
  const [creator] = d.createdBy ? await db.select().from(identities).where(eq(identities.id, d.createdBy)) : [];
  try {
    if (creator) await assertMayAlias(db, creator, model!, version!, d.domain as Domain, 'deployment.rollout');
  } catch (error) {
    return (error as Error).message;
  }
  return productionProblem(db, model!, version!, d.domain as Domain);
}

/** The model version the deployment should serve now: its alias's, or its pinned one. */
async function targetVersion(db: Db, d: DeploymentRow): Promise<string | null> {
  if (!d.alias) return d.pinnedVersionId;
  return (await aliasOf(db, d.modelId, d.alias))?.versionId ?? null;
}

/**
 * Creates revision N+1 for `versionId` (REFUSED, audited and alerted when it may not be served here): N the highest
 * number the database or the deployer (`held`, its status) has. The deployer may hold numbers the database does not
 * (a database restored from a backup while the deployer ran on); reusing one of those, the deployer refused the
 * revision (REVISION_CONFLICT: the number was served with another model version), and so every next one.
 */
async function newRevision(
  deps: ReconcilerDeps,
  d: DeploymentRow,
  versionId: string,
  revisions: DeploymentRevisionRow[],
  held: DeploymentStatus | null,
  standby = false,
) {
  const problem = await serveProblem(deps.db, d, versionId);
  const number = Math.max(revisions.at(-1)?.number ?? 0, ...(held?.revisions.map((r) => r.number) ?? [])) + 1;
  await ifUnchanged(deps, d, async (tx, fresh) => {
    const [row] = await tx
      .insert(deploymentRevisions)
      .values({
        deploymentId: d.id,
        number,
        modelVersionId: versionId,
        role: standby ? 'BASELINE' : 'MAIN',
        state: problem ? 'REFUSED' : standby ? 'STANDBY' : 'PENDING',
        message: problem,
      })
      .onConflictDoNothing()
      .returning();
    if (!row) return;
    if (!problem) {
      await deploymentEvent(tx, fresh, 'REVISION_CREATED', { revision: number, details: { standby } });
      return;
    }
    await deploymentEvent(tx, fresh, 'REVISION_REFUSED', { revision: number, reason: problem });
    await audit(tx, {
      identity: null,
      action: 'deployment.rollout',
      decision: 'deny',
      subject: `deployment:${d.name}`,
      rule: 'a deployment serves only versions allowed in its domain (and, in production, approved)',
      details: { revision: number, reason: problem },
    });
    await openAlert(tx, {
      key: `deployment:${d.id}:${number}`,
      teamId: d.teamId,
      target: { kind: 'MODEL_VERSION', id: versionId },
      title: `Deployment ${d.name} refused revision ${number}: ${problem}`,
      details: { deployment: d.name, revision: number },
    });
  });
}

async function applyPending(deps: ReconcilerDeps, deployer: Deployer, d: DeploymentRow, rev: DeploymentRevisionRow, revisions: DeploymentRevisionRow[]) {
  const [model] = await deps.db.select().from(registeredModels).where(eq(registeredModels.id, d.modelId));
  const [version] = await deps.db.select().from(modelVersions).where(eq(modelVersions.id, rev.modelVersionId));
  const ref = `${model!.namespace}/${model!.name}${d.alias ? `@${d.alias}` : ''}`;
  const spec = { id: d.id, name: d.name, model: ref, domain: d.domain, settings: d.settings, installation: await deps.installation() };
  let failure: string | null = null;
  let health: RevisionHealthState = 'STARTING';
  try {
    const status = await deployer.apply(spec, revisionOf(deps.store, deps.filesDir, model!, version!, rev.number));
    const seen = status.revisions.find((r) => r.number === rev.number);
    health = seen?.health ?? 'STARTING';
    if (health === 'FAILED') failure = seen?.message ?? 'the revision FAILED';
  } catch (error) {
    if (!(error instanceof DeployerError)) throw error; // the backend itself: tried again next pass
    failure = error.message;
  }
  const serving = revisions.find((r) => r.state === 'SERVING');
  await ifUnchanged(deps, d, async (tx, fresh) => {
    if (failure) {
      await setRevision(tx, rev.id, { state: 'FAILED', message: failure, health: 'FAILED' });
      await deploymentEvent(tx, fresh, 'REVISION_FAILED', { revision: rev.number, reason: failure });
      return;
    }
    if (rev.state === 'STANDBY') return;
    if (!serving) {
      await setRevision(tx, rev.id, { state: 'SERVING', health });
      await deploymentEvent(tx, fresh, 'COMPLETED', { revision: rev.number, reason: 'first revision' });
      return;
    }
    // A newer version supersedes a rollout still running: it starts again from what serves.
    const running = fresh.rollout && (fresh.rollout.state === 'RUNNING' || fresh.rollout.state === 'PAUSED') ? fresh.rollout : null;
    if (running && running.revision !== rev.number) {
      const old = revisions.find((r) => r.number === running.revision);
      if (old) await setRevision(tx, old.id, { state: 'RETIRED', message: `superseded by revision ${rev.number}` });
    }
    await setRevision(tx, rev.id, { state: 'ROLLING_OUT', health });
    const now = (deps.now?.() ?? new Date()).toISOString();
    const rollout: Rollout = {
      revision: rev.number,
      from: serving.number,
      step: -1,
      percent: 0,
      startedAt: now,
      stepStartedAt: now,
      state: 'RUNNING',
      reason: null,
    };
    await tx.update(deployments).set({ rollout }).where(eq(deployments.id, d.id));
  });
}

/** One decision of a running rollout (rollout.ts), written; the traffic follows in `syncTraffic`. */
async function stepRollout(deps: ReconcilerDeps, d: DeploymentRow, rollout: Rollout, revisions: DeploymentRevisionRow[], status: DeploymentStatus | null) {
  const now = deps.now?.() ?? new Date();
  const next = revisions.find((r) => r.number === rollout.revision);
  const from = revisions.find((r) => r.number === rollout.from);
  if (!next) return;
  const health = (status?.revisions.find((r) => r.number === rollout.revision)?.health ?? 'STARTING') as RevisionHealthState;
  const gates = gatesDue(d.policy, rollout, now)
    ? await measureGates(deps.db, d.policy.gates, {
        deployment: d.name,
        newRevision: next.number,
        oldRevision: from?.number ?? null,
        newVersionId: next.modelVersionId,
        oldVersionId: from?.modelVersionId ?? null,
        since: new Date(rollout.stepStartedAt),
        now,
        step: rollout.step,
      })
    : { breach: null };
  // What the gates said, kept on the rollout for people (GraphQL's DeploymentRollout.gates) with the decision.
  const measured = gates.results?.length ? { gates: gates.results } : {};
  const decision = decideRollout(d.policy, rollout, now, health, gates);
  if (decision.kind === 'wait') {
    // A hold says why on the rollout (once, not every pass).
    if (decision.reason && decision.reason !== rollout.reason)
      await ifUnchanged(deps, d, async (tx, fresh) => {
        await deploymentEvent(tx, fresh, 'HOLDING', { revision: next.number, reason: decision.reason! });
        await tx
          .update(deployments)
          .set({ rollout: { ...rollout, ...measured, reason: decision.reason! } })
          .where(eq(deployments.id, d.id));
      });
    return;
  }
  await ifUnchanged(deps, d, async (tx, fresh) => {
    let patch: Rollout = { ...rollout, ...measured };
    if (decision.kind === 'setTraffic') {
      patch = { ...patch, step: decision.step, percent: decision.percent, stepStartedAt: now.toISOString(), reason: null };
      await deploymentEvent(tx, fresh, 'STEP', { revision: next.number, details: { step: decision.step, percent: decision.percent } });
    } else if (decision.kind === 'complete') {
      patch = { ...patch, state: 'COMPLETE', percent: 100, reason: null };
      await setRevision(tx, next.id, { state: 'SERVING', message: null });
      if (from) await setRevision(tx, from.id, { state: 'RETIRED' });
      await deploymentEvent(tx, fresh, 'COMPLETED', { revision: next.number });
    } else {
      patch = { ...patch, state: 'ROLLED_BACK', reason: decision.reason };
      await setRevision(tx, next.id, { state: 'ROLLED_BACK', message: decision.reason });
      await deploymentEvent(tx, fresh, 'ROLLED_BACK', { revision: next.number, reason: decision.reason, details: { to: rollout.from, step: rollout.step } });
      await audit(tx, {
        identity: null,
        action: 'deployment.rollback',
        decision: 'allow',
        subject: `deployment:${d.name}`,
        rule: 'a rollout whose gates are breached or whose revision is not ready in time rolls back by itself',
        details: { revision: next.number, to: rollout.from, reason: decision.reason },
      });
      await openAlert(tx, {
        key: `deployment:${d.id}:${next.number}`,
        teamId: d.teamId,
        target: { kind: 'MODEL_VERSION', id: next.modelVersionId },
        title: `Deployment ${d.name} rolled revision ${next.number} back: ${decision.reason}`,
        details: { deployment: d.name, revision: next.number, to: rollout.from },
      });
    }
    await tx.update(deployments).set({ rollout: patch }).where(eq(deployments.id, d.id));
  });
}

/** Ends a running rollout without a breach (its revision ROLLED_BACK with `reason`). */
async function stopRollout(deps: ReconcilerDeps, d: DeploymentRow, revisions: DeploymentRevisionRow[], reason: string) {
  const rollout = d.rollout;
  if (!rollout || (rollout.state !== 'RUNNING' && rollout.state !== 'PAUSED')) return;
  const next = revisions.find((r) => r.number === rollout.revision);
  await ifUnchanged(deps, d, async (tx, fresh) => {
    if (next) await setRevision(tx, next.id, { state: 'ROLLED_BACK', message: reason });
    await deploymentEvent(tx, fresh, 'ROLLED_BACK', { revision: rollout.revision, reason, details: { to: rollout.from } });
    await tx
      .update(deployments)
      .set({ rollout: { ...rollout, state: 'ROLLED_BACK', reason } })
      .where(eq(deployments.id, d.id));
  });
}

/** Makes the deployer's split match the stored state (one call: `rollback` when one revision takes all). */
export async function syncTraffic(db: Db, deployer: Deployer, id: string, status?: DeploymentStatus | null): Promise<DeploymentStatus | null> {
  const [d] = await db.select().from(deployments).where(eq(deployments.id, id));
  if (!d || d.deletingAt) return status ?? null;
  const revisions = await db.select().from(deploymentRevisions).where(eq(deploymentRevisions.deploymentId, id));
  const serving = revisions.find((r) => r.state === 'SERVING')?.number ?? null;
  const desired = desiredSplit({ failedOver: d.failedOver, failoverRevision: d.failoverRevision, rollout: d.rollout, serving });
  const current = status === undefined ? await statusOf(deployer, id) : status;
  if (!desired || !current || sameSplit(current.traffic, desired)) return current;
  const entries = Object.entries(desired).filter(([, p]) => p > 0);
  return entries.length === 1 ? deployer.rollback(id, Number(entries[0]![0])) : deployer.setTraffic(id, desired);
}

/** One deployment, claimed: everything above, in order, each step from fresh reads. */
async function reconcile(deps: ReconcilerDeps, claimed: DeploymentRow): Promise<void> {
  let deployer: Deployer;
  try {
    deployer = deps.deployers.get(claimed.deployer);
  } catch (error) {
    await deps.db
      .update(deployments)
      .set({ message: (error as Error).message })
      .where(eq(deployments.id, claimed.id));
    if (claimed.message !== (error as Error).message) deps.touched?.(claimed.id);
    await release(deps, claimed, null);
    return;
  }
  if (claimed.deletingAt) {
    await deployer.delete(claimed.id);
    await deps.db.delete(deployments).where(eq(deployments.id, claimed.id));
    deps.serving?.forget(claimed.id);
    deps.touched?.(claimed.id);
    return;
  }
  const load = async () => {
    const [d] = await deps.db.select().from(deployments).where(eq(deployments.id, claimed.id));
    return {
      d: d!,
      revisions: await deps.db
        .select()
        .from(deploymentRevisions)
        .where(eq(deploymentRevisions.deploymentId, claimed.id))
        .orderBy(asc(deploymentRevisions.number)),
    };
  };
  let { d, revisions } = await load();
  let status = await statusOf(deployer, d.id);
  await tagOnce(deps, deployer, d, revisions, status);
  // Before the rollout steps: its gates read what the traffic so far measured.
  await deps.serving
    ?.record(d, revisions, status, deps.now?.() ?? new Date())
    .catch((error) => deps.log(`deployment ${d.name}: serving observations not recorded: ${(error as Error).message}`));
  const target = await targetVersion(deps.db, d);
  const main = revisions.filter((r) => r.role === 'MAIN');
  const latest = main.at(-1);
  const serving = main.find((r) => r.state === 'SERVING');
  if (target && latest?.modelVersionId !== target) {
    // Back to what serves (an alias rolled back): a rollout running stops; otherwise nothing new to roll out.
    if (serving?.modelVersionId === target) await stopRollout(deps, d, revisions, 'the alias moved back to the version serving');
    else await newRevision(deps, d, target, revisions, status);
    ({ d, revisions } = await load());
  }
  if (d.fallback.kind === 'BASELINE' && serving && !revisions.some((r) => r.role === 'BASELINE')) {
    await newRevision(deps, d, d.fallback.versionId, revisions, status, true);
    ({ d, revisions } = await load());
  }
  const standby = revisions.find((r) => r.state === 'STANDBY' && !status?.revisions.some((s) => s.number === r.number));
  const pending = [...revisions].reverse().find((r) => r.state === 'PENDING') ?? standby;
  if (pending) {
    await applyPending(deps, deployer, d, pending, revisions);
    ({ d, revisions } = await load());
    status = await statusOf(deployer, d.id);
  }
  if (d.rollout?.state === 'RUNNING' && !d.failedOver) {
    await stepRollout(deps, d, d.rollout, revisions, status);
    ({ d, revisions } = await load());
  }
  status = await syncTraffic(deps.db, deployer, d.id, status);
  if (await release(deps, d, status)) deps.touched?.(d.id);
}

/** One pass: every deployment not checked since the pass began, one at a time. Returns how many were reconciled. */
export async function reconcileDeployments(deps: ReconcilerDeps, only?: string): Promise<number> {
  const passStart = new Date();
  let count = 0;
  for (;;) {
    const d = await claim(deps, passStart, only);
    if (!d) return count;
    count++;
    const renew = renewLease(deps, d);
    try {
      await reconcile(deps, d);
    } catch (error) {
      deps.log(
        `deployment ${d.name}: ${(error as Error).message}${(error as Error).cause ? ` (${((error as Error).cause as Error).message})` : ''} (will retry)`,
      );
      await release(deps, d, null).catch(() => undefined);
    } finally {
      renew.stop();
    }
    if (only) return count;
  }
}

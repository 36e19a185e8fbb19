// A deployment's lease: which replica's reconciler works on it now. Claimed in a short transaction (FOR UPDATE SKIP
// LOCKED), renewed while the pass works on it (an apply may take minutes), so it can be short: a replica that dies
// leaves its deployments to another within one lease. Released with what the deployer last reported.
import { and, asc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { DeploymentStatus } from '../../plugins/deployer-sdk';
import { retryingTransaction } from '../db/client';
import { type DeploymentRow, deploymentRevisions, deployments } from '../db/tables/deployments';
import type { ReconcilerDeps } from './reconciler';
import { sameSplit } from './rollout';

type LeaseDeps = Pick<ReconcilerDeps, 'db' | 'replica' | 'leaseMs'>;

/** Claims one deployment not yet checked in this pass (or the one named), if its lease is free. */
export async function claim(deps: LeaseDeps, passStart: Date, id?: string): Promise<DeploymentRow | null> {
  return deps.db.transaction(async (tx) => {
    const free = or(isNull(deployments.leaseUntil), lt(deployments.leaseUntil, sql`now()`));
    const [row] = await tx
      .select({ id: deployments.id })
      .from(deployments)
      .where(and(free, id ? eq(deployments.id, id) : lt(deployments.checkedAt, passStart)))
      .orderBy(asc(deployments.checkedAt))
      .limit(1)
      .for('update', { skipLocked: true });
    if (!row) return null;
    const [claimed] = await tx
      .update(deployments)
      .set({ leaseOwner: deps.replica, leaseUntil: sql`now() + ${`${deps.leaseMs} milliseconds`}::interval` })
      .where(eq(deployments.id, row.id))
      .returning();
    return claimed ?? null;
  });
}

/**
 * Frees the lease and stores what the deployer reported. Resolves with whether that changed anything a page shows
 * (the deployment's url, readiness, message or split; a revision's health, restarts or message): only then does the
 * reconciler signal its live pages (server/deployments/live.ts), so a pass that finds all as it was reads nothing more.
 */
export async function release(deps: LeaseDeps, d: DeploymentRow, status: DeploymentStatus | null): Promise<boolean> {
  return retryingTransaction(deps.db, async (tx) => {
    // The deployment's row first, as every transaction that writes its revisions takes it (a person's change, the
    // reconciler's ifUnchanged): revisions first here deadlocked with a promote that held the row and wanted them.
    const [held] = await tx
      .select({ url: deployments.url, ready: deployments.ready, message: deployments.message, traffic: deployments.traffic })
      .from(deployments)
      .where(eq(deployments.id, d.id))
      .for('update');
    let changed = false;
    if (status) {
      for (const r of status.revisions) {
        const message = r.health === 'READY' ? {} : { message: r.message };
        // Written only when it differs: an unchanged revision is neither rewritten nor signalled.
        const differs = or(
          sql`${deploymentRevisions.health} is distinct from ${r.health}`,
          sql`${deploymentRevisions.restarts} is distinct from ${r.restarts}`,
          ...(r.health === 'READY' ? [] : [sql`${deploymentRevisions.message} is distinct from ${r.message ?? null}`]),
        );
        const written = await tx
          .update(deploymentRevisions)
          .set({ health: r.health, restarts: r.restarts, ...message })
          .where(and(eq(deploymentRevisions.deploymentId, d.id), eq(deploymentRevisions.number, r.number), differs))
          .returning({ id: deploymentRevisions.id });
        if (written.length) changed = true;
      }
      if (held && (held.url !== status.url || held.ready !== status.ready || held.message !== status.message || !sameSplit(held.traffic, status.traffic)))
        changed = true;
    }
    await tx
      .update(deployments)
      .set({
        leaseOwner: null,
        leaseUntil: null,
        checkedAt: new Date(),
        ...(status ? { url: status.url, ready: status.ready, message: status.message, traffic: status.traffic } : {}),
      })
      .where(and(eq(deployments.id, d.id), eq(deployments.leaseOwner, deps.replica)));
    return changed;
  });
}

/** Renews the lease every third of it until `stop` (a failed renewal is covered by the next, or by the lease running out). */
export function renewLease(deps: LeaseDeps, d: DeploymentRow): { stop(): void } {
  const timer = setInterval(
    () => {
      deps.db
        .update(deployments)
        .set({ leaseUntil: sql`now() + ${`${deps.leaseMs} milliseconds`}::interval` })
        .where(and(eq(deployments.id, d.id), eq(deployments.leaseOwner, deps.replica)))
        .catch(() => undefined);
    },
    Math.max(100, Math.floor(deps.leaseMs / 3)),
  );
  return { stop: () => clearInterval(timer) };
}

// A deployment's lease: which replica's reconciler works on it now. Claimed in a short transaction (FOR UPDATE SKIP
// LOCKED), renewed while the pass works on it (an apply may take minutes), so it can be short: a replica that dies
// leaves its deployments to another within one lease. Released with what the deployer last reported.
import { and, asc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { DeploymentStatus } from '../../plugins/deployer-sdk';
import { retryingTransaction } from '../db/client';
import { type DeploymentRow, deploymentRevisions, deployments } from '../db/tables/deployments';
import type { ReconcilerDeps } from './reconciler';

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

export async function release(deps: LeaseDeps, d: DeploymentRow, status: DeploymentStatus | null) {
  await retryingTransaction(deps.db, async (tx) => {
    // The deployment's row first, as every transaction that writes its revisions takes it (a person's change, the
    // reconciler's ifUnchanged): revisions first here deadlocked with a promote that held the row and wanted them.
    await tx.select({ id: deployments.id }).from(deployments).where(eq(deployments.id, d.id)).for('update');
    if (status) {
      for (const r of status.revisions)
        await tx
          .update(deploymentRevisions)
          .set({ health: r.health, restarts: r.restarts, ...(r.health === 'READY' ? {} : { message: r.message }) })
          .where(and(eq(deploymentRevisions.deploymentId, d.id), eq(deploymentRevisions.number, r.number)));
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

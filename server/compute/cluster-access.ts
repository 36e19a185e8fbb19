// Who may run tasks on a hot cluster, and on which pools a member may create one. A cluster belongs to a team (or to
// its teamless creator): only what acts for that owner runs on it (a member's run, a schedule its team owns, the
// nested runs of either), so another team can neither borrow its warm compute nor read what its tasks leave there.
import { ne } from 'drizzle-orm';
import { AuditedDenial } from '../audit/audit';
import { scopesAllow, type TokenScopes } from '../auth/ability';
import type { Db, Tx } from '../db/client';
import { type HotCluster, hotClusters } from '../db/tables/executors';
import type { Identity } from '../db/tables/identities';
import { type Owner, ownershipRefusal } from '../teams/ownership';
import { teamsByIds, writableTeamsOf } from '../teams/queries';

/** Whom a run acts for: its starter (admin or not, with their writing teams), or a schedule (its owning team). */
export interface RunActor {
  identity: Identity | null;
  admin: boolean;
  teamIds: string[];
  /** The scopes of the token behind it (a starter's, or the one that created the schedule); null or absent: unscoped. */
  scopes?: TokenScopes;
  /** A schedule's, trigger's or monitor's owning team: what its runs read is bounded by the team's grants too. */
  owningTeamId?: string | null;
}

export async function actorOfIdentity(db: Db | Tx, identity: Identity, scopes: TokenScopes = null): Promise<RunActor> {
  return { identity, admin: identity.role === 'admin', teamIds: (await writableTeamsOf(db as Db, identity.id)).map((t) => t.id), scopes };
}

/**
 * A cluster of a team: that team's writing members; of no team: its creator (or anyone, for one the platform made).
 * A scoped token's runs (and a schedule's, trigger's or monitor's made with one) need `start:HotCluster` besides:
 * `start:Run` alone does not spend an owner's warm, costly compute, whoever holds it (an admin's token included).
 */
export function mayUseCluster(actor: RunActor, cluster: Pick<HotCluster, 'teamId' | 'createdBy'>): boolean {
  return clusterRefusal(actor, cluster) === null;
}

function clusterRefusal(actor: RunActor, cluster: Pick<HotCluster, 'teamId' | 'createdBy'>): 'scope' | 'owner' | null {
  if (!scopesAllow(actor.scopes, 'start', 'HotCluster')) return 'scope';
  if (actor.admin) return null;
  if (cluster.teamId) return actor.teamIds.includes(cluster.teamId) ? null : 'owner';
  return cluster.createdBy === null || cluster.createdBy === actor.identity?.id ? null : 'owner';
}

export const CLUSTER_USE_RULE =
  'only what acts for a hot cluster’s owning team (or its teamless creator) and admins run tasks on it, and a scoped token only with start:HotCluster';

/** Throws an AuditedDenial naming the first cluster of `clusters` the actor may not run tasks on. */
export async function assertMayUseClusters(db: Db | Tx, actor: RunActor, clusters: Iterable<HotCluster>, subject: string): Promise<void> {
  const refused = [...clusters].map((c) => ({ cluster: c, why: clusterRefusal(actor, c) })).find((r) => r.why !== null);
  if (!refused) return;
  const { cluster, why } = refused;
  const [team] = cluster.teamId ? await teamsByIds(db as Db, [cluster.teamId]) : [];
  throw new AuditedDenial(
    {
      identity: actor.identity,
      action: 'hotCluster.use',
      decision: 'deny',
      subject,
      rule: CLUSTER_USE_RULE,
      details: { hotCluster: cluster.name, team: team?.name ?? null, ...(why === 'scope' ? { scopes: actor.scopes ?? null } : {}) },
    },
    why === 'scope'
      ? `Hot cluster ${cluster.name} runs tasks only for tokens scoped with start:HotCluster, and this run acts for a token scoped ${(actor.scopes ?? []).join(', ')}: use a token with start:HotCluster (or an unscoped one), or leave the hot cluster out.`
      : ownershipRefusal(`Hot cluster ${cluster.name}`, team?.name ?? null, 'run tasks on'),
  );
}

export interface PoolPolicy {
  /** ATELIER_HOT_CLUSTER_POOLS: the pools members may use, for some teams or all; null: any pool. */
  pools: Record<string, string[] | '*'> | null;
  /** Executors that keep clusters as pods pulling the cluster's pool themselves (from host heartbeats). */
  remoteExecutors: Set<string>;
}

/**
 * Why a member may not create a cluster on `pool` (null: may): an operator's list of pools, a pool another owner's
 * live cluster holds, and, for executors whose pods pull the pool themselves, any pool but the cluster's own (its pods
 * would run whatever other tasks are sent there, with the cluster's spec).
 */
export async function poolRefusal(
  db: Db,
  owner: Owner,
  input: { name: string; executor: string; pool: string; teamId: string | null },
  policy: PoolPolicy,
): Promise<string | null> {
  if (owner.admin) return null;
  if (policy.pools) {
    const allowed = policy.pools[input.pool];
    const teamNames = input.teamId ? (await teamsByIds(db, [input.teamId])).map((t) => t.name) : [];
    if (!allowed || (allowed !== '*' && !teamNames.some((n) => allowed.includes(n)))) {
      const open = Object.entries(policy.pools)
        .filter(([, teams]) => teams === '*' || teamNames.some((n) => teams.includes(n)))
        .map(([p]) => p);
      return `pool ${input.pool} is not open to ${teamNames[0] ? `team "${teamNames[0]}"` : 'you'} for hot clusters (ATELIER_HOT_CLUSTER_POOLS); use ${open.length ? open.join(', ') : 'none: ask an operator'}`;
    }
  }
  if (policy.remoteExecutors.has(input.executor) && input.pool !== input.name)
    return `executor ${input.executor} keeps hot clusters as pods that pull the cluster's pool themselves, so a member's cluster gets a pool of its own: --pool ${input.name}`;
  const holders = await db.select().from(hotClusters).where(ne(hotClusters.state, 'ENDED'));
  const other = holders.find(
    (c) => c.pool === input.pool && (c.teamId !== input.teamId || (c.teamId === null && c.createdBy !== owner.identity.id)) && c.name !== input.name,
  );
  if (other) return `pool ${input.pool} is held by hot cluster ${other.name} of another owner; pick another pool (--pool NAME)`;
  return null;
}

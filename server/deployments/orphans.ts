// Deployments a deployer serves that no row names: after a restore from a backup taken before one was created, its
// deployer (a model server process, an InferenceService, another team's rollout) keeps serving it, and nothing in the
// database would ever stop it. Every few minutes each deployer that can is asked what it holds for this installation
// (Deployer.list, filtered by the id in the `installation` table, so another control plane's deployments never come
// up); one that no row names and is still listed after the grace is deleted at the deployer, with an audit entry, a
// log line and a metric. A deployment whose row exists is never touched: rows are read after the deployer answers
// (a deployer only holds a deployment after its row was written) and again just before the delete. One replica sweeps
// per interval (it claims the pass on the installation row, as the monitor evaluator claims due monitors), and what a
// pass saw is kept on that row, so the grace runs from the first sight by any replica, across restarts.
import { inArray, sql } from 'drizzle-orm';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeployerRegistry } from '../../plugins/deployer-registry';
import { type Deployer, DeployerError, type HeldDeployment } from '../../plugins/deployer-sdk';
import { audit } from '../audit/audit';
import { type Db, queryRows } from '../db/client';
import { deployments } from '../db/tables/deployments';
import { installation } from '../db/tables/installation';
import { isUuid } from '../db/uuid';
import { METRIC_PREFIX } from '../metrics/instruments';

/** This control plane's installation id: made on first call (one row, kept by a restore), then read. */
export async function installationId(db: Db): Promise<string> {
  await db.insert(installation).values({ one: true }).onConflictDoNothing();
  const [row] = await db.select({ id: installation.id }).from(installation);
  return row!.id;
}

export interface OrphanSweeperOptions {
  db: Db;
  deployers: DeployerRegistry;
  /** The installation id (installationId), read once. */
  installation: () => Promise<string>;
  /** How long a deployment must stay listed with no row before it is stopped (ATELIER_DEPLOYMENT_ORPHAN_GRACE_SECONDS). */
  graceMs: number;
  /**
   * false: orphans are logged and counted, never stopped (ATELIER_DEPLOYMENT_STOP_ORPHANS=false), for a control plane
   * that shares its deployers' backends with another holding the same installation id (a copy of its database).
   */
  stop: boolean;
  /** Smallest time between two sweeps (the reconciler's poll): a sweep runs every graceMs / 2, at most every minute. */
  pollMs: number;
  log: (message: string) => void;
  /** Where the gauges and the counter are registered (the app's metrics registry). */
  metrics?: Registry;
  now?: () => number;
}

export interface OrphanSweeper {
  /** One sweep, if one is due; never throws (a deployer that fails to answer is tried again next time). */
  sweep(): Promise<void>;
}

/** The sweep's shared state (installation.orphan_sightings): orphans by deployer and id, and who cannot list, with why. */
interface OrphanSightings {
  seen?: Record<string, Record<string, { held: HeldDeployment; since: number }>>;
  unable?: Record<string, string>;
}

const RULE =
  'a deployment its deployer holds for this installation that no row names (created after the backup the database was restored from) is stopped after the grace';

export function createOrphanSweeper(options: OrphanSweeperOptions): OrphanSweeper {
  const { db, deployers, log } = options;
  const now = options.now ?? Date.now;
  const everyMs = Math.max(options.pollMs, Math.min(60_000, Math.floor(options.graceMs / 2)));
  /** Per deployer: the orphans seen, by id, with when a replica first saw each (as the last pass left them). */
  let seen = new Map<string, Map<string, { held: HeldDeployment; since: number }>>();
  /** Deployers that cannot list, with why (said once, until it changes). */
  let unable = new Map<string, string>();
  let last = Number.NEGATIVE_INFINITY;
  const registers = options.metrics ? [options.metrics] : [];
  const stopped = new Counter({
    name: `${METRIC_PREFIX}deployments_orphans_stopped_total`,
    help: 'Deployments this replica stopped at their deployer because no row named them (after a restore from an older backup), by deployer.',
    labelNames: ['deployer'] as const,
    registers,
  });
  new Gauge({
    name: `${METRIC_PREFIX}deployments_orphaned`,
    help: 'Deployments a deployer holds for this installation that no row names, waiting out ATELIER_DEPLOYMENT_ORPHAN_GRACE_SECONDS before they are stopped, as the last sweep (of any replica) saw them, by deployer.',
    labelNames: ['deployer'] as const,
    registers,
    collect() {
      this.reset();
      for (const [deployer, ids] of seen) this.set({ deployer }, ids.size);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}deployers_unable_to_clean_up`,
    help: 'Deployers that cannot list what they hold (no list call, or a backend without one): 1 each; deployments they hold that no row names are not stopped.',
    labelNames: ['deployer'] as const,
    registers,
    collect() {
      this.reset();
      for (const deployer of unable.keys()) this.set({ deployer }, 1);
    },
  });

  function cannotList(name: string, why: string) {
    if (unable.get(name) !== why)
      log(
        `deployer ${name} cannot clean up: ${why}; a deployment it serves that no row names (after a restore from an older backup) is not stopped: stop it at the deployer`,
      );
    unable.set(name, why);
    seen.delete(name);
  }

  /** The ids among `ids` that a row names. */
  async function named(ids: string[]): Promise<Set<string>> {
    const valid = ids.filter((id) => isUuid(id));
    if (!valid.length) return new Set();
    const rows = await db.select({ id: deployments.id }).from(deployments).where(inArray(deployments.id, valid));
    return new Set(rows.map((r) => r.id));
  }

  async function stop(name: string, deployer: Deployer, held: HeldDeployment, since: number) {
    // Checked again at the last moment: a deployment whose row exists is never stopped here.
    if ((await named([held.id])).size) return;
    await deployer.delete(held.id);
    const label = held.name ? `${held.name} (${held.id})` : held.id;
    const graceSeconds = Math.round(options.graceMs / 1000);
    await audit(db, {
      identity: null,
      action: 'deployment.orphan.stop',
      decision: 'allow',
      subject: `deployment:${held.name ?? held.id}`,
      rule: RULE,
      details: { deployer: name, id: held.id, name: held.name ?? null, seenSince: new Date(since).toISOString(), graceSeconds },
    });
    stopped.inc({ deployer: name });
    log(`deployment ${label} on deployer ${name}: no row names it (a database restored from an older backup?): stopped it after ${graceSeconds} s`);
  }

  async function sweepDeployer(name: string, installationId: string) {
    const deployer = deployers.get(name);
    if (!deployer.list) return cannotList(name, 'it has no list call');
    let held: HeldDeployment[];
    try {
      held = await deployer.list(installationId);
    } catch (error) {
      if (error instanceof DeployerError && error.code === 'CANNOT_LIST') return cannotList(name, error.message);
      return log(`deployer ${name}: listing its deployments failed: ${(error as Error).message} (will retry)`);
    }
    unable.delete(name);
    const rows = await named(held.map((h) => h.id));
    const was = seen.get(name) ?? new Map();
    const next = new Map<string, { held: HeldDeployment; since: number }>();
    for (const h of held) {
      if (rows.has(h.id)) continue;
      const since = was.get(h.id)?.since ?? now();
      if (!was.has(h.id))
        log(
          `deployment ${h.name ?? h.id} (${h.id}) on deployer ${name}: no row names it; ${
            options.stop
              ? `it is stopped in ${Math.round(options.graceMs / 1000)} s unless one does`
              : 'it is not stopped (ATELIER_DEPLOYMENT_STOP_ORPHANS=false): stop it at the deployer if nothing else owns it'
          }`,
        );
      next.set(h.id, { held: h, since });
    }
    seen.set(name, next);
    for (const [id, { held: h, since }] of next) {
      if (!options.stop || now() - since < options.graceMs) continue;
      try {
        await stop(name, deployer, h, since);
        next.delete(id);
      } catch (error) {
        log(`deployment ${h.name ?? h.id} on deployer ${name}: stopping it failed: ${(error as Error).message} (will retry)`);
      }
    }
  }

  /** The shared state as this replica keeps it. */
  function adopt(state: OrphanSightings) {
    seen = new Map(Object.entries(state.seen ?? {}).map(([name, ids]) => [name, new Map(Object.entries(ids))]));
    unable = new Map(Object.entries(state.unable ?? {}));
  }

  /**
   * Claims this interval's pass for this replica: true once per interval among all replicas (the row's update is the
   * claim; a replica that finds it claimed since `everyMs` ago takes the last pass's view instead).
   */
  async function claimPass(): Promise<boolean> {
    const at = now();
    const [claimed] = await queryRows<{ sightings: OrphanSightings }>(
      db,
      sql`update installation set orphans_swept_at = ${new Date(at).toISOString()}::timestamptz
          where orphans_swept_at is null or orphans_swept_at <= ${new Date(at - everyMs).toISOString()}::timestamptz
          returning orphan_sightings as sightings`,
    );
    if (claimed) {
      adopt(claimed.sightings);
      return true;
    }
    const [row] = await db.select({ sightings: installation.orphanSightings }).from(installation);
    adopt((row?.sightings ?? {}) as OrphanSightings);
    return false;
  }

  async function keep() {
    const state: OrphanSightings = {
      seen: Object.fromEntries([...seen].map(([name, ids]) => [name, Object.fromEntries(ids)])),
      unable: Object.fromEntries(unable),
    };
    await db.update(installation).set({ orphanSightings: state });
  }

  return {
    async sweep() {
      if (now() - last < everyMs) return;
      last = now();
      let id: string;
      try {
        id = await options.installation();
      } catch (error) {
        return log(`deployments: the installation id could not be read: ${(error as Error).message} (will retry)`);
      }
      try {
        if (!(await claimPass())) return;
      } catch (error) {
        return log(`deployments: claiming an orphan sweep failed: ${(error as Error).message} (will retry)`);
      }
      for (const name of deployers.names()) {
        try {
          await sweepDeployer(name, id);
        } catch (error) {
          log(`deployer ${name}: ${(error as Error).message} (will retry)`);
        }
      }
      await keep().catch((error) => log(`deployments: keeping the orphan sweep's state failed: ${(error as Error).message} (will retry)`));
    },
  };
}

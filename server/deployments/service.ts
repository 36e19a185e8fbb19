// The deployments part as the app wires it: the reconciler loop (kicked after registry changes and on a timer) and
// the changes people make, each followed by one deployer call that makes traffic match at once (a failover is then
// one `rollback` call after its commit) and a kick, so the reconciler confirms it from the deployer's status.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import type { Registry } from 'prom-client';
import type { Bus, Subscription } from '../../plugins/bus/types';
import { createDeployerRegistry } from '../../plugins/deployer-registry';
import type { Deployer } from '../../plugins/deployer-sdk';
import { createLocalDeployer, type LocalDeployerOptions } from '../../plugins/deployers/local';
import type { ObjectStore } from '../artifacts/store';
import type { Db } from '../db/client';
import { type DeploymentRow, deployments } from '../db/tables/deployments';
import type { LiveChanges } from '../events/live-changes';
import type { Service } from '../lifecycle';
import { kickedLoop } from '../lifecycle/kicked-loop';
import type { Caller } from './access';
import {
  type CreateDeploymentInput,
  createDeployment,
  deleteDeployment,
  failoverDeployment,
  promoteDeployment,
  restoreDeployment,
  rollbackDeployment,
} from './deployments';
import { createOrphanSweeper, installationId } from './orphans';
import { reconcileDeployments, syncTraffic } from './reconciler';
import { createServingRecorder } from './serving';

export interface DeploymentService extends Service {
  deployerNames(): string[];
  kick(): void;
  /** Passes until one finds nothing to do (tests). */
  drain(): Promise<void>;
  /** Reconciles one deployment now if no replica holds it. */
  reconcile(id: string): Promise<void>;
  create(caller: Caller, input: CreateDeploymentInput): Promise<DeploymentRow>;
  delete(caller: Caller, id: string): Promise<DeploymentRow>;
  promote(caller: Caller, id: string, reason?: string | null): Promise<DeploymentRow>;
  rollback(caller: Caller, id: string, reason?: string | null): Promise<DeploymentRow>;
  failover(caller: Caller, id: string, reason: string): Promise<DeploymentRow>;
  restore(caller: Caller, id: string, reason?: string | null): Promise<DeploymentRow>;
}

export interface DeploymentServiceOptions {
  db: Db;
  store: ObjectStore;
  /** With NATS, an alias moved on any replica ('registry-changed') kicks this replica's reconciler. */
  bus: Bus;
  /** Deployers beside the local one (kserve, webhook, …). */
  deployers?: Deployer[];
  /** The local deployer's options; its state lives under the data directory, which its servers never see. */
  localDeployer?: Partial<Omit<LocalDeployerOptions, 'stateDir'>>;
  dataDir: string;
  replica: string;
  pollMs: number;
  leaseMs?: number;
  /** How often a deployment's serving observations are recorded (serving.ts); default 10 s. */
  statsMs?: number;
  /** How long a deployment its deployer holds and no row names stays before it is stopped (orphans.ts); default 10 min. */
  orphanGraceMs?: number;
  /** false: orphans are only reported (ATELIER_DEPLOYMENT_STOP_ORPHANS). Default true. */
  stopOrphans?: boolean;
  /** Where the orphan sweep's metrics are registered. */
  metrics?: Registry;
  log: (message: string) => void;
  /** Kicked after a commit that wrote webhook deliveries, alerts or signals. */
  afterCommit: { kick(): void }[];
  /** Told which deployment a change or a reconciler pass touched, for the live pages (server/deployments/live.ts). */
  changes?: Pick<LiveChanges, 'touch'>;
}

/** How long a delete waits for a pass that holds the deployment to finish with it before leaving it to the reconciler. */
const DELETE_WAIT_MS = 15_000;

/** `feed` whose kick also calls `also` (a registry change may move an alias a deployment follows). */
export const alsoKicking = <T extends { kick(): void }>(feed: T, also: () => void): T => ({
  ...feed,
  kick() {
    feed.kick();
    also();
  },
});

export function createDeploymentService(options: DeploymentServiceOptions): DeploymentService {
  const { db, log, bus } = options;
  const deployers = createDeployerRegistry([
    createLocalDeployer({
      stateDir: path.join(options.dataDir, 'deployments', 'local'),
      hidePaths: [options.dataDir],
      ...options.localDeployer,
    }),
    ...(options.deployers ?? []),
  ]);
  let control: Subscription | undefined;
  let installation: Promise<string> | undefined;
  const deps = {
    installation: () =>
      (installation ??= installationId(db).catch((error) => {
        installation = undefined; // read again next time
        throw error;
      })),
    db,
    store: options.store,
    deployers,
    filesDir: path.join(options.dataDir, 'deployments', 'files'),
    replica: options.replica,
    leaseMs: options.leaseMs ?? 30_000,
    serving: createServingRecorder(db, options.statsMs ?? 10_000),
    log,
    afterCommit: () => {
      for (const k of options.afterCommit) k.kick();
    },
    touched: (id: string) => options.changes?.touch('deployments', [id]),
  };
  const orphans = createOrphanSweeper({
    db,
    deployers,
    installation: deps.installation,
    graceMs: options.orphanGraceMs ?? 600_000,
    stop: options.stopOrphans ?? true,
    pollMs: options.pollMs,
    log,
    metrics: options.metrics,
  });
  const loop = kickedLoop({
    pass: async () => {
      const count = await reconcileDeployments(deps);
      await orphans.sweep();
      return count;
    },
    batchSize: Number.MAX_SAFE_INTEGER,
    pollMs: options.pollMs,
    onError: (e) => log(`deployments: ${(e as Error).message} (will retry)`),
  });
  /** After a person's change committed: traffic now, then a reconciler pass to confirm. */
  const then = async (row: DeploymentRow): Promise<DeploymentRow> => {
    deps.afterCommit();
    deps.touched(row.id);
    try {
      const status = await syncTraffic(db, deployers.get(row.deployer), row.id);
      if (status) row = { ...row, traffic: status.traffic, ready: status.ready, url: status.url, message: status.message };
    } catch (error) {
      log(`deployment ${row.name}: ${(error as Error).message} (the reconciler tries again)`);
    }
    loop.kick();
    return row;
  };
  /**
   * Stops serving before the mutation returns. A pass that holds the deployment's lease (this replica's loop, or
   * another replica's) is waited out, up to DELETE_WAIT_MS: claiming once and giving up let `deploy delete` return
   * while the deployment still served, whenever the loop happened to be on it. Past that the reconciler finishes.
   */
  const deleteNow = async (row: DeploymentRow) => {
    const deadline = Date.now() + Math.min(DELETE_WAIT_MS, deps.leaseMs);
    while ((await reconcileDeployments(deps, row.id)) === 0 && Date.now() < deadline) {
      const [left] = await db.select({ id: deployments.id }).from(deployments).where(eq(deployments.id, row.id));
      if (!left) return;
      await sleep(50);
    }
  };
  return {
    name: 'deployment reconciler',
    async start() {
      if (bus.kind === 'jetstream') control = await bus.subscribeControl('registry-changed', () => loop.kick());
      loop.start();
    },
    async stop() {
      await control?.stop();
      await loop.stop();
      await deployers.close(); // deployments keep serving; the next start re-attaches to them
    },
    deployerNames: () => deployers.names(),
    kick: () => loop.kick(),
    drain: () => loop.drain(),
    reconcile: async (id) => {
      await reconcileDeployments(deps, id);
    },
    create: async (caller, input) => {
      const row = await createDeployment(db, caller, input, deployers.names());
      deps.afterCommit();
      deps.touched(row.id);
      loop.kick();
      return row;
    },
    delete: async (caller, id) => {
      const row = await deleteDeployment(db, caller, id);
      deps.afterCommit();
      deps.touched(row.id);
      await deleteNow(row).catch((e) => log(`deployment ${row.name}: ${(e as Error).message} (will retry)`));
      return row;
    },
    promote: async (caller, id, reason) => then(await promoteDeployment(db, caller, id, reason)),
    rollback: async (caller, id, reason) => then(await rollbackDeployment(db, caller, id, reason)),
    failover: async (caller, id, reason) => then(await failoverDeployment(db, caller, id, reason)),
    restore: async (caller, id, reason) => then(await restoreDeployment(db, caller, id, reason)),
  };
}

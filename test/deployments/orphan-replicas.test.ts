// The orphan sweep (server/deployments/orphans.ts) as replicas run it, on a real Postgres: two replicas sweeping in
// lockstep run one pass per interval between them (the pass is claimed on the installation row), so a deployment no
// row names is listed once per interval, stopped at its deployer once and audited once, its grace counted from the
// first sight by either replica. Before, each replica swept on its own: both listed every interval, and both stopped
// and audited the orphan.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDeployerRegistry } from '../../plugins/deployer-registry';
import { type Deployer, DeployerError, type HeldDeployment } from '../../plugins/deployer-sdk';
import { type Database, openDatabase } from '../../server/db/client';
import { auditEvents } from '../../server/db/tables/governance';
import { createOrphanSweeper, installationId } from '../../server/deployments/orphans';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let server: PostgresServer | undefined;
const databases: Database[] = [];

beforeAll(async () => {
  server = await startPostgres();
  for (let i = 0; i < 2; i++) databases.push(await openDatabase({ url: server.url, dataDir: '/nonexistent', maxConnections: 3 }));
}, 120_000);

afterAll(async () => {
  for (const database of databases) await database.close();
  await server?.stop();
}, 30_000);

it('sweeps once per interval among replicas, stopping and auditing an orphan once', async () => {
  const orphan: HeldDeployment = { id: crypto.randomUUID(), name: 'iris-orphan' };
  let held = [orphan];
  /** Which replica listed, at each tick; how often the orphan was deleted. */
  const lists: { replica: number; tick: number }[] = [];
  const deletes: number[] = [];
  let tick = 0;
  const unknown = async (id: string): Promise<never> => {
    throw new DeployerError('UNKNOWN_DEPLOYMENT', `no deployment ${id} here`);
  };
  /** One replica's deployer over the backend both share. */
  const deployer = (replica: number): Deployer => ({
    name: 'shared',
    apply: (d) => unknown(d.id),
    status: unknown,
    setTraffic: unknown,
    rollback: unknown,
    async delete(id) {
      deletes.push(tick);
      held = held.filter((h) => h.id !== id);
    },
    async list() {
      lists.push({ replica, tick });
      return held;
    },
  });
  let clock = Date.parse('2026-12-07T12:00:00Z');
  const logs: string[] = [];
  const sweepers = databases.map((database, replica) =>
    createOrphanSweeper({
      db: database.db,
      deployers: createDeployerRegistry([deployer(replica)]),
      installation: () => installationId(database.db),
      graceMs: 400, // a pass every 200 ms
      stop: true,
      pollMs: 10,
      log: (m) => logs.push(m),
      now: () => clock,
    }),
  );
  // Both replicas sweep at every tick of 100 ms (of the sweepers' clock), at once.
  for (; tick < 12; tick++, clock += 100) await Promise.all(sweepers.map((s) => s.sweep()));

  const perTick = new Map<number, number>();
  for (const l of lists) perTick.set(l.tick, (perTick.get(l.tick) ?? 0) + 1);
  expect(
    [...perTick.values()].every((n) => n === 1),
    JSON.stringify(lists),
  ).toBe(true);
  expect(lists).toHaveLength(6);
  expect(deletes).toEqual([4]); // first seen at tick 0, stopped at the first pass 400 ms on
  const stops = await databases[0]!.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.action, 'deployment.orphan.stop'), eq(auditEvents.subject, 'deployment:iris-orphan')));
  expect(stops).toHaveLength(1);
  expect(logs.filter((m) => m.includes('no row names it;'))).toHaveLength(1);
  expect(logs.filter((m) => m.includes('will retry'))).toEqual([]);
}, 60_000);

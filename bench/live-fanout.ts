// N graphql-ws subscribers of one token on `deploymentsChanged`, the deployments page's selection, while one deployment
// changes K times (its row updated and signalled, as the reconciler does after a write): the control plane's CPU per
// change, deliveries per second, and statements per change (each execution of a change reads its model, revisions and
// the caller's rights). In-process (the subscribers' clients share the CPU figure; they do the same work before and
// after), so compare it only against a base run in turns. The deployment's deployer does not exist: the reconciler
// notes that once and leaves it alone.
import { eq, sql } from 'drizzle-orm';
import { deployments } from '../server/db/tables/deployments';
import { registeredModels } from '../server/db/tables/registry';
import { startTestApp } from '../test/harness/app';
import { openSubscribers } from './fanout-subscribers';
import type { Row } from './lib';

const QUERY = /* GraphQL */ `
  subscription {
    deploymentsChanged {
      kind
      name
      deployment { name model ready message traffic { revision percent } revisions { number state health } viewerCan { manage } updatedAt }
    }
  }
`;

export async function liveFanoutBench(infra: { pgUrl?: string } = {}, options: { subscribers?: number; changes?: number } = {}): Promise<Row[]> {
  const subscribers = options.subscribers ?? 200;
  const changes = options.changes ?? 40;
  const t = await startTestApp({
    ...(infra.pgUrl ? { DATABASE_URL: infra.pgUrl } : {}),
    ATELIER_DEPLOYMENT_POLL_MS: '60000',
    ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN: String(subscribers + 10),
  });
  const { db, liveChanges } = t.app.services;
  const [model] = await db.insert(registeredModels).values({ namespace: 'bench', name: 'fanout' }).returning();
  const [row] = await db
    .insert(deployments)
    .values({
      name: 'fanout',
      modelId: model!.id,
      pinnedVersionId: null,
      domain: 'experimentation',
      deployer: 'bench-missing',
      policy: { steps: [], gates: [], readyTimeoutSeconds: 60 },
      fallback: { kind: 'PREVIOUS' },
    } as typeof deployments.$inferInsert)
    .returning();
  const id = row!.id;
  let seen = 0;
  let listening = 0;
  const subs = openSubscribers<{ deploymentsChanged: { kind: string; deployment: { message: string } | null } }>(
    t.url,
    t.app.adminToken,
    subscribers,
    QUERY,
    (data) => {
      const e = data?.deploymentsChanged;
      if (e?.kind === 'LISTENING') listening++;
      else if (e?.deployment?.message.startsWith('bench ')) seen++;
    },
  );
  const { until } = subs;
  await until(() => listening === subscribers);
  const statements = async () =>
    (await db.execute(
      sql`select coalesce(sum(xact_commit + xact_rollback), 0)::bigint as n from pg_stat_database where datname = current_database()`,
    )) as unknown as {
      n: string;
    }[];
  const cpu0 = process.cpuUsage();
  const tx0 = Number((await statements())[0]!.n);
  const started = performance.now();
  for (let i = 1; i <= changes; i++) {
    await db
      .update(deployments)
      .set({ message: `bench ${i}`, updatedAt: new Date() })
      .where(eq(deployments.id, id));
    liveChanges.touch('deployments', [id]);
    await until(() => seen >= i * subscribers);
  }
  const wall = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const tx = Number((await statements())[0]!.n) - tx0;
  await subs.dispose();
  await db.delete(deployments).where(eq(deployments.id, id));
  await t.stop();
  const note = `${subscribers} subscribers of one token, ${changes} changes one after another`;
  return [
    { bench: 'live-fanout', metric: 'CPU per change (server and clients)', value: (cpu.user + cpu.system) / 1000 / changes, unit: 'ms', note },
    { bench: 'live-fanout', metric: 'deliveries per second', value: (subscribers * changes) / (wall / 1000), unit: '/s', note },
    { bench: 'live-fanout', metric: 'Postgres transactions per change', value: tx / changes, unit: 'tx', note },
  ];
}

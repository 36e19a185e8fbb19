// The peers bench's pieces at a tiny scale (bench/peers.ts, #21): every job and task runs, every edge of a chain
// is measured, and statements are counted for the system and never for the bench's own probes. No timing is
// asserted: speed is the bench's to print.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atelierChain, atelierThroughput, chain, independent, startAtelier } from '../../bench/peers/atelier';
import { graphileChain, graphileThroughput } from '../../bench/peers/graphile';
import { inDatabase, type StatementCounter, statementCounter } from '../../bench/peers/statements';
import { type NatsServer, startNats } from '../harness/nats';
import { hasServerLibrary, type PostgresServer, startPostgres } from '../harness/postgres';

const countable = hasServerLibrary('pg_stat_statements');

describe.skipIf(!countable)('the peers bench at a tiny scale', () => {
  let pg: PostgresServer;
  let nats: NatsServer;
  let counter: StatementCounter;

  beforeAll(async () => {
    [pg, nats] = await Promise.all([startPostgres({ settings: { shared_preload_libraries: 'pg_stat_statements' } }), startNats()]);
    const admin = postgres(inDatabase(pg.url, 'postgres'), { max: 1, onnotice: () => {} });
    await admin`create database graphile`;
    await admin.end();
    counter = await statementCounter(inDatabase(pg.url, 'postgres'));
  }, 60_000);
  afterAll(async () => {
    await counter?.end();
    await nats?.stop();
    await pg?.stop();
  });

  it('runs every graphile-worker job, default and tuned, measures each edge of its chain and counts its statements', async () => {
    const url = inDatabase(pg.url, 'graphile');
    for (const config of ['graphile default', 'graphile tuned'] as const) {
      const s1 = await graphileThroughput(url, config, 50, counter);
      expect(s1.tasksPerSecond).toBeGreaterThan(0);
      // at least the one addJobs call, and fewer than a dozen per job (probes would add one per poll)
      expect(s1.statementsPerTask * 50).toBeGreaterThanOrEqual(1);
      expect(s1.statementsPerTask).toBeLessThan(12);
      const s2 = await graphileChain(url, config, 6, counter);
      expect(s2.edges).toHaveLength(5);
      expect(s2.edges.every((e) => e >= 0)).toBe(true);
      expect(s2.statementsPerEdge).toBeGreaterThan(0);
    }
  }, 60_000);

  it('runs every Atelier task, measures each edge of its chain from the stored attempts and counts its statements', async () => {
    const a = await startAtelier({ pgUrl: pg.url, natsUrl: nats.url }, [independent('tiny-s1', 20), chain('tiny-s2', 4)], counter, 0);
    try {
      const s1 = await atelierThroughput(a, 'tiny-s1', 20, counter);
      expect(s1.startError).toBeUndefined();
      expect(s1.statementsPerTask).toBeGreaterThan(0);
      const [row] = await a.observer<{ n: number }[]>`
        select count(*)::int as n from tasks t join runs r on r.id = t.run_id join workflows w on w.id = r.workflow_id
        where w.name = 'tiny-s1' and t.status = 'SUCCEEDED'`;
      expect(row!.n).toBe(20);
      const s2 = await atelierChain(a, 'tiny-s2', 4, counter);
      expect(s2.edges).toHaveLength(3);
      expect(s2.edges.every((e) => Number.isFinite(e) && e >= 0)).toBe(true);
      expect(s2.statementsPerEdge).toBeGreaterThan(0);
    } finally {
      await a.stop();
    }
  }, 60_000);
});

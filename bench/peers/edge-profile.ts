// The statements of one chain edge, one by one: a `length`-step no-op chain on Postgres + NATS (as S2 of
// `npm run bench -- peers`), every statement the control plane sent while it ran (pg_stat_statements: calls per
// normalised statement), divided by the number of edges. `npx tsx bench/peers/edge-profile.ts [length]`.
import postgres from 'postgres';
import { startNats } from '../../test/harness/nats';
import { startPostgres } from '../../test/harness/postgres';
import { type Row, runWhenMain } from '../lib';
import { atelierChain, chain, startAtelier } from './atelier';
import { asRole, inDatabase, OBSERVER, statementCounter } from './statements';

export async function edgeProfile(length: number): Promise<Row[]> {
  const [pg, nats] = await Promise.all([
    startPostgres({ settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.max': '20000', 'pg_stat_statements.track': 'top' } }),
    startNats(),
  ]);
  const counter = await statementCounter(inDatabase(pg.url, 'postgres'));
  const a = await startAtelier({ pgUrl: pg.url, natsUrl: nats.url }, [chain('profile', length)], counter, 2000);
  const observer = postgres(asRole(inDatabase(pg.url, 'postgres'), OBSERVER), { max: 1, onnotice: () => {} });
  try {
    console.log(`idle control plane: ${a.idleStatementsPerSecond} statements/s`);
    const r = await atelierChain(a, 'profile', length, counter);
    const edges = length - 1;
    const rows = await observer<{ calls: string; query: string }[]>`
      select calls, query from pg_stat_statements
      where dbid = (select oid from pg_database where datname = ${a.database})
        and userid <> (select oid from pg_roles where rolname = ${OBSERVER})
      order by calls desc`;
    for (const row of rows)
      console.log(
        `${(Number(row.calls) / edges).toFixed(2).padStart(6)}  ${row.query.replace(/\s+/g, ' ').slice(0, Number(process.env.EDGE_PROFILE_WIDTH ?? 220))}`,
      );
    console.log(
      `edges ${edges}: p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.statementsPerEdge.toFixed(2)} statements per edge (${r.netStatementsPerEdge.toFixed(2)} less the idle loops)`,
    );
    return [];
  } finally {
    await observer.end();
    await a.stop();
    await counter.end();
    await nats.stop();
    await pg.stop();
  }
}

runWhenMain(import.meta.url, () => edgeProfile(Number(process.argv[2] ?? 40)));

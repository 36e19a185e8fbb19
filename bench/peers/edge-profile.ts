// The statements of one chain edge, one by one: a `length`-step no-op chain on Postgres + NATS (as S2 of
// `npm run bench -- peers`), every statement the control plane sent while it ran (pg_stat_statements: calls per
// normalised statement), divided by the number of edges. `npx tsx bench/peers/edge-profile.ts [length]`.
import { type Row, runWhenMain } from '../lib';
import { atelierChain, chain } from './atelier';
import { profileWorld } from './profile-world';

export async function edgeProfile(length: number): Promise<Row[]> {
  const world = await profileWorld([chain('profile', length)]);
  try {
    console.log(`idle control plane: ${world.atelier.idleStatementsPerSecond} statements/s`);
    const r = await atelierChain(world.atelier, 'profile', length, world.counter);
    const edges = length - 1;
    for (const row of await world.statements('calls'))
      console.log(
        `${(Number(row.calls) / edges).toFixed(2).padStart(6)}  ${row.query.replace(/\s+/g, ' ').slice(0, Number(process.env.EDGE_PROFILE_WIDTH ?? 220))}`,
      );
    console.log(
      `edges ${edges}: p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.statementsPerEdge.toFixed(2)} statements per edge (${r.netStatementsPerEdge.toFixed(2)} less the idle loops)`,
    );
    return [];
  } finally {
    await world.stop();
  }
}

runWhenMain(import.meta.url, () => edgeProfile(Number(process.argv[2] ?? 40)));

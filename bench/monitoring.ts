// Monitoring on the embedded default (PGlite): 1,000,000 observations with 3 dimensions through the one write path
// (recordObservations, batches of 10,000: checks, target resolution and access, one unnest statement, the audit row)
// against its floor (the same rows as bare unnest INSERTs into an unindexed table of the same columns); then one
// evaluator pass over 1,000 due monitors against its floor (the same window aggregates, measured alone).
import { eq, sql } from 'drizzle-orm';
import { defineAbilityFor } from '../server/auth/ability';
import { identities } from '../server/db/tables/identities';
import type { Monitor } from '../server/db/tables/monitoring';
import { monitors } from '../server/db/tables/monitoring';
import { EVALUATION_BATCH, evaluateDueMonitors } from '../server/monitoring/evaluator';
import { measureAll } from '../server/monitoring/measure';
import { type ObservationInput, recordObservations } from '../server/monitoring/observations';
import type { MonitorRule } from '../server/monitoring/rules';
import { startTestApp } from '../test/harness/app';
import { type Row, runWhenMain } from './lib';

const OBSERVATIONS = 1_000_000;
const BATCH = 10_000;
const MONITORS = 1_000;

export async function monitoringBench(): Promise<Row[]> {
  const t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000' });
  try {
    const { db } = t.app.services;
    await t.api.gql(
      `mutation { createDataset(name: "bench/events", domain: experimentation, columns: [{ name: "region", type: "string" }], digest: "sha256:${'b'.repeat(64)}") { id } }`,
    );
    const [admin] = await db.select().from(identities).where(eq(identities.role, 'admin')).limit(1);
    const caller = { identity: admin!, ability: defineAbilityFor(admin!) };
    const target = { kind: 'DATASET' as const, ref: 'bench/events' };
    const now = Date.now();
    const batch: ObservationInput[] = Array.from({ length: BATCH }, (_, i) => ({
      target,
      metric: 'ingest',
      value: i / 7,
      at: new Date(now - (i % 240) * 1000),
      dimensions: { region: `r${i % 5}`, segment: `s${i % 7}`, version: `v${i % 3}` },
    }));

    const ingestStart = performance.now();
    for (let n = 0; n < OBSERVATIONS; n += BATCH) await recordObservations(db, caller, batch);
    const ingestSeconds = (performance.now() - ingestStart) / 1000;

    // Floor: the same columns as array literals, unnested into an unindexed table (no checks, no access, no audit).
    await db.execute(
      sql`create temporary table bench_observations (target_kind text, target_id uuid, metric text, value float8, at timestamptz, dimensions jsonb)`,
    );
    const lit = (values: string[]) => `{${values.map((v) => `"${v.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
    const targetId = (await db.execute(sql`select id from datasets where namespace = 'bench'`)) as unknown as { rows: { id: string }[] };
    const id = targetId.rows[0]!.id;
    const values = lit(batch.map((o) => String(o.value)));
    const ats = lit(batch.map((o) => (o.at as Date).toISOString()));
    const dims = lit(batch.map((o) => JSON.stringify(o.dimensions)));
    const floorStart = performance.now();
    for (let n = 0; n < OBSERVATIONS; n += BATCH)
      await db.execute(
        sql`insert into bench_observations select 'DATASET', ${id}::uuid, 'ingest', v, a, d::jsonb from unnest(${values}::float8[], ${ats}::timestamptz[], ${dims}::text[]) as u(v, a, d)`,
      );
    const floorSeconds = (performance.now() - floorStart) / 1000;
    await db.execute(sql`drop table bench_observations`);

    // 1,000 monitors over 10 small metrics (100 observations each in the window), all due.
    await recordObservations(
      db,
      caller,
      Array.from({ length: 1_000 }, (_, i) => ({ target, metric: `m${i % 10}`, value: i % 50, at: new Date(now - (i % 200) * 1000) })),
    );
    const rule: MonitorRule = { id: 'r1', kind: 'THRESHOLD', aggregate: 'MEAN', windowSeconds: 300, consecutive: 3, above: 40, below: null };
    const rows = await db
      .insert(monitors)
      .values(
        Array.from({ length: MONITORS }, (_, i) => ({
          name: `m${i}`,
          targetKind: 'DATASET' as const,
          targetId: id,
          metric: `m${i % 10}`,
          rules: [rule],
          intervalSeconds: 60,
        })),
      )
      .returning();
    const passAt = new Date(Date.now() + 1000);
    const passStart = performance.now();
    let evaluated = 0;
    for (;;) {
      const { evaluated: n } = await evaluateDueMonitors(db, { now: passAt });
      evaluated += n;
      if (n === 0) break;
    }
    const passMs = performance.now() - passStart;
    if (evaluated !== MONITORS) throw new Error(`the pass evaluated ${evaluated} monitors, not ${MONITORS}`);
    const aggregatesStart = performance.now();
    for (let i = 0; i < rows.length; i += EVALUATION_BATCH)
      await measureAll(
        db,
        (rows as Monitor[]).slice(i, i + EVALUATION_BATCH).map((monitor) => ({ monitor, rule })),
        passAt,
      );
    const aggregatesMs = performance.now() - aggregatesStart;

    return [
      {
        bench: 'monitoring',
        metric: 'observations stored per second (recordObservations, batches of 10,000, 3 dimensions)',
        value: OBSERVATIONS / ingestSeconds,
        unit: '/s',
        floor: OBSERVATIONS / floorSeconds,
        ratio: OBSERVATIONS / floorSeconds / (OBSERVATIONS / ingestSeconds),
        note: 'floor: bare unnest INSERTs into an unindexed table; embedded PGlite; aim ≥ 50,000/s',
      },
      {
        bench: 'monitoring',
        metric: 'one evaluator pass over 1,000 due monitors',
        value: passMs,
        unit: 'ms',
        floor: aggregatesMs,
        ratio: passMs / aggregatesMs,
        note: 'floor: the same window aggregates alone (one statement per 100 monitors); aim ≤ 1 s',
      },
    ];
  } finally {
    await t.stop();
  }
}

// `npx tsx bench/monitoring.ts`: this bench alone (it needs no Postgres or NATS).
runWhenMain(import.meta.url, monitoringBench);

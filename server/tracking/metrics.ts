// Storing metric points: each point once (a redelivered batch adds nothing), and the per-task, per-metric summary
// brought up to date in the same transaction. The one write path for points, whoever reports them: the executor
// protocol's metric events, the MLflow routes, a run logged from outside a workflow.
import { sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import { metricSummaries } from '../db/tables/tracking';

export interface MetricPointInput {
  taskId: string;
  runId: string;
  attempt: number;
  /** The point's place in its attempt's order, unique per (task, attempt): what makes a redelivery a no-op. */
  seq: number;
  name: string;
  step: number;
  /** Any float8: NaN and ±Infinity are kept as such. */
  value: number;
  at: Date;
}

/** Points per INSERT: each batch travels as one JSON parameter (many bind parameters are slow to parse, on PGlite most). */
const CHUNK = 10_000;

/** Stores the points not stored yet and updates their summaries; returns how many were new. */
export async function storeMetricPoints(tx: Db | Tx, points: readonly MetricPointInput[]): Promise<number> {
  let stored = 0;
  for (let i = 0; i < points.length; i += CHUNK) {
    const chunk = points.slice(i, i + CHUNK);
    // JSON has no NaN or ±Infinity: every value travels as text and is cast back to float8 (which reads them).
    const rows = chunk.map((p) => [p.taskId, p.runId, p.attempt, p.seq, p.name, p.step, String(p.value), p.at.toISOString()]);
    const inserted = await queryRows<{ task_id: string; attempt: number; seq: string | number }>(
      tx,
      sql`insert into metric_points (task_id, run_id, attempt, seq, name, step, value, at)
          select (r->>0)::uuid, (r->>1)::uuid, (r->>2)::int, (r->>3)::bigint, r->>4, (r->>5)::bigint, (r->>6)::float8, (r->>7)::timestamptz
          from json_array_elements(${JSON.stringify(rows)}::json) as r
          on conflict do nothing
          returning task_id, attempt, seq`,
    );
    stored += inserted.length;
    if (!inserted.length) continue;
    const isNew = new Set(inserted.map((r) => `${r.task_id}:${r.attempt}:${Number(r.seq)}`));
    await summarize(tx, inserted.length === chunk.length ? chunk : chunk.filter((p) => isNew.has(`${p.taskId}:${p.attempt}:${p.seq}`)));
  }
  return stored;
}

const later = (a: { attempt: number; seq: number }, b: { attempt: number; seq: number }) => a.attempt > b.attempt || (a.attempt === b.attempt && a.seq > b.seq);

/** Folds new points into their summaries: last by (attempt, seq), min and max over numbers only (NaN is no best). */
async function summarize(tx: Db | Tx, points: readonly MetricPointInput[]): Promise<void> {
  const byKey = new Map<
    string,
    { first: MetricPointInput; last: MetricPointInput; count: number; min: MetricPointInput | null; max: MetricPointInput | null }
  >();
  for (const p of points) {
    const key = `${p.taskId}\u0000${p.name}`;
    const s = byKey.get(key) ?? { first: p, last: p, count: 0, min: null, max: null };
    s.count++;
    if (later(p, s.last)) s.last = p;
    if (!Number.isNaN(p.value)) {
      if (!s.min || p.value < s.min.value) s.min = p;
      if (!s.max || p.value > s.max.value) s.max = p;
    }
    byKey.set(key, s);
  }
  if (!byKey.size) return;
  const rows = [...byKey.values()].map((s) => ({
    taskId: s.first.taskId,
    runId: s.first.runId,
    name: s.first.name,
    count: s.count,
    last: s.last.value,
    lastStep: s.last.step,
    lastAt: s.last.at,
    lastAttempt: s.last.attempt,
    lastSeq: s.last.seq,
    min: s.min?.value ?? null,
    minStep: s.min?.step ?? null,
    max: s.max?.value ?? null,
    maxStep: s.max?.step ?? null,
  }));
  const existing = sql.raw('"metric_summaries"');
  const laterThanExisting = sql`(excluded.last_attempt, excluded.last_seq) > (${existing}.last_attempt, ${existing}.last_seq)`;
  const lower = sql`(${existing}.min is null or excluded.min < ${existing}.min)`;
  const higher = sql`(${existing}.max is null or excluded.max > ${existing}.max)`;
  for (let i = 0; i < rows.length; i += CHUNK / 4) {
    await tx
      .insert(metricSummaries)
      .values(rows.slice(i, i + CHUNK / 4))
      .onConflictDoUpdate({
        target: [metricSummaries.taskId, metricSummaries.name],
        set: {
          count: sql`${existing}.count + excluded.count`,
          last: sql`case when ${laterThanExisting} then excluded.last else ${existing}.last end`,
          lastStep: sql`case when ${laterThanExisting} then excluded.last_step else ${existing}.last_step end`,
          lastAt: sql`case when ${laterThanExisting} then excluded.last_at else ${existing}.last_at end`,
          lastSeq: sql`case when ${laterThanExisting} then excluded.last_seq else ${existing}.last_seq end`,
          lastAttempt: sql`case when ${laterThanExisting} then excluded.last_attempt else ${existing}.last_attempt end`,
          minStep: sql`case when excluded.min is not null and ${lower} then excluded.min_step else ${existing}.min_step end`,
          min: sql`case when excluded.min is not null and ${lower} then excluded.min else ${existing}.min end`,
          maxStep: sql`case when excluded.max is not null and ${higher} then excluded.max_step else ${existing}.max_step end`,
          max: sql`case when excluded.max is not null and ${higher} then excluded.max else ${existing}.max end`,
        },
      });
  }
}

// Planning a batch of metric points into blocks, in JavaScript: which points are new (each (task, attempt, seq) once),
// which block of its series each goes to, and what the batch adds to each (task, metric) summary. storeMetricPoints
// (metrics.ts) then writes the plan in one statement. Why here and not in SQL: as CTEs (dedupe, placement, summaries:
// sorts and array_agg(… order by …) over every point) they took ~265 of a ~410 ms statement for 2,000 points on
// PGlite (EXPLAIN ANALYZE, loaded machine); here they cost a few milliseconds and one index probe per series.
import { sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import type { MetricPointInput } from './metrics';

/**
 * Points per block row (metric_blocks). A block is appended to until it holds this many, then the next one starts, so
 * an append rewrites at most one partial block (≤ 1,024 × 32 bytes of arrays, stored out of line by TOAST) and a
 * 1,000,000-point series is ~1,000 rows. Smaller blocks cost more rows per point (the per-row overhead is what
 * blocks remove); larger ones make every small append (MLflow's log_metric, one point a call) rewrite more. Concurrent
 * appends to one series (two replicas recording two events of it) may overfill a block: nothing reads its size.
 */
export const METRIC_BLOCK_POINTS = 1024;

/** One series (task, metric, attempt) of a batch: its new points in seq order, each with the block it goes to. */
export interface SeriesPlan {
  taskId: string;
  runId: string;
  name: string;
  attempt: number;
  points: MetricPointInput[];
  blocks: number[];
}

/** What a batch adds to one (task, metric) summary: `last` by (attempt, seq), extremes over numbers, first one on ties. */
export interface SummaryDelta {
  taskId: string;
  runId: string;
  name: string;
  count: number;
  last: MetricPointInput;
  min: MetricPointInput | null;
  max: MetricPointInput | null;
}

const byOrder = (a: MetricPointInput, b: MetricPointInput) => a.attempt - b.attempt || a.seq - b.seq;

/**
 * The new points of `points`, by series, each placed in a block: duplicates within the batch (same task, attempt
 * and seq) and points already stored are left out. A series' stored points are looked up only where the batch
 * reaches back to or before its highest stored seq (a late or repeated batch); an in-order batch costs one index
 * probe per series.
 */
export async function planBlocks(tx: Db | Tx, points: readonly MetricPointInput[]): Promise<SeriesPlan[]> {
  const seen = new Set<string>();
  const series = new Map<string, SeriesPlan>();
  for (const p of points) {
    const id = `${p.taskId}:${p.attempt}:${p.seq}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const key = `${p.taskId}\u0000${p.name}\u0000${p.attempt}`;
    let s = series.get(key);
    if (!s) series.set(key, (s = { taskId: p.taskId, runId: p.runId, name: p.name, attempt: p.attempt, points: [], blocks: [] }));
    s.points.push(p);
  }
  const list = [...series.values()];
  if (!list.length) return [];
  const tails = await queryRows<{ i: number; block: number | null; n: number | null; seq_hi: string | number | null }>(
    tx,
    sql`select v.i, l.block, l.n, h.seq_hi
      from unnest(${textArray(list.map((s) => s.taskId))}::uuid[], ${textArray(
        list.map((s) => s.name),
        true,
      )}::text[], ${textArray(list.map((s) => s.attempt))}::int[]) with ordinality as v(task_id, name, attempt, i)
        left join lateral (
          select block, n from metric_blocks b where b.task_id = v.task_id and b.name = v.name and b.attempt = v.attempt order by block desc limit 1
        ) l on true
        left join lateral (
          select seq_hi from metric_blocks b where b.task_id = v.task_id and b.name = v.name and b.attempt = v.attempt order by seq_hi desc limit 1
        ) h on true`,
  );
  const out: SeriesPlan[] = [];
  for (const t of tails) {
    const s = list[Number(t.i) - 1]!;
    s.points.sort((a, b) => a.seq - b.seq);
    if (t.seq_hi !== null) {
      const seqHi = Number(t.seq_hi);
      const early = s.points.filter((p) => p.seq <= seqHi);
      if (early.length) {
        const stored = await storedSeqs(tx, s, early[0]!.seq, early[early.length - 1]!.seq);
        s.points = s.points.filter((p) => p.seq > seqHi || !stored.has(p.seq));
      }
    }
    if (!s.points.length) continue;
    let block = t.block ?? 0;
    let filled = t.n ?? 0;
    for (let i = 0; i < s.points.length; i++) {
      if (filled >= METRIC_BLOCK_POINTS) {
        block++;
        filled = 0;
      }
      s.blocks.push(block);
      filled++;
    }
    out.push(s);
  }
  return out;
}

/** The seqs a series has stored between `lo` and `hi`. */
async function storedSeqs(tx: Db | Tx, s: SeriesPlan, lo: number, hi: number): Promise<Set<number>> {
  const rows = await queryRows<{ seq: string | number }>(
    tx,
    sql`select u.seq from metric_blocks b cross join lateral unnest(b.seqs) as u(seq)
      where b.task_id = ${s.taskId}::uuid and b.name = ${s.name} and b.attempt = ${s.attempt}::int and b.seq_lo <= ${hi}::bigint and b.seq_hi >= ${lo}::bigint
        and u.seq between ${lo}::bigint and ${hi}::bigint`,
  );
  return new Set(rows.map((r) => Number(r.seq)));
}

/** What the planned points add to each (task, metric) summary. */
export function summaryDeltas(plans: readonly SeriesPlan[]): SummaryDelta[] {
  const out = new Map<string, SummaryDelta>();
  for (const s of plans) {
    const key = `${s.taskId}\u0000${s.name}`;
    let d = out.get(key);
    const ordered = s.points; // seq order within one attempt
    for (const p of ordered) {
      if (!d) {
        out.set(key, (d = { taskId: s.taskId, runId: s.runId, name: s.name, count: 0, last: p, min: null, max: null }));
      }
      d.count++;
      if (byOrder(p, d.last) > 0) d.last = p;
      if (Number.isNaN(p.value)) continue;
      if (!d.min || p.value < d.min.value || (p.value === d.min.value && byOrder(p, d.min) < 0)) d.min = p;
      if (!d.max || p.value > d.max.value || (p.value === d.max.value && byOrder(p, d.max) < 0)) d.max = p;
    }
  }
  return [...out.values()];
}

/** A Postgres array literal of `values` (each in its type's text form; `quote` for free text; null as NULL). */
export const textArray = (values: readonly (string | number | null)[], quote = false) =>
  `{${values.map((v) => (v === null ? 'NULL' : quote ? `"${String(v).replace(/[\\"]/g, '\\$&')}"` : String(v))).join(',')}}`;

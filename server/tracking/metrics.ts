// Storing metric points: each point once (a redelivered batch adds nothing), and the per-task, per-metric summary
// brought up to date in the same transaction. The one write path for points, whoever reports them: the executor
// protocol's metric events, the MLflow routes, a run logged from outside a workflow.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import { METRIC_BLOCK_POINTS, planBlocks, type SummaryDelta, summaryDeltas, textArray } from './blocks';
import { rollupRows, rollupUpsertCte } from './rollups';

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

/** Points per statement: one host batch (DEFAULT_METRIC_BATCH); on PGlite a statement holds the event loop, so a smaller one keeps it free for the executor host and the API in between. */
const CHUNK = 2_000;

export { METRIC_BLOCK_POINTS };

/**
 * Stores the points not stored yet and folds the new ones into their summaries (per task, then per run) and their
 * series' rollups. Per chunk: the plan (blocks.ts: which points are new, the block each goes to, what each summary
 * gains; rollups.ts: the rollup rows), then ONE statement that appends the points to their series' blocks (each column
 * travelling as one array parameter, which PGlite parses far faster than JSON or many bind parameters), upserts the
 * summaries and the rollups. Returns how many were new. Summaries: `last` by (attempt, seq), min and max over numbers
 * only (NaN is no best); a chunk's row wins over the stored one only where it is later, lower or higher.
 */
export async function storeMetricPoints(tx: Db | Tx, points: readonly MetricPointInput[]): Promise<number> {
  let stored = 0;
  for (let i = 0; i < points.length; i += CHUNK) {
    // Between chunks, let the event loop run its I/O: PGlite resolves a transaction's statements as microtasks, so a
    // recorder batch of 50 events (100,000 points) held it for its whole length, and an embedded executor host could
    // not see its module exit or read its progress until then (bench/tracking-metrics.ts: the task took 15× its loop).
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    stored += await storeChunk(tx, points.slice(i, i + CHUNK));
  }
  return stored;
}

async function storeChunk(tx: Db | Tx, chunk: readonly MetricPointInput[]): Promise<number> {
  const plans = await planBlocks(tx, chunk);
  if (!plans.length) return 0;
  // Block rows (one per series and block touched), each with its points' columns as array literals: a few rows per
  // batch, so each travels as its own parameters (no unnest, join and re-aggregation of every point in SQL).
  const blockRows: SQL[] = [];
  let stored = 0;
  for (const s of plans) {
    stored += s.points.length;
    for (let from = 0; from < s.points.length; ) {
      let to = from;
      while (to < s.points.length && s.blocks[to] === s.blocks[from]) to++;
      const pts = s.points.slice(from, to);
      blockRows.push(
        sql`(${s.taskId}::uuid, ${s.name}, ${s.attempt}::int, ${s.blocks[from]}::int, ${s.runId}::uuid, ${pts.length}::int, ${pts[0]!.seq}::bigint,
          ${pts[pts.length - 1]!.seq}::bigint, ${textArray(pts.map((x) => x.seq))}::bigint[], ${textArray(pts.map((x) => x.step))}::bigint[],
          ${textArray(pts.map((x) => String(x.value)))}::float8[], ${epochArray(pts.map((x) => x.at.getTime()))})`,
      );
      from = to;
    }
  }
  const deltas = summaryDeltas(plans);
  const rollups = rollupRows(plans);
  const d = (f: (d: SummaryDelta) => string | number | null, quote = false) => textArray(deltas.map(f), quote);
  const num = (v: number | undefined) => (v === undefined ? null : String(v));
  // float8 reads NaN, Infinity and -Infinity as such.
  const [counts] = await queryRows<{ blocks: string | number }>(
    tx,
    sql`with blocked as (
            insert into metric_blocks as b (task_id, name, attempt, block, run_id, n, seq_lo, seq_hi, seqs, steps, vals, ats)
            values ${sql.join(blockRows, sql`, `)}
            on conflict (task_id, name, attempt, block) do update set
              n = b.n + excluded.n, seq_lo = least(b.seq_lo, excluded.seq_lo), seq_hi = greatest(b.seq_hi, excluded.seq_hi),
              seqs = b.seqs || excluded.seqs, steps = b.steps || excluded.steps, vals = b.vals || excluded.vals, ats = b.ats || excluded.ats
            returning 1
          ), summed as (
            insert into metric_summaries as m (task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq, min, min_step, max, max_step)
            select * from unnest(${d((x) => x.taskId)}::uuid[], ${d((x) => x.runId)}::uuid[], ${d((x) => x.name, true)}::text[], ${d((x) => x.count)}::bigint[],
              ${d((x) => String(x.last.value))}::float8[], ${d((x) => x.last.step)}::bigint[], ${d((x) => x.last.at.toISOString())}::timestamptz[],
              ${d((x) => x.last.attempt)}::int[], ${d((x) => x.last.seq)}::bigint[], ${d((x) => num(x.min?.value))}::float8[], ${d((x) => num(x.min?.step))}::bigint[],
              ${d((x) => num(x.max?.value))}::float8[], ${d((x) => num(x.max?.step))}::bigint[])
            on conflict (task_id, name) do update set
              count = m.count + excluded.count,
              last = case when ${later} then excluded.last else m.last end,
              last_step = case when ${later} then excluded.last_step else m.last_step end,
              last_at = case when ${later} then excluded.last_at else m.last_at end,
              last_seq = case when ${later} then excluded.last_seq else m.last_seq end,
              last_attempt = case when ${later} then excluded.last_attempt else m.last_attempt end,
              min_step = case when ${lower} then excluded.min_step else m.min_step end,
              min = case when ${lower} then excluded.min else m.min end,
              max_step = case when ${higher} then excluded.max_step else m.max_step end,
              max = case when ${higher} then excluded.max else m.max end
            returning m.task_id, m.run_id, m.name, m.last, m.last_at, m.min, m.max
          ), ${runSummaryFold('summed')}, ${rollupUpsertCte(rollups, textArray)}
          select (select count(*) from blocked) as blocks, (select count(*) from summed) as summaries, (select count(*) from run_summed) as runs,
            (select count(*) from rolled) as rollups`,
  );
  if (!counts) throw new Error('storing metric points returned nothing');
  return stored;
}

/**
 * Times as a timestamptz[] made from epoch milliseconds: PGlite parsed ISO text (2,000 per chunk) far slower than it
 * converts numbers (a sixth less CPU per stored point, bench profile of storeMetricPoints); exact to the millisecond.
 */
const epochArray = (ms: readonly number[]) =>
  sql`array(select to_timestamp(u.ms / 1000.0) from unnest(${textArray(ms)}::float8[]) with ordinality as u(ms, o) order by u.o)`;

const later = sql.raw('(excluded.last_attempt, excluded.last_seq) > (m.last_attempt, m.last_seq)');
const lower = sql.raw('(excluded.min is not null and (m.min is null or excluded.min < m.min))');
/** A run's `last` follows the task that reported most recently; that task's own summary is authoritative for it. */
const runLater = sql.raw('(excluded.last_task = r.last_task or (excluded.last_at, excluded.last_task) > (r.last_at, r.last_task))');

/**
 * Two CTEs, `run_fresh` and `run_summed`, folding the task summaries a CTE named `from` returns (task_id, run_id, name,
 * last, last_at, min, max: rows just written) into their runs' summaries: per run and metric, the latest `last` (the
 * task that reported most recently), the widest min and max. Written in run and metric order, as every writer of them
 * takes their rows. The point path here and the copies cached and reused tasks keep (inherit.ts) share it.
 */
export function runSummaryFold(from: string): SQL {
  return sql`run_fresh as (
            select distinct on (run_id, name) run_id, name, nullif(last, 'NaN'::float8) as last, last_at, task_id as last_task,
              min(min) over w as min, max(max) over w as max
            from ${sql.raw(from)} window w as (partition by run_id, name)
            order by run_id, name, last_at desc, task_id desc
          ), run_summed as (
            insert into run_metric_summaries as r (run_id, name, last, last_at, last_task, min, max)
            select run_id, name, last, last_at, last_task, min, max from run_fresh order by run_id, name
            on conflict (run_id, name) do update set
              last = case when ${runLater} then excluded.last else r.last end,
              last_at = case when ${runLater} then excluded.last_at else r.last_at end,
              last_task = case when ${runLater} then excluded.last_task else r.last_task end,
              min = least(r.min, excluded.min),
              max = greatest(r.max, excluded.max)
            returning 1
          )`;
}
const higher = sql.raw('(excluded.max is not null and (m.max is null or excluded.max > m.max))');

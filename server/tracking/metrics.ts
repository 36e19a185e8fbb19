// Storing metric points: each point once (a redelivered batch adds nothing), and the per-task, per-metric summary
// brought up to date in the same transaction. The one write path for points, whoever reports them: the executor
// protocol's metric events, the MLflow routes, a run logged from outside a workflow.
import { sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import { rollupCtes } from './rollups';

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

/**
 * Points per block row (metric_blocks). A block is appended to until it holds this many, then the next one starts, so
 * an append rewrites at most one partial block (≤ 1,024 × 32 bytes of arrays, stored out of line by TOAST) and a
 * 1,000,000-point series is ~1,000 rows. Smaller blocks cost more rows per point (the per-row overhead is what
 * blocks remove); larger ones make every small append (MLflow's log_metric, one point a call) rewrite more. Concurrent
 * appends to one series (two replicas recording two events of it) may overfill a block: nothing reads its size.
 */
export const METRIC_BLOCK_POINTS = 1024;

/** A Postgres array literal of `values` (each already in its type's text form; `quote` for free text). */
const arrayLiteral = (values: readonly (string | number)[], quote = false) =>
  `{${quote ? values.map((v) => `"${String(v).replace(/[\\"]/g, '\\$&')}"`).join(',') : values.join(',')}}`;

/**
 * Stores the points not stored yet and folds the new ones into their summaries (per task, then per run): per chunk ONE statement that inserts
 * the points into their series' blocks (each column travelling as one array parameter, which PGlite parses far faster
 * than JSON or many bind parameters; appended to the series' last block until it is full, then new ones) and upserts one summary row per (task, metric) from exactly the rows it inserted. Returns how many
 * were new. Summaries: `last` by (attempt, seq), min and max over numbers only (NaN is no best); a chunk's row wins
 * over the stored one only where it is later, lower or higher. The same statement folds the new points into their
 * series' rollups (rollups.ts).
 */
export async function storeMetricPoints(tx: Db | Tx, points: readonly MetricPointInput[]): Promise<number> {
  let stored = 0;
  for (let i = 0; i < points.length; i += CHUNK) {
    const chunk = points.slice(i, i + CHUNK);
    const column = <T extends string | number>(f: (p: MetricPointInput) => T) => chunk.map(f);
    // float8 reads NaN, Infinity and -Infinity as such.
    const [row] = await queryRows<{ n: string | number }>(
      tx,
      sql`with inp as (
            select * from unnest(${arrayLiteral(column((p) => p.taskId))}::uuid[], ${arrayLiteral(column((p) => p.runId))}::uuid[],
              ${arrayLiteral(column((p) => p.attempt))}::int[], ${arrayLiteral(column((p) => p.seq))}::bigint[],
              ${arrayLiteral(
                column((p) => p.name),
                true,
              )}::text[], ${arrayLiteral(column((p) => p.step))}::bigint[], ${arrayLiteral(column((p) => String(p.value)))}::float8[],
              ${arrayLiteral(column((p) => p.at.toISOString()))}::timestamptz[]) as u(task_id, run_id, attempt, seq, name, step, value, at)
          ), tails as materialized (
            -- Per series of the batch: its last block (to append to) and its highest stored seq (points past it are new).
            select s.task_id, s.name, s.attempt, l.block as last_block, l.n as last_n, h.seq_hi
            from (select distinct task_id, name, attempt from inp) s
              left join lateral (
                select block, n from metric_blocks b where b.task_id = s.task_id and b.name = s.name and b.attempt = s.attempt
                order by block desc limit 1
              ) l on true
              left join lateral (
                select seq_hi from metric_blocks b where b.task_id = s.task_id and b.name = s.name and b.attempt = s.attempt
                order by seq_hi desc limit 1
              ) h on true
          ), ins as (
            -- The points not stored yet: past the series' highest seq, or (a late or repeated batch) in no block's seqs.
            select distinct on (i.task_id, i.attempt, i.seq) i.*, t.last_block, t.last_n
            from inp i join tails t on t.task_id = i.task_id and t.name = i.name and t.attempt = i.attempt
            where t.seq_hi is null or i.seq > t.seq_hi or not exists (
              select 1 from metric_blocks b
              where b.task_id = i.task_id and b.name = i.name and b.attempt = i.attempt and i.seq between b.seq_lo and b.seq_hi and i.seq = any(b.seqs))
            order by i.task_id, i.attempt, i.seq
          ), placed as (
            select ins.*, (coalesce(last_block, 0) + (coalesce(last_n, 0) + row_number() over (partition by task_id, name, attempt order by seq) - 1)
              / ${METRIC_BLOCK_POINTS})::int as block
            from ins
          ), blocked as (
            insert into metric_blocks as b (task_id, name, attempt, block, run_id, n, seq_lo, seq_hi, seqs, steps, vals, ats)
            select task_id, name, attempt, block, min(run_id::text)::uuid, count(*), min(seq), max(seq),
              array_agg(seq order by seq), array_agg(step order by seq), array_agg(value order by seq), array_agg(at order by seq)
            from placed group by task_id, name, attempt, block
            on conflict (task_id, name, attempt, block) do update set
              n = b.n + excluded.n, seq_lo = least(b.seq_lo, excluded.seq_lo), seq_hi = greatest(b.seq_hi, excluded.seq_hi),
              seqs = b.seqs || excluded.seqs, steps = b.steps || excluded.steps, vals = b.vals || excluded.vals, ats = b.ats || excluded.ats
            returning 1
          ), fresh as (
            select task_id, name, min(run_id::text)::uuid as run_id, count(*) as count,
              (array_agg(value order by attempt desc, seq desc))[1] as last,
              (array_agg(step order by attempt desc, seq desc))[1] as last_step,
              (array_agg(at order by attempt desc, seq desc))[1] as last_at,
              max(attempt) as last_attempt,
              (array_agg(seq order by attempt desc, seq desc))[1] as last_seq,
              min(value) filter (where value <> 'NaN'::float8) as min,
              (array_agg(step order by value asc, attempt, seq) filter (where value <> 'NaN'::float8))[1] as min_step,
              max(value) filter (where value <> 'NaN'::float8) as max,
              (array_agg(step order by value desc, attempt, seq) filter (where value <> 'NaN'::float8))[1] as max_step
            from ins group by task_id, name
          ), summed as (
            insert into metric_summaries as m (task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq, min, min_step, max, max_step)
            select task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq, min, min_step, max, max_step from fresh
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
          ), run_fresh as (
            select distinct on (run_id, name) run_id, name, nullif(last, 'NaN'::float8) as last, last_at, task_id as last_task,
              min(min) over w as min, max(max) over w as max
            from summed window w as (partition by run_id, name)
            order by run_id, name, last_at desc, task_id desc
          ), run_summed as (
            insert into run_metric_summaries as r (run_id, name, last, last_at, last_task, min, max)
            select run_id, name, last, last_at, last_task, min, max from run_fresh
            on conflict (run_id, name) do update set
              last = case when ${runLater} then excluded.last else r.last end,
              last_at = case when ${runLater} then excluded.last_at else r.last_at end,
              last_task = case when ${runLater} then excluded.last_task else r.last_task end,
              min = least(r.min, excluded.min),
              max = greatest(r.max, excluded.max)
            returning 1
          ), ${rollupCtes(sql`ins`)}
          select (select count(*) from ins) as n, (select count(*) from blocked) as blocks, (select count(*) from summed) as summaries, (select count(*) from run_summed) as runs,
            (select count(*) from rolled) as rollups`,
    );
    stored += Number(row?.n ?? 0);
  }
  return stored;
}

const later = sql.raw('(excluded.last_attempt, excluded.last_seq) > (m.last_attempt, m.last_seq)');
const lower = sql.raw('(excluded.min is not null and (m.min is null or excluded.min < m.min))');
/** A run's `last` follows the task that reported most recently; that task's own summary is authoritative for it. */
const runLater = sql.raw('(excluded.last_task = r.last_task or (excluded.last_at, excluded.last_task) > (r.last_at, r.last_task))');
const higher = sql.raw('(excluded.max is not null and (m.max is null or excluded.max > m.max))');

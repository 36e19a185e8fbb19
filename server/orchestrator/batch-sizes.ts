// How many tasks one bus message to a pool carries (protocol 3's task batches). A batch is delivered to one host,
// which claims its members and runs them as its slots free up: a batch larger than a host's slots would keep tasks
// waiting on that host while another host of the pool sits idle. So a pool's batches are never larger than the
// capacity of its smallest live host (a pool of one-slot GPU hosts gets a message per task; the no-op executor's
// 256 slots take up to ATELIER_TASK_BATCH_MAX), and a pool no live host serves yet gets a message per task.
import { sql } from 'drizzle-orm';
import { arrayOf } from '../db/arrays';
import { queryRows, type Tx } from '../db/client';

/** How long a pool's size is used before it is read again (hosts come and go; a heartbeat comes every ~5 s). */
const FRESH_MS = 5_000;

export class PoolBatchSizes {
  private readonly held = new Map<string, { size: number; at: number }>();

  /** `max`: ATELIER_TASK_BATCH_MAX (1 turns batches off); `staleMs`: a host silent this long is not counted. */
  constructor(
    private readonly max: number,
    private readonly staleMs: number,
  ) {}

  /** The batch size of each of `pools`, read in one statement for those not read within FRESH_MS. */
  async forPools(tx: Tx, pools: Iterable<string>, now: Date): Promise<(pool: string) => number> {
    if (this.max <= 1) return () => 1;
    const at = now.getTime();
    const stale = [...new Set(pools)].filter((pool) => {
      const held = this.held.get(pool);
      return !held || at - held.at > FRESH_MS;
    });
    if (stale.length) {
      const rows = await queryRows<{ pool: string; capacity: number }>(
        tx,
        sql`select p.pool, min(h.capacity)::int as capacity
            from unnest(${arrayOf(stale, 'text')}) as p(pool)
            join executor_hosts h on p.pool = any(h.pools) and h.last_seen_at > ${new Date(at - this.staleMs).toISOString()}::timestamptz
            group by p.pool`,
      );
      const capacity = new Map(rows.map((r) => [r.pool, r.capacity]));
      for (const pool of stale) this.held.set(pool, { size: Math.max(1, Math.min(this.max, capacity.get(pool) ?? 1)), at });
    }
    return (pool) => this.held.get(pool)?.size ?? 1;
  }
}

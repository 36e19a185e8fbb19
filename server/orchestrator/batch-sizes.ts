// How many tasks one bus message to a pool carries (protocol 3's task batches). A batch is delivered to one host,
// which claims its members and runs them as its slots free up: a batch larger than a host's slots would keep tasks
// waiting on that host while another host of the pool sits idle. So a pool's batches are never larger than the
// capacity of its smallest live host (a pool of one-slot GPU hosts gets a message per task; the no-op executor's
// 256 slots take up to ATELIER_TASK_BATCH_MAX), and a pool no live host serves yet gets a message per task.
import { sql } from 'drizzle-orm';
import { arrayOf } from '../db/arrays';
import { type Db, queryRows, type Tx } from '../db/client';

/** How long a pool's size is used before it is read again (hosts come and go; a heartbeat comes every ~5 s). */
const FRESH_MS = 5_000;

export class PoolBatchSizes {
  private readonly held = new Map<string, { size: number; at: number }>();
  private readonly refreshing = new Set<string>();

  /** `max`: ATELIER_TASK_BATCH_MAX (1 turns batches off); `staleMs`: a host silent this long is not counted. */
  constructor(
    private readonly max: number,
    private readonly staleMs: number,
  ) {}

  /**
   * The batch size of each of `pools`. A pool never read is read in the transaction `tx` (one statement); one read
   * more than FRESH_MS ago is used as held and, with `behind`, read again on `behind.db` once the transaction has
   * committed (`behind.afterCommit`; the embedded database refuses a statement on `db` while it is open), else in
   * `tx`. So a recording does not wait a round trip for it every few seconds: hosts come and go slowly, and a batch
   * size a few seconds old only shapes how tasks are grouped on the bus, never whether they run.
   */
  async forPools(tx: Tx, pools: Iterable<string>, now: Date, behind?: { db: Db; afterCommit: (work: () => void) => void }): Promise<(pool: string) => number> {
    if (this.max <= 1) return () => 1;
    const at = now.getTime();
    const unknown: string[] = [];
    const stale: string[] = [];
    for (const pool of new Set(pools)) {
      const held = this.held.get(pool);
      if (!held) unknown.push(pool);
      else if (at - held.at > FRESH_MS) stale.push(pool);
    }
    if (stale.length && behind) {
      const { db, afterCommit } = behind;
      afterCommit(() => this.refreshBehind(db, stale, at));
    } else unknown.push(...stale);
    if (unknown.length) await this.read(tx, unknown, at);
    return (pool) => this.held.get(pool)?.size ?? 1;
  }

  private async read(q: Tx | Db, pools: string[], at: number): Promise<void> {
    const rows = await queryRows<{ pool: string; capacity: number }>(
      q,
      sql`select p.pool, min(h.capacity)::int as capacity
          from unnest(${arrayOf(pools, 'text')}) as p(pool)
          join executor_hosts h on p.pool = any(h.pools) and h.last_seen_at > ${new Date(at - this.staleMs).toISOString()}::timestamptz
          group by p.pool`,
    );
    const capacity = new Map(rows.map((r) => [r.pool, r.capacity]));
    for (const pool of pools) this.held.set(pool, { size: Math.max(1, Math.min(this.max, capacity.get(pool) ?? 1)), at });
  }

  /** Reads `pools` again outside any transaction, once at a time each; until it answers, the held sizes serve. */
  private refreshBehind(db: Db, pools: string[], at: number): void {
    const fresh = pools.filter((pool) => !this.refreshing.has(pool));
    if (!fresh.length) return;
    for (const pool of fresh) this.refreshing.add(pool);
    this.read(db, fresh, at)
      .catch(() => undefined) // the held sizes stay, and the next dispatch asks again
      .finally(() => {
        for (const pool of fresh) this.refreshing.delete(pool);
      });
  }
}

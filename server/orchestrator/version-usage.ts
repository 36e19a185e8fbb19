// The catalog's usage rollup (module_version_usage): a run's start adds one to each module version its tasks are
// pinned to. Its rows are the only ones two starts of the same module both write, so the upsert is the transaction's
// last statement before the feed's append (`transact` sends it there, once for every run the transaction started),
// taking its rows in one order: a start holds them only while it commits, and two starts never wait on each other in
// a circle.
import { type SQL, sql } from 'drizzle-orm';
import { arrayLiteral } from '../db/arrays';
import type { Step } from './context';

/** Notes that a run started in this transaction has tasks pinned to these versions (each counted once for it). */
export function noteVersionsUsed(step: Step, versionIds: Iterable<string | null | undefined>): void {
  for (const id of new Set(versionIds)) if (id) step.versionsUsed.set(id, (step.versionsUsed.get(id) ?? 0) + 1);
}

/** The upsert adding a transaction's noted uses (runs per version) to the rollup, its rows in id order. */
export function versionUsageUpsert(used: ReadonlyMap<string, number>, at: Date): SQL {
  const rows = [...used].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sql`insert into module_version_usage (module_version_id, runs, last_used_at)
    select v.id, v.runs, ${at.toISOString()}::timestamptz
    from unnest(${arrayLiteral(rows.map(([id]) => id))}::uuid[], ${arrayLiteral(rows.map(([, n]) => n))}::bigint[]) with ordinality as v(id, runs, n)
    order by v.n
    on conflict (module_version_id) do update
      set runs = module_version_usage.runs + excluded.runs, last_used_at = greatest(module_version_usage.last_used_at, excluded.last_used_at)`;
}

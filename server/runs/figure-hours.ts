// How a period's figures are read: its whole hours from the hourly rollups (server/db/tables/task-figures.ts), and the
// hours a boundary falls inside (the period's open edge, a local day's start off the whole hour) from the tasks
// themselves. The rollups change in the transaction that changes a task, so the two reads, made in one statement,
// add up to exactly what a read of the tasks alone would, in the same snapshot.
import { type SQL, sql } from 'drizzle-orm';

export const HOUR_MS = 3_600_000;

export interface PeriodHours {
  /** The period: from its first boundary, to its last (null: no end). */
  start: Date;
  end: Date | null;
  /** The rollups' hours to read: from `first`, before `last` (null: no end), none of `split`. */
  first: Date;
  last: Date | null;
  /** Hours (their starts) that a boundary lies inside, not at their start: read from the tasks. */
  split: Date[];
}

const floorHour = (d: Date) => new Date(Math.floor(d.getTime() / HOUR_MS) * HOUR_MS);
const ceilHour = (d: Date) => new Date(Math.ceil(d.getTime() / HOUR_MS) * HOUR_MS);

/** The period between the first and last boundary (`open`: from the one boundary on), cut into hours. */
export function periodHours(boundaries: readonly Date[], open: boolean): PeriodHours {
  const start = boundaries[0]!;
  const end = open ? null : boundaries[boundaries.length - 1]!;
  const split = new Map<number, Date>();
  for (const b of boundaries) if (b.getTime() % HOUR_MS !== 0) split.set(floorHour(b).getTime(), floorHour(b));
  return { start, end, first: ceilHour(start), last: end && floorHour(end), split: [...split.values()] };
}

const iso = (d: Date) => sql`${d.toISOString()}::timestamptz`;
const isoArray = (ds: readonly Date[]) => sql`${`{${ds.map((d) => d.toISOString()).join(',')}}`}::timestamptz[]`;

/** The condition on a rollup row (`alias.hour`): one of the period's whole hours. */
export function wholeHours(alias: string, p: PeriodHours): SQL {
  const hour = sql.raw(`${alias}.hour`);
  return sql`${hour} >= ${iso(p.first)}${p.last ? sql` and ${hour} < ${iso(p.last)}` : sql``}${
    p.split.length ? sql` and ${hour} <> all(${isoArray(p.split)})` : sql``
  }`;
}

/**
 * `from` the period's split hours' tasks (`t`, with `r` its run, and `join` if given): each hour's part inside the
 * period, a range of the finished index. The ranges are written out, not joined from a list: with their bounds in the
 * statement the planner sees each is an hour, where bounds from a join read to it as most of the table.
 */
export function splitHourTasks(p: PeriodHours, join: SQL = sql``): SQL {
  const ranges = p.split.map((h) => {
    const lo = new Date(Math.max(h.getTime(), p.start.getTime()));
    const hi = new Date(Math.min(h.getTime() + HOUR_MS, p.end?.getTime() ?? Number.POSITIVE_INFINITY));
    return sql`(t.finished_at >= ${iso(lo)} and t.finished_at < ${iso(hi)})`;
  });
  return sql`from tasks t join runs r on r.id = t.run_id ${join}
      where (${ranges.length ? sql.join(ranges, sql` or `) : sql`false`})`;
}

/** The boundaries as one `timestamptz[]`, for width_bucket. */
export const boundaryArray = isoArray;

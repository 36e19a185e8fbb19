// Fire-time arithmetic on croner: checking a cron expression and a time zone, the next fire times inside a
// schedule's [startAt, endAt] window, and the fire times that fell due since the last one (bounded, however long
// the control plane was down).
import { Cron } from 'croner';
import type { ErrorDetail } from '../errors';

export interface Timing {
  cron: string;
  timeZone: string;
  startAt: Date | null;
  endAt: Date | null;
}

const compiled = new Map<string, Cron>();
const COMPILED_CACHE = 2000;

/** True for a time zone this runtime knows (IANA names and their aliases, e.g. `Europe/Paris`, `UTC`). */
export function isTimeZone(timeZone: string): boolean {
  if (!timeZone || timeZone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses `cron` (5 fields, or 6 with seconds first; nicknames such as `@daily`) for `timeZone`. Returns the problems
 * instead of throwing, so a caller can report every bad field of an input at once.
 */
export function checkCron(cron: string, timeZone: string): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  if (!isTimeZone(timeZone))
    problems.push({ path: 'timeZone', message: `"${timeZone}" is not a known IANA time zone (for example "UTC", "Europe/Paris", "America/New_York")` });
  if (!cron.trim() || cron.length > 200)
    problems.push({ path: 'cron', message: 'must be a cron expression of 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first' });
  else {
    try {
      new Cron(cron, { paused: true, mode: '5-or-6-parts' });
    } catch (error) {
      problems.push({ path: 'cron', message: `"${cron}" does not parse: ${(error as Error).message.replace(/^CronPattern: /, '')}` });
    }
  }
  return problems;
}

function cronFor(timing: Pick<Timing, 'cron' | 'timeZone'>): Cron {
  const key = `${timing.timeZone}\u0000${timing.cron}`;
  let cron = compiled.get(key);
  if (!cron) {
    // `paused` and no callback: croner only computes dates here and never starts a timer.
    cron = new Cron(timing.cron, { paused: true, mode: '5-or-6-parts', timezone: timing.timeZone });
    if (compiled.size >= COMPILED_CACHE) compiled.delete(compiled.keys().next().value!);
    compiled.set(key, cron);
  }
  return cron;
}

/** The first fire time strictly after `after` inside the window, or null when there is none. */
export function nextFireTime(timing: Timing, after: Date): Date | null {
  const from = timing.startAt && timing.startAt.getTime() - 1 > after.getTime() ? new Date(timing.startAt.getTime() - 1) : after;
  const next = cronFor(timing).nextRun(from);
  return next && (!timing.endAt || next.getTime() <= timing.endAt.getTime()) ? next : null;
}

/** Up to `count` fire times after `after`, in order. */
export function nextFireTimes(timing: Timing, after: Date, count: number): Date[] {
  const times: Date[] = [];
  let cursor = after;
  while (times.length < count) {
    const next = nextFireTime(timing, cursor);
    if (!next) break;
    times.push(next);
    cursor = next;
  }
  return times;
}

/**
 * The fire times in (`after`, `now`] inside the window, oldest first. At most `bound`: past that, only the latest
 * `bound` are returned and `truncated` says older ones exist, so a long outage costs the same as a short one.
 */
export function dueFireTimes(timing: Timing, after: Date, now: Date, bound: number): { times: Date[]; truncated: boolean } {
  const until = timing.endAt && timing.endAt.getTime() < now.getTime() ? timing.endAt : now;
  const times: Date[] = [];
  // Walking forward is cheapest when little is due, the common case (one fire time per tick).
  let cursor = after;
  while (times.length <= bound) {
    const next = nextFireTime(timing, cursor);
    if (!next || next.getTime() > until.getTime()) return { times, truncated: false };
    times.push(next);
    cursor = next;
  }
  // More than `bound` are due: take the latest ones, walking back from `until` (previousRuns is exclusive).
  const floor = Math.max(after.getTime(), (timing.startAt?.getTime() ?? -Infinity) - 1);
  const latest = cronFor(timing)
    .previousRuns(bound, new Date(until.getTime() + 1))
    .filter((t) => t.getTime() > floor)
    .reverse();
  return { times: latest, truncated: true };
}

/**
 * A fire time as its run receives it (a schedule's `fireTimeParameter`): ISO 8601 in the schedule's time zone, to the
 * second, with that zone's offset then (`2026-03-29T09:00:00+02:00`; `Z` at offset zero). Its first ten characters are
 * the local date, which is what a daily run usually wants.
 */
export function fireTimeText(fireTime: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'longOffset',
    })
      .formatToParts(fireTime)
      .map((p) => [p.type, p.value]),
  );
  // `GMT+05:30`, `GMT-03:00`; `GMT` or `GMT+00:00` at offset zero, depending on the runtime's ICU
  const offset = parts.timeZoneName!.slice(3).replace(/^([+-]00:00)?$/, 'Z');
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
}

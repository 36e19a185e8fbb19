// A reporter clock the tests move by hand: timers fire in order as `advance` passes them, none by itself.
import type { ReporterClock } from '../../plugins/host/reporter';

export function fakeClock(): ReporterClock & { advance(ms: number): void } {
  let now = 1_000_000;
  const timers = new Set<{ at: number; fn: () => void }>();
  return {
    now: () => now,
    schedule(fn, ms) {
      const timer = { at: now + ms, fn };
      timers.add(timer);
      return () => timers.delete(timer);
    },
    advance(ms) {
      now += ms;
      for (const timer of [...timers].sort((a, b) => a.at - b.at)) {
        if (timer.at > now || !timers.has(timer)) continue;
        timers.delete(timer);
        timer.fn();
      }
    },
  };
}

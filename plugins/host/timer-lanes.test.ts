import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LaneTimer, TimerLanes } from './timer-lanes';

class Recorded extends LaneTimer {
  constructor(
    readonly name: string,
    private readonly fired: string[],
    private readonly again?: { lanes: TimerLanes; ms: number },
  ) {
    super();
  }
  fire() {
    this.fired.push(`${this.name}@${performance.now()}`);
    if (this.again) this.again.lanes.arm(this, this.again.ms);
  }
}

describe('TimerLanes', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires each wait once, when it is due, across lanes of different lengths', () => {
    const lanes = new TimerLanes();
    const fired: string[] = [];
    const t0 = performance.now();
    lanes.arm(new Recorded('a', fired), 300);
    vi.advanceTimersByTime(100);
    lanes.arm(new Recorded('b', fired), 100);
    lanes.arm(new Recorded('c', fired), 300);
    vi.advanceTimersByTime(1_000);
    expect(fired).toEqual([`b@${t0 + 200}`, `a@${t0 + 300}`, `c@${t0 + 400}`]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('re-armed from its own fire, a wait repeats (a heartbeat); disarmed, it stops and leaves no timer', () => {
    const lanes = new TimerLanes();
    const fired: string[] = [];
    const beat = new Recorded('beat', fired, { lanes, ms: 100 });
    const other = new Recorded('other', fired);
    lanes.arm(beat, 100);
    lanes.arm(other, 250);
    lanes.disarm(other);
    vi.advanceTimersByTime(350);
    expect(fired.map((f) => f.split('@')[0])).toEqual(['beat', 'beat', 'beat']);
    lanes.disarm(beat);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(fired).toHaveLength(3);
  });

  it('arming a wait again starts it over, and disarming one that is not armed does nothing', () => {
    const lanes = new TimerLanes();
    const fired: string[] = [];
    const t0 = performance.now();
    const a = new Recorded('a', fired);
    lanes.disarm(a);
    lanes.arm(a, 100);
    vi.advanceTimersByTime(50);
    lanes.arm(a, 100);
    vi.advanceTimersByTime(500);
    expect(fired).toEqual([`a@${t0 + 150}`]);
  });
});

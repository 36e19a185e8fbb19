// One host timer for many attempts' waits (their heartbeats, their deadlines). Waits of one length are kept in one
// list in the order they end: each is added when it starts, so appending keeps the list in order, and only the first
// of each list is ever looked at. An attempt's heartbeat and deadline were an interval and a timeout of its own, each
// a timer object and a closure held for as long as the attempt ran: with ~400 attempts in flight on a busy host, they
// outlived a scavenge and were copied and promoted with every attempt (docs/performance.md, session 32).

/** A wait that ends by calling `fire`. An owner keeps one per purpose and arms it again (a heartbeat) or not. */
export abstract class LaneTimer {
  /** When it fires, on `performance.now()`'s clock. */
  due = 0;
  prev: LaneTimer | undefined = undefined;
  next: LaneTimer | undefined = undefined;
  lane: Lane | undefined = undefined;
  abstract fire(): void;
}

/** A wait that calls its owner back: made once (a reporter's fold), armed as often as the owner needs. */
export class CallbackTimer extends LaneTimer {
  constructor(readonly fire: () => void) {
    super();
  }
}

class Lane {
  head: LaneTimer | undefined = undefined;
  tail: LaneTimer | undefined = undefined;
  constructor(readonly ms: number) {}
}

export class TimerLanes {
  private readonly lanes = new Map<number, Lane>();
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;

  /** Fires `timer` `ms` from now (a whole number of ms, at least 1), unless disarmed first; armed already, it starts over. */
  arm(timer: LaneTimer, ms: number) {
    this.disarm(timer);
    let lane = this.lanes.get(ms);
    if (!lane) {
      lane = new Lane(ms);
      this.lanes.set(ms, lane);
    }
    timer.due = performance.now() + ms;
    timer.lane = lane;
    timer.prev = lane.tail;
    if (lane.tail) lane.tail.next = timer;
    else lane.head = timer;
    lane.tail = timer;
    if (timer.due < this.timerDue) this.wakeAt(timer.due);
  }

  /** Takes `timer` out; nothing happens if it is not armed. */
  disarm(timer: LaneTimer) {
    const lane = timer.lane;
    if (!lane) return;
    if (timer.prev) timer.prev.next = timer.next;
    else lane.head = timer.next;
    if (timer.next) timer.next.prev = timer.prev;
    else lane.tail = timer.prev;
    timer.lane = timer.prev = timer.next = undefined;
    if (lane.head) return;
    this.lanes.delete(lane.ms);
    // Nothing left to wait for: no timer keeps the process up (as the attempts' own timers, cleared, did not).
    if (this.lanes.size === 0) this.wakeAt(Number.POSITIVE_INFINITY);
  }

  private wakeAt(due: number) {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = due;
    if (due !== Number.POSITIVE_INFINITY) this.timer = setTimeout(() => this.fireDue(), Math.max(1, Math.ceil(due - performance.now())));
  }

  private fireDue() {
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
    const now = performance.now();
    try {
      for (const lane of [...this.lanes.values()]) {
        for (let timer = lane.head; timer && timer.due <= now; timer = lane.head) {
          this.disarm(timer);
          timer.fire();
        }
      }
    } finally {
      let first = Number.POSITIVE_INFINITY;
      for (const lane of this.lanes.values()) if (lane.head && lane.head.due < first) first = lane.head.due;
      if (first < this.timerDue) this.wakeAt(first);
    }
  }
}

/**
 * The host's lanes: every attempt's heartbeat and deadline (attempt.ts) and its reporter's fold (reporter.ts), in this
 * process, on one timer.
 */
export const hostTimers = new TimerLanes();

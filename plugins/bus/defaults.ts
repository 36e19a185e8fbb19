// The bus's defaults, shared by every implementation of the contract (plugins/bus/types.ts) and by the executor
// host: one home, so the in-process bus keeps behaving like JetStream when a number changes.

export const BUS_DEFAULTS = {
  /** Publishing a msgId seen within this window is dropped (JetStream's duplicate_window). */
  dedupeWindowMs: 2 * 60_000,
  /** Events older than this are dropped even if unread (the EVENTS stream's max_age). */
  eventMaxAgeMs: 7 * 24 * 3_600_000,
  /** Most events the in-process bus keeps; the oldest go first (JetStream's max_msgs). */
  eventMaxCount: 1_000_000,
  /** A delivery not acked (nor `working()`-extended) within this time is redelivered. */
  ackWaitMs: 30_000,
  /** Most task messages handed out and not yet acked, per subscription. */
  taskInFlight: 1,
  /**
   * Most bytes of task messages an executor host holds per pool, taken and not yet acked (`ATELIER_TASK_IN_FLIGHT_MB`):
   * beside its count (its slots, plus an executor's own: the noop executor's 256), so a flood of large task messages
   * waits on the bus, not in the host's memory. Task messages are mostly small, so the count binds first.
   */
  hostTaskInFlightBytes: 64 * 1024 * 1024,
  /** Most event messages handed out and not yet acked, per subscription. */
  eventInFlight: 1_000,
  /** Most events handed to one batch handler call. */
  maxBatch: 256,
} as const;

/** Stream and subject names; a prefix isolates a bus on a shared server (`<prefix>_TASKS`, `<prefix>.tasks.>`). */
export const BUS_NAMES = {
  root: 'atelier',
  tasksStream: 'TASKS',
  eventsStream: 'EVENTS',
} as const;

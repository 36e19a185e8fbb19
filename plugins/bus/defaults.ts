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

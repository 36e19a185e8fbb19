// How long the dashboards' live connection waits before its next try to connect again: doubling from half a second,
// but never past RECONNECT_CAP_MS, plus a random spread (so that the dashboards open on a restarted server do not all
// come back at the same instant). graphql-ws's own wait doubles without a bound: a dashboard left open through a
// two-minute outage waited up to two minutes more, showing "connecting", after the server was back.
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_CAP_MS = 5_000;
export const RECONNECT_SPREAD_MS = 1_000;

/** The wait before try `retries` (0 for the first), given a random number in [0, 1). */
export function reconnectDelayMs(retries: number, random: number = Math.random()): number {
  return Math.min(RECONNECT_BASE_MS * 2 ** Math.min(retries, 30), RECONNECT_CAP_MS) + Math.floor(random * RECONNECT_SPREAD_MS);
}

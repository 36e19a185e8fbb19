// A connection lost or refused: Postgres or nats-server restarting, a socket reset. A leaf, as server/errors is: the
// edges answer such an error as UNAVAILABLE (retry shortly), and a long-running process survives one
// (server/lifecycle/transient-errors.ts).

/** Codes of a lost or refused connection: the Postgres driver's, Postgres's own (class 08, admin shutdown), the OS's. */
const LOST = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
]);

/** Whether `error` (or what it wraps) is a lost connection. */
export function isLostConnection(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && LOST.has(code)) return true;
    e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

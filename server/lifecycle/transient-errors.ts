// A long-running process (the control plane, an executor host) outlives its connections: Postgres and nats-server
// restart, sockets reset. A background step whose query or publish fails because a connection was lost must not take
// the process down with an unhandled rejection: the step's work is transactional (rolled back) or redelivered (not
// acknowledged), and its periodic job or the bus runs it again. Anything else still ends the process, as Node would.

/** Codes of a lost or refused connection: the Postgres driver's, Postgres's own (class 08, admin shutdown), the OS's. */
const TRANSIENT = new Set([
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
    if (typeof code === 'string' && TRANSIENT.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Keeps the process alive through a lost connection's unhandled rejection (logged, with where it came from); any
 * other unhandled rejection is printed and ends the process with status 1. Returns the uninstaller.
 */
export function surviveLostConnections(log: (message: string) => void): () => void {
  const onRejection = (reason: unknown) => {
    if (isLostConnection(reason)) {
      log(`a background step lost its connection and is left to its retry: ${(reason as Error).stack ?? String(reason)}`);
      return;
    }
    console.error('Unhandled rejection, stopping:', reason);
    process.exit(1);
  };
  process.on('unhandledRejection', onRejection);
  return () => process.off('unhandledRejection', onRejection);
}

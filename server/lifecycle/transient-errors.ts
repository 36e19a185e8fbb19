// A long-running process (the control plane, an executor host) outlives its connections: Postgres and nats-server
// restart, sockets reset. A background step whose query or publish fails because a connection was lost must not take
// the process down with an unhandled rejection: the step's work is transactional (rolled back) or redelivered (not
// acknowledged), and its periodic job or the bus runs it again. Anything else still ends the process, as Node would.
import { isLostConnection } from '../errors/lost-connection';

export { isLostConnection };

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

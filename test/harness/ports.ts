// Free TCP ports on loopback for the servers the test harnesses start.
import { connect, createServer } from 'node:net';

/**
 * A port that was free a moment ago: the OS picks it for a listener on port 0, which is then closed. Another
 * process can still take it before the caller binds, so callers retry a failed start on a fresh port.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not read the port of a loopback listener'))));
    });
  });
}

/** Whether a TCP connection to the loopback port is refused: the server on it (Postgres, nats-server) is down. */
export function refused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(true));
  });
}

// A TCP proxy on loopback in front of a server (Postgres, nats-server) that can be partitioned: `blackHole()` stops
// forwarding in both directions without closing anything (bytes sent meanwhile are held, as a network that drops
// packets leaves them unanswered), `heal()` forwards again, the held bytes first, on the same connections.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's (`postgres://u@h:p/db`, `nats://h:p`). */
  url(url: string): string;
  blackHole(): void;
  heal(): void;
  /** Connections opened through it so far. */
  connections(): number;
  /** What clients sent that is held now (the partition's), as text: a test waits for what it expects to be sent. */
  heldFromClients(): string;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let holding = false;
  let opened = 0;
  const held: (() => void)[] = [];
  const fromClients: Buffer[] = [];
  const forward = (to: net.Socket, fromClient: boolean) => (chunk: Buffer) => {
    if (!holding) return void to.write(chunk);
    held.push(() => to.write(chunk));
    if (fromClient) fromClients.push(chunk);
  };
  const listener = net.createServer((client) => {
    opened++;
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    upstream.on('data', forward(client, false));
    client.on('data', forward(upstream, true));
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  return {
    port,
    url: (url) => url.replace(/^([a-z]+:\/\/(?:[^@/]*@)?)[^/:]+(?::\d+)?/, `$1127.0.0.1:${port}`),
    blackHole: () => void (holding = true),
    heal() {
      holding = false;
      fromClients.length = 0;
      for (const write of held.splice(0)) write();
    },
    connections: () => opened,
    heldFromClients: () => Buffer.concat(fromClients).toString('latin1'),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => listener.close(() => r()));
    },
  };
}

// Who sent a request: the one answer every place that keys on a client's address reads (the failed-token throttle
// on GraphQL, SSE, graphql-ws, MLflow, artifact, observation and hook routes). It is the TCP peer, unless that peer is
// a reverse proxy the operator trusts (ATELIER_TRUSTED_PROXIES): then the right-most address of X-Forwarded-For that
// is not itself a trusted proxy. Never the left-most (any client writes what it likes there), and never the header of
// an untrusted peer. `Forwarded` (RFC 7239) is not read: a proxy that appends to one of the two headers passes the
// other through as the client wrote it, so honouring both would let a client forge its address.
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** A request's resolved peer, set as it arrives (`createPeerResolver(...).identify`) and read by `peerOf`. */
const identified = new WeakMap<IncomingMessage, string | undefined>();

/**
 * The address a request counts under: the one `identify` resolved as it arrived, else (a request that bypassed the
 * server's entry, as a route tested alone) its TCP peer. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is given as IPv4.
 */
export function peerOf(req: IncomingMessage): string | undefined {
  return identified.has(req) ? identified.get(req) : normaliseAddress(req.socket.remoteAddress);
}

export interface PeerResolver {
  /** Resolves the request's peer once, as it arrives (HTTP requests and WebSocket upgrades alike). */
  identify(req: IncomingMessage): void;
  /** The peer of a TCP address and X-Forwarded-For value, as `identify` resolves it. */
  resolve(tcpPeer: string | undefined, forwardedFor: string | string[] | undefined): string | undefined;
}

/** `trusted`: addresses and CIDR ranges (`10.0.0.0/8`, `::1`), as the config reader checked them. */
export function createPeerResolver(trusted: readonly string[]): PeerResolver {
  const proxies = rangeList(trusted);
  const isProxy = (address: string) => proxies !== null && proxies.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
  const resolve: PeerResolver['resolve'] = (tcpPeer, forwardedFor) => {
    let peer = normaliseAddress(tcpPeer);
    if (!peer || !isProxy(peer) || forwardedFor === undefined) return peer;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    // From the right: each hop was written by the proxy to its right, trusted so far; the first untrusted one is the client.
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normaliseAddress(hopAddress(hops[i]!));
      if (!hop) return peer; // not an address ("unknown", garbage): the last trusted hop is all that is known
      peer = hop;
      if (!isProxy(hop)) return hop;
    }
    return peer; // every hop a trusted proxy: the left-most of them
  };
  return {
    resolve,
    identify(req) {
      if (proxies) identified.set(req, resolve(req.socket.remoteAddress, req.headers['x-forwarded-for']));
    },
  };
}

/** An address as one spelling: IPv4-mapped IPv6 as IPv4, IPv6 in lower case; undefined for anything that is not an IP. */
export function normaliseAddress(address: string | undefined | null): string | undefined {
  if (!address) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address;
  return isIP(ip) ? ip.toLowerCase() : undefined;
}

/** One X-Forwarded-For entry without its port or brackets (`203.0.113.7:51234`, `[2001:db8::1]:443`). */
function hopAddress(hop: string): string {
  const text = hop.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return bracketed[1]!;
  const v4WithPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(text);
  return v4WithPort ? v4WithPort[1]! : text;
}

/** A BlockList of the ranges; null when there are none. */
function rangeList(ranges: readonly string[]): BlockList | null {
  if (!ranges.length) return null;
  const list = new BlockList();
  for (const range of ranges) {
    const [address, prefix] = range.split('/') as [string, string | undefined];
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    list.addSubnet(address, prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix), family);
  }
  return list;
}

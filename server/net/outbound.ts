// Where the control plane may send a request whose target a user chose (a webhook URL, a repository to clone): never
// to loopback, link-local (cloud metadata), private, shared, multicast or reserved addresses unless an admin allows
// them (ATELIER_OUTBOUND_ALLOW_PRIVATE). The check is on the addresses each connection uses, not on the name, so a
// name that resolves there (or re-resolves there after a first check) is refused too; redirects are never followed.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { Readable } from 'node:stream';

export const OUTBOUND_ALLOW_VARIABLE = 'ATELIER_OUTBOUND_ALLOW_PRIVATE';

/** Addresses or CIDR ranges an admin allows despite being private (`127.0.0.1`, `10.0.0.0/8`), or `all`. */
export type OutboundAllow = readonly string[] | 'all';

const IPV4_RESERVED: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3], // multicast, reserved and broadcast
];
const IPV6_RESERVED: [string, number][] = [
  ['::', 127], // unspecified and loopback
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
];
const reserved = new BlockList();
for (const [net, prefix] of IPV4_RESERVED) reserved.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of IPV6_RESERVED) reserved.addSubnet(net, prefix, 'ipv6');

/** The IPv4 address an IPv6 one carries (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64, 6to4), if any. */
export function embeddedIPv4(ip: string): string | null {
  if (isIP(ip) !== 6) return null;
  const groups = expand(ip);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zero(0, 5) && (groups[5] === 0xffff || groups[5] === 0)) return v4(groups[6]!, groups[7]!);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zero(2, 6)) return v4(groups[6]!, groups[7]!);
  if (groups[0] === 0x2002) return v4(groups[1]!, groups[2]!);
  return null;
}

function expand(ip: string): number[] {
  let text = ip.toLowerCase().split('%')[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (s: string) => (s ? s.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
}

/** Parses the admin's list; throws (with `fail`) on an entry that is not an address or CIDR range. */
export function parseOutboundAllow(raw: string | undefined, fail: (message: string) => Error): OutboundAllow {
  const entries = (raw ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length === 1 && entries[0] === 'all') return 'all';
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const max = isIP(address) === 4 ? 32 : 128;
    if (!isIP(address) || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= max)))
      throw fail(`${OUTBOUND_ALLOW_VARIABLE}: "${entry}" is not an address or CIDR range (e.g. 10.0.0.0/8,127.0.0.1), or "all".`);
  }
  return entries;
}

/** Why the control plane may not connect to `ip` for a user, or null when it may. Never names the address. */
export function addressProblem(ip: string, allow: OutboundAllow): string | null {
  if (allow === 'all') return null;
  const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
  const inner = embeddedIPv4(ip);
  const isReserved = reserved.check(ip, family) || (inner !== null && reserved.check(inner, 'ipv4'));
  if (!isReserved) return null;
  const allowed = new BlockList();
  for (const entry of allow) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    allowed.addSubnet(address, prefix === undefined ? (type === 'ipv4' ? 32 : 128) : Number(prefix), type);
  }
  if (allowed.check(ip, family) || (inner !== null && allowed.check(inner, 'ipv4'))) return null;
  return `it is a loopback, link-local, private or reserved address, which the server reaches for users only when an admin lists it in ${OUTBOUND_ALLOW_VARIABLE}`;
}

/** A target the policy refuses: final, never retried. */
export class OutboundRefusedError extends Error {
  override name = 'OutboundRefusedError';
  constructor(host: string, problem: string) {
    super(`refused to connect to ${host}: ${problem}`);
  }
}

const bare = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');

/** Every address `hostname` resolves to, when all are allowed; throws OutboundRefusedError otherwise. */
export async function allowedAddresses(hostname: string, allow: OutboundAllow): Promise<string[]> {
  const host = bare(hostname);
  const addresses = isIP(host) ? [host] : (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  for (const address of addresses) {
    const problem = addressProblem(address, allow);
    if (problem) throw new OutboundRefusedError(host, problem);
  }
  return addresses;
}

/** A `lookup` for http.request that answers only allowed addresses (each connection resolves through it). */
export function guardedLookup(allow: OutboundAllow): NonNullable<http.RequestOptions['lookup']> {
  return (hostname, options, callback) => {
    allowedAddresses(hostname, allow).then(
      (addresses) => {
        const answers = addresses.map((address) => ({ address, family: isIP(address) }));
        if (options.all) callback(null, answers);
        else callback(null, answers[0]!.address, answers[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}

/** The part of fetch the control plane's user-directed requests use; redirects are returned, never followed. */
export type OutboundFetch = (
  url: string,
  init: { method?: string; body?: string; headers?: Record<string, string>; signal?: AbortSignal; redirect?: 'manual' },
) => Promise<Response>;

/** A fetch whose every connection goes only to addresses `allow` permits (checked at connect, for IP literals too). */
export function guardedFetch(allow: OutboundAllow): OutboundFetch {
  const lookup = guardedLookup(allow);
  return (raw, init) =>
    new Promise((resolve, reject) => {
      const url = new URL(raw);
      const host = bare(url.hostname);
      const literalProblem = isIP(host) ? addressProblem(host, allow) : null; // a literal is never looked up
      if (literalProblem) return reject(new OutboundRefusedError(host, literalProblem));
      const transport = url.protocol === 'https:' ? https : http;
      const req = transport.request(url, { method: init.method ?? 'GET', headers: init.headers, lookup, signal: init.signal, agent: false }, (res) => {
        const headers = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 502;
        const empty = status === 204 || status === 304 || init.method === 'HEAD';
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers }));
      });
      req.on('error', (error) => reject(init.signal?.aborted ? init.signal.reason : error));
      req.end(init.body);
    });
}

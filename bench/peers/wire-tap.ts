// A tap on this process's Postgres sockets for latency probes (bench/peers/wire-trace.ts): every write the driver makes
// and every chunk of bytes it is handed, stamped on the hop tracer's clock (plugins/trace.ts) with the protocol
// messages they carry (a statement's first words, a CommandComplete's tag). Off until `tapPostgresSockets` is called;
// it wraps `net.Socket`'s `write` and `emit` for the whole process, so it is for probes only.
import net from 'node:net';
import { traceNow } from '../../plugins/trace';

export interface WireEvent {
  /** The stamp (epoch ms with a fraction, traceNow). */
  at: number;
  /** For `in`: when the socket's `data` listeners (the driver's parser, the promises it settles) returned. */
  handledAt?: number;
  dir: 'out' | 'in';
  /** Which tapped connection (in the order they started). */
  conn: number;
  /** The protocol messages in the chunk: `P:<statement's first words>`, `Q:…`, `C:<tag>`, else the message's type letter. */
  messages: string[];
  bytes: number;
}

/**
 * Taps every Postgres connection this process opens from now on whose startup parameters (`user`, `database`, …)
 * `which` takes; `stop` takes the wrappers off.
 */
export function tapPostgresSockets(which: (params: Record<string, string>) => boolean): { events: WireEvent[]; stop: () => void } {
  const events: WireEvent[] = [];
  const conns = new WeakMap<net.Socket, number>();
  let next = 0;
  const proto = net.Socket.prototype;
  const write = proto.write;
  const emit = proto.emit;
  proto.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
    if (Buffer.isBuffer(chunk)) {
      if (!conns.has(this) && isStartup(chunk, which)) conns.set(this, next++);
      const conn = conns.get(this);
      if (conn !== undefined) events.push({ at: traceNow(), dir: 'out', conn, messages: messagesOf(chunk, 'out'), bytes: chunk.length });
    }
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof proto.write;
  proto.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]) {
    const conn = event === 'data' ? conns.get(this) : undefined;
    if (conn === undefined) return (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
    const chunk = args[0] as Buffer;
    const e: WireEvent = { at: traceNow(), dir: 'in', conn, messages: messagesOf(chunk, 'in'), bytes: chunk.length };
    events.push(e);
    try {
      return (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
    } finally {
      e.handledAt = traceNow();
    }
  } as typeof proto.emit;
  return {
    events,
    stop: () => {
      proto.write = write;
      proto.emit = emit;
    },
  };
}

/** A StartupMessage (no type byte; protocol 3.0) whose parameters `which` takes. */
function isStartup(chunk: Buffer, which: (params: Record<string, string>) => boolean): boolean {
  if (chunk.length < 8 || chunk.readInt32BE(4) !== 196608) return false;
  const pairs = chunk.subarray(8).toString('utf8').split('\0');
  const params: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length && pairs[i]; i += 2) params[pairs[i]!] = pairs[i + 1]!;
  return which(params);
}

/** The protocol messages a chunk carries, as far as whole ones fit. */
function messagesOf(chunk: Buffer, dir: 'out' | 'in'): string[] {
  const out: string[] = [];
  for (let i = 0; i + 5 <= chunk.length; ) {
    const type = String.fromCharCode(chunk[i]!);
    const length = chunk.readInt32BE(i + 1);
    if (length < 4) break;
    const body = chunk.subarray(i + 5, Math.min(chunk.length, i + 1 + length));
    if (dir === 'out' && type === 'P') {
      // Parse: statement name \0 text \0 …
      const text = body.subarray(body.indexOf(0) + 1).toString('utf8');
      out.push(`P:${words(text.slice(0, text.indexOf('\0')))}`);
    } else if (dir === 'out' && type === 'Q') out.push(`Q:${words(body.toString('utf8'))}`);
    else if (dir === 'in' && type === 'C') out.push(`C:${body.toString('utf8').replace(/\0$/, '')}`);
    else if (dir === 'in' && type === 'E') out.push('E');
    else if (type !== 'D') out.push(type); // DataRows are many and say nothing here
    i += 1 + length;
  }
  return out;
}

const words = (sql: string) => sql.replace(/\s+/g, ' ').trim().split(' ').slice(0, 4).join(' ').slice(0, 48);

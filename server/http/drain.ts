// Stopping the HTTP side without cutting anyone off mid-answer (a rolling restart's SIGTERM): new connections are
// refused and new requests answered 503 UNAVAILABLE with Retry-After (another replica takes them), requests in
// flight finish within a bounded grace, and live streams (SSE) are ended at once so their clients resume elsewhere.
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';

/** Responses that never end on their own: a drain ends them rather than waiting for them. */
const STREAMING = /^(text\/event-stream|multipart\/mixed)/i;

const REFUSED_MESSAGE = 'This server is shutting down: send the request again (another replica, or this one once restarted, answers it).';

export interface Drain {
  /** The listener with requests counted while they are answered; while draining, new requests are refused (503). */
  listener(inner: RequestListener): RequestListener;
  /**
   * Stops `server` taking connections, refuses new requests, ends live streams, and resolves once every request in
   * flight has been answered or `graceMs` has passed (then the rest are dropped); safe to call once.
   */
  drain(server: Server, graceMs: number): Promise<void>;
  /** How many requests are being answered now (not counting live streams). */
  inFlight(): number;
}

/** Whether `res` is a live stream: by its content type, set with setHeader or given to writeHead alone (then only in the head sent). */
const streaming = (res: ServerResponse) =>
  STREAMING.test(String(res.getHeader('content-type') ?? '')) ||
  (res.headersSent && /^content-type:\s*(?:text\/event-stream|multipart\/mixed)/im.test((res as unknown as { _header?: string })._header ?? ''));

/** Answers a request that came in while draining: retryable, and the connection closes after it. */
function refuse(req: IncomingMessage, res: ServerResponse) {
  const graphql = (req.url ?? '').startsWith('/graphql');
  res.shouldKeepAlive = false;
  res.writeHead(503, {
    'retry-after': '1',
    connection: 'close',
    'content-type': graphql ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
  });
  res.end(graphql ? JSON.stringify({ errors: [{ message: REFUSED_MESSAGE, extensions: { code: 'UNAVAILABLE' } }] }) : `${REFUSED_MESSAGE}\n`);
  req.resume(); // an unread body is discarded, not left to stall the close
}

export function createDrain(): Drain {
  const open = new Set<ServerResponse>();
  let draining = false;
  let settled: (() => void) | undefined;
  const busy = () => [...open].filter((res) => !streaming(res));
  const check = () => {
    if (draining && busy().length === 0) settled?.();
  };
  return {
    listener(inner) {
      return (req, res) => {
        if (draining) return refuse(req, res);
        open.add(res);
        res.once('close', () => {
          open.delete(res);
          check();
        });
        inner(req, res);
      };
    },
    async drain(server, graceMs) {
      draining = true;
      const idle = new Promise<void>((resolve) => {
        settled = resolve;
      });
      server.close(); // no new connections; resolves nothing itself (the live connections keep it open)
      server.closeIdleConnections();
      // A connection closes after the answer it is busy with, rather than waiting for another request.
      for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
      // A live stream may begin while the drain waits (a subscription whose first answer was being prepared): those
      // are ended as they appear, so they never hold the drain up.
      const endStreams = () => {
        for (const res of open) if (streaming(res)) res.destroy();
        server.closeIdleConnections();
      };
      endStreams();
      check();
      const sweep = setInterval(endStreams, 100);
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([idle, grace]);
      clearInterval(sweep);
      clearTimeout(timer);
      server.closeAllConnections();
    },
    inFlight: () => busy().length,
  };
}

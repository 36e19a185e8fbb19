// The HTTP routes the control plane serves, in one ordered list: each route is a small `useX(options)` factory in
// `routes/` (one concern per file, as yoga's `use-health-check`), and the first route that matches answers.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { domainErrorOf, retryAfterHeader } from '../errors';

export interface Route {
  /** Names the route in logs. */
  readonly name: string;
  /** Whether this route answers a request for `url`; asked in list order. */
  matches(url: URL): boolean;
  /** Answers the request; an error it throws is logged and answered 500 (when nothing was sent yet). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> | void;
}

/**
 * Headers every response carries, whichever route answers (routes may add more, e.g. the dashboards' CSP): no MIME
 * sniffing, no referrer leaving the control plane, and no page of it framed by another site.
 */
export const securityHeaders = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

const SECURITY_HEADERS = Object.entries(securityHeaders);

// host (a name, IPv4 or [IPv6]) and an optional port: what RFC 9110 allows in Host, without userinfo or path.
const hostRe = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::(\d{1,5}))?$/;

/** Whether a Host header is one a URL can be built from (absent is fine: HTTP/1.0 needs none). */
export function wellFormedHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const m = hostRe.exec(host);
  return Boolean(m) && (m![1] === undefined || Number(m![1]) <= 65535);
}

/** Counts each request answered, by the route that answered it (server/metrics/instruments.ts). */
export type RequestCounter = (route: string, status: number, seconds: number) => void;

export function createRequestListener(routes: readonly Route[], log: (message: string) => void, counted?: RequestCounter): RequestListener {
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
    // Counted under the route's name once one matched, never the path (a path can carry ids without bound).
    let routeName = 'none';
    if (counted) {
      const began = performance.now();
      res.once('close', () => counted(routeName, res.statusCode, (performance.now() - began) / 1000));
    }
    if (!wellFormedHost(req.headers.host)) {
      return void res
        .writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
        .end('Malformed Host header: send a host name, IPv4 or [IPv6] address, with an optional port (e.g. "Host: atelier.example.com:8080").\n');
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routes.find((r) => r.matches(url));
    if (!route) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found.\n');
    routeName = route.name;
    await route.handle(req, res, url);
  };
  return (req, res) => {
    answer(req, res).catch((error) => {
      // A connection lost (Postgres restarting) is no bug: the caller is told to send it again, as the API edges do.
      const known = domainErrorOf(error);
      if (known?.retryAfterS !== undefined && !res.headersSent) {
        // Refused for now (an address past its limit of failed tokens): said as such, with when to come back.
        return void res
          .writeHead(known.status, { 'content-type': 'application/json', ...retryAfterHeader(known) })
          .end(JSON.stringify({ error: { code: known.code, message: known.message } }));
      }
      const unavailable = known?.code === 'UNAVAILABLE' ? known : undefined;
      log(unavailable ? `request failed: ${(error as Error).message}` : `unhandled request error: ${(error as Error).stack}`);
      if (!res.headersSent)
        res
          .writeHead(unavailable ? 503 : 500, { 'content-type': 'text/plain; charset=utf-8' })
          .end(unavailable ? `${unavailable.message}\n` : 'Internal error: the request failed unexpectedly; the server log has the details.\n');
      else res.end();
    });
  };
}

// The HTTP routes the control plane serves, in one ordered list: each route is a small `useX(options)` factory in
// `routes/` (one concern per file, as yoga's `use-health-check`), and the first route that matches answers.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

export interface Route {
  /** Names the route in logs. */
  readonly name: string;
  /** Whether this route answers a request for `url`; asked in list order. */
  matches(url: URL): boolean;
  /** Answers the request; an error it throws is logged and answered 500 (when nothing was sent yet). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> | void;
}

export function createRequestListener(routes: readonly Route[], log: (message: string) => void): RequestListener {
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routes.find((r) => r.matches(url));
    if (!route) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found.\n');
    await route.handle(req, res, url);
  };
  return (req, res) => {
    answer(req, res).catch((error) => {
      log(`unhandled request error: ${(error as Error).stack}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  };
}

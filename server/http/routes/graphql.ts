// `/graphql` over HTTP (queries, mutations, SSE subscriptions, file uploads), answered by yoga. A document and its
// variables are read whole first, so a body past the limit is refused however it is sent (a content length or
// chunked); only multipart uploads stream to yoga, counted on the way under the larger upload limit and refused with
// the same 413 PAYLOAD_TOO_LARGE the moment they pass it. A response's stream is
// cancelled as soon as its client goes away, so an SSE subscription ends with its request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { assertCan, defineAbilityFor } from '../../auth/ability';
import type { Db } from '../../db/client';
import { AtelierError, domainErrorOf, retryAfterHeader } from '../../errors';
import { authenticate, type Session } from '../authenticate';
import { declaredLengthOver, firstHeader, readBodyWithin, streamBodyWithin } from '../body';
import { corsHeadersFor } from '../cors';
import { peerOf } from '../peer';
import type { Route } from '../router';
import { UPLOAD_RETRY_AFTER_S, type UploadBudget, uploadReservation } from '../upload-budget';
import type { ApiYoga } from '../yoga';

export interface GraphqlRouteOptions {
  yoga: ApiYoga;
  /** The most a request that is not a file upload may carry. */
  maxRequestBytes: number;
  /** The most an uploaded artifact may have (the multipart envelope gets a MiB on top). */
  maxUploadBytes: number;
  /**
   * Where an `Authorization` header's token is looked up (server/http/authenticate.ts) as the request is handed to
   * yoga, and passed on in its server context (`session`): yoga's context awaits that answer rather than asking once
   * the request has been parsed and validated, so the lookup's round trip overlaps yoga's work.
   */
  db?: Db;
  /** The memory every upload in progress shares (none: unbounded, for tests of the route alone). */
  uploads?: UploadBudget;
  /** ATELIER_CORS_ORIGINS: a refusal the route writes itself carries the CORS headers yoga's answers do. */
  corsOrigins?: readonly string[];
}

/**
 * What one multipart upload may hold besides its bytes (yoga's parser, busboy, has no limit on parts): the GraphQL
 * multipart request is `operations`, `map` and a part per file. Thousands of tiny parts cost far more memory as
 * parsed entries than their bytes count under the upload limit.
 */
const UPLOAD_PARTS = { fields: 8, files: 100, parts: 108 };

/** Responses yoga streams (SSE, incremental delivery): forwarded chunk by chunk as they come. */
const STREAMED = /^\s*(text\/event-stream|multipart\/)/i;

/**
 * A whole result (every query and mutation): sent in one write with its length, as yoga's own node handler does,
 * rather than through the stream reader in chunked encoding (the headers, the chunk and the last chunk written apart,
 * a reader and its promises per request; the client parsing the chunks). yoga has the body in hand already.
 */
async function answerWhole(res: ServerResponse, response: Response, req: IncomingMessage): Promise<void> {
  // As text: yoga's body is a string already, and node writes a string body in the same write as the headers.
  const body = await response.text();
  if (res.destroyed) return; // gone while yoga answered
  const headers = Object.fromEntries(response.headers);
  headers['content-length'] = String(Buffer.byteLength(body));
  // Answered before its body was all read (an upload refused part-way): the connection goes with it, as the client
  // still sending would otherwise wait on a server that reads no more, never finishing its request to read the answer.
  if (req.complete) return void res.writeHead(response.status, headers).end(body);
  headers.connection = 'close';
  res.writeHead(response.status, headers).end(body, () => req.destroy());
}

/**
 * The request's headers for yoga, as the plain object node parsed them into (its names lower case already; the one
 * header node keeps as an array, set-cookie, is no request's), without the length of a body the route has read: yoga's
 * Request reads a plain object's headers where they are, as it does for node's own requests (whatwg-node's
 * normalizeNodeRequest), where a WHATWG `Headers` cost each request its validation of every name and value, and each
 * of yoga's reads of a header its lookup.
 */
function requestHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name in req.headers) {
    const value = req.headers[name];
    if (typeof value === 'string' && name !== 'content-length') headers[name] = value;
  }
  return headers;
}

export function useGraphql(options: GraphqlRouteOptions): Route {
  const { yoga } = options;

  /**
   * Answers a request (its body, if any, already read), streaming the response (SSE included) until either side
   * ends. When the client goes away the response's stream is cancelled at once, which ends the subscription behind
   * it (yoga returns its iterator), rather than at the next event or ping written into a closed socket.
   */
  const forward = async (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | Transform | undefined,
    refused?: () => boolean,
    checked?: Promise<Session>,
  ) => {
    const abort = new AbortController();
    // Only a client gone before its answer was written has anything to cancel: aborting after every answer made an
    // AbortError (a DOMException and its stack) and woke yoga's listeners for nothing, on every request.
    res.once('close', () => res.writableFinished || abort.abort());
    const headers = requestHeaders(req);
    const authorization = req.headers.authorization;
    const session = checked ?? (authorization && options.db ? authenticate(options.db, { authorization, peer: peerOf(req) }) : undefined);
    session?.catch(() => undefined); // yoga's context awaits it; a request refused before its context never does
    const response = await yoga.fetch(
      `http://${req.headers.host ?? 'localhost'}${req.url ?? '/graphql'}`,
      {
        method: req.method,
        headers,
        body,
        signal: abort.signal,
        ...(body instanceof Transform ? { duplex: 'half', formDataLimits: UPLOAD_PARTS } : {}),
      } as RequestInit,
      { req, res, session, bodyRead: body !== undefined }, // read within the route's limit (http/body-limit.ts)
    );
    if (refused?.()) return void response.body?.cancel().catch(() => undefined); // the route answered 413 already
    if (!response.body) return void res.writeHead(response.status, Object.fromEntries(response.headers)).end();
    if (!STREAMED.test(response.headers.get('content-type') ?? '')) return answerWhole(res, response, req);
    const reader = response.body.getReader();
    const cancel = () => void reader.cancel().catch(() => undefined);
    if (abort.signal.aborted) return cancel(); // gone while yoga answered
    abort.signal.addEventListener('abort', cancel, { once: true });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || res.destroyed) break;
        if (!res.write(value))
          await new Promise((resolve) => {
            res.once('drain', resolve);
            res.once('close', resolve);
          });
      }
    } catch {
      // the stream failed or was cancelled: the client went away
    } finally {
      abort.signal.removeEventListener('abort', cancel);
    }
    if (res.destroyed) cancel();
    res.end();
  };

  return {
    name: 'graphql',
    matches: (url) => url.pathname === '/graphql' || url.pathname.startsWith('/graphql?'),
    async handle(req, res) {
      const upload = (req.headers['content-type'] ?? '').startsWith('multipart/form-data');
      const limit = upload ? options.maxUploadBytes + 1024 * 1024 : options.maxRequestBytes;
      const tooLarge = () =>
        res.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end(
          JSON.stringify({
            errors: [
              {
                message: `Request body too large (limit ${limit} bytes${upload ? '' : '; set ATELIER_MAX_REQUEST_KB to allow more'}).`,
                extensions: { code: 'PAYLOAD_TOO_LARGE' },
              },
            ],
          }),
          () => req.destroy(),
        );
      if (declaredLengthOver(req, limit)) return void tooLarge();
      // A GET carries its operation in the URL (an SSE subscription may): answered like a POST, streamed the same way.
      if (req.method === 'GET') return forward(req, res, undefined);
      if (req.method !== 'POST') return yoga(req, res);
      if (upload) {
        // Its token first, and room in the uploads' budget: refused before a byte of the body is read.
        let session: Promise<Session> | undefined;
        let release: () => void;
        try {
          if (options.db) {
            const known = await authenticate(options.db, { authorization: firstHeader(req.headers.authorization), peer: peerOf(req) });
            // The one operation that takes a file, publishModuleVersion, needs publish on Module: a token without it
            // (a viewer's) would be read whole only to be refused, holding the uploads' budget meanwhile.
            assertCan(defineAbilityFor(known.identity, known.grants, known.scopes), 'publish', 'Module', 'upload (publish) modules');
            session = Promise.resolve(known);
          }
          release = options.uploads?.reserve(uploadReservation(req.headers['content-length'], limit)) ?? (() => undefined);
        } catch (error) {
          // A dead token, one that may not publish, no room, or the database unreachable (UNAVAILABLE): refused, the body unread.
          const known = domainErrorOf(error);
          if (!known) throw error;
          return refuse(res, req, known, options.corsOrigins);
        }
        res.once('close', release);
        // Streamed, not read whole first; counted on the way, as a declared length may be missing or lie (yoga's
        // own limit, 25 MB, let a chunked upload far past ATELIER_MAX_UPLOAD_MB be held in memory whole).
        const { body: streamed, over } = streamBodyWithin(req, limit);
        streamed.once('error', () => over() && !res.headersSent && tooLarge());
        return forward(req, res, streamed, over, session);
      }
      // The token is looked up while the body is read (the lookup's round trip overlaps the read and yoga's work);
      // a missing or dead one is answered at once, the rest of the body unread, not held until it is all in.
      const checked = options.db ? authenticate(options.db, { authorization: firstHeader(req.headers.authorization), peer: peerOf(req) }) : undefined;
      checked?.catch((error) => error instanceof AtelierError && !res.headersSent && refuse(res, req, error, options.corsOrigins));
      const body = await readBodyWithin(req, limit);
      if (res.headersSent) return;
      if (!body) return void tooLarge();
      return forward(req, res, body, undefined, checked);
    },
  };
}

/** An upload refused before its body is read: the error as yoga shapes one, and the connection closed (unread). */
function refuse(res: ServerResponse, req: IncomingMessage, error: AtelierError, corsOrigins: readonly string[] = []): void {
  res
    .writeHead(error.status, {
      'content-type': 'application/json',
      connection: 'close',
      ...corsHeadersFor(corsOrigins, firstHeader(req.headers.origin)),
      ...(error.code === 'TOO_MANY_UPLOADS' ? { 'retry-after': String(UPLOAD_RETRY_AFTER_S) } : {}),
      ...retryAfterHeader(error),
    })
    .end(JSON.stringify({ errors: [{ message: error.message, extensions: { code: error.code } }] }), () => req.destroy());
}

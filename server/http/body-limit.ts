// The request-size limit yoga applies itself (`maxRequestBodySize`, 25 MB by default), kept for the requests whose body
// yoga reads straight from the socket (no method the route forwards: those are refused by yoga) and skipped for those
// the `/graphql` route has held to its own limit, read whole or (multipart uploads) counted as they stream
// (routes/graphql.ts, which says so in the server context). yoga's built-in plugin wraps every
// body in a limiting TransformStream and a new Request, ~0.1 ms of CPU a request (S3's startRun among them), to count
// bytes the route has already counted. The same checks as yoga's (graphql-yoga's use-limit-request-body-size.js): a
// declared length that is not one integer, or is over the limit, is refused at once; a body that grows past it while
// read fails its parse with the same 413 REQUEST_ENTITY_TOO_LARGE.
import { createGraphQLError, type Plugin } from 'graphql-yoga';

/** yoga's own default: what uploads were held to before this plugin took the limit over. */
export const YOGA_DEFAULT_BODY_LIMIT = 25_000_000;

/** In yoga's server context: the route holds the request's body to its own limit (read whole, or counted as streamed). */
export interface BodyReadContext {
  bodyRead?: boolean;
}

const tooLarge = () => createGraphQLError('Request body too large', { extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' } });
const badLength = () => createGraphQLError('Content-Length header is invalid.', { extensions: { http: { status: 400 }, code: 'BAD_REQUEST' } });

export function useBodyLimit(limit: number = YOGA_DEFAULT_BODY_LIMIT): Plugin<Record<string, unknown>, BodyReadContext> {
  return {
    onRequestParse({ request, requestParser, setRequestParser, serverContext, fetchAPI }) {
      if (serverContext?.bodyRead) return;
      const declared = request.headers.get('content-length');
      if (declared != null) {
        if (!/^\d+$/.test(declared)) throw badLength();
        if (Number(declared) > limit) throw tooLarge();
      }
      if (!requestParser || !request.body) return;
      const parse = requestParser;
      setRequestParser((req) => {
        const body = req.body;
        if (!body) return parse(req);
        // A native stream needs the native TransformStream, the ponyfill's the ponyfill's (as yoga chooses).
        const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
        let read = 0;
        const limited = body.pipeThrough(
          new Transform<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              read += chunk.byteLength;
              if (read > limit) return controller.error(tooLarge());
              controller.enqueue(chunk);
            },
          }),
        );
        return parse(
          new fetchAPI.Request(req.url, { method: req.method, headers: req.headers, signal: req.signal, body: limited, duplex: 'half' } as RequestInit),
        );
      });
    },
  };
}

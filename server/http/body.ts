// Reading request bodies within a size limit, and the header helpers the routes share.
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { badInput } from '../errors';
import { assertWithinInputLimits } from '../errors/input-limits';

/** The whole body, or null as soon as it passes `limit` bytes (the rest is not read) or the request is destroyed first. */
export function readBodyWithin(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.pause();
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    // Destroyed before its end (the route refused it unread, or the client went away): nothing more comes.
    req.on('close', () => req.complete || resolve(null));
  });
}

/**
 * The body as a stream that fails once more than `limit` bytes have come, for a reader that must stream it (a file
 * upload): `over()` says whether that is why it failed, so the route answers with its own 413 rather than the
 * reader's parse error. Nothing past the limit is passed on.
 */
export function streamBodyWithin(req: IncomingMessage, limit: number): { body: Transform; over: () => boolean } {
  let size = 0;
  let over = false;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size <= limit) return done(null, chunk);
      over = true;
      req.unpipe(body);
      req.pause();
      done(new Error(`The request body is over ${limit} bytes.`));
    },
  });
  req.on('error', (error) => body.destroy(error));
  req.pipe(body);
  return { body, over: () => over };
}

/**
 * A JSON request body, held to the limits every edge keeps (server/errors/input-limits.ts: no NUL, which Postgres
 * cannot store; nesting at most 64 levels, past which recursive code below runs out of stack): BAD_USER_INPUT with
 * `notJson`, or naming `what` and where the limit broke. Every route that takes JSON reads it here.
 */
export function jsonBody(body: Buffer, what: string, notJson: string, root = what): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw badInput(notJson);
  }
  assertWithinInputLimits(parsed, what, 'BAD_USER_INPUT', root);
  return parsed;
}

/** A header's first value (Node gives repeated headers as arrays). */
export const firstHeader = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/** Whether a declared content length already passes `limit` (a body sent chunked is checked while read). */
export const declaredLengthOver = (req: IncomingMessage, limit: number): boolean => Number(req.headers['content-length'] ?? 0) > limit;

// Reading request bodies within a size limit, and the header helpers the routes share.
import type { IncomingMessage } from 'node:http';

/** The whole body, or null as soon as it passes `limit` bytes (the rest is not read). */
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
  });
}

/** A header's first value (Node gives repeated headers as arrays). */
export const firstHeader = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/** Whether a declared content length already passes `limit` (a body sent chunked is checked while read). */
export const declaredLengthOver = (req: IncomingMessage, limit: number): boolean => Number(req.headers['content-length'] ?? 0) > limit;

// What every object store backend shares: digest syntax, the typed not-found and mismatch errors, a pass-through
// stream that checks the digest as bytes go by, and spooling a stream to a temporary file while hashing it.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AtelierError } from '../errors';

const digestRe = /^sha256:([0-9a-f]{64})$/;

/** The hex of a `sha256:<hex>` digest; BAD_USER_INPUT for anything else (it never becomes a path or key). */
export function checkedDigest(digest: string): string {
  const m = digestRe.exec(digest);
  if (!m) throw new AtelierError('BAD_USER_INPUT', `"${digest}" is not a digest; expected sha256:<64 hex digits>`);
  return m[1]!;
}

export const objectNotFound = (digest: string) => new AtelierError('NOT_FOUND', `No object ${digest} in the store.`);

export const digestMismatch = (digest: string, actual: string, removed: boolean) =>
  new AtelierError('DIGEST_MISMATCH', `Object ${digest} is corrupt (its content hashes to ${actual})${removed ? '; it was removed, publish it again' : ''}`);

/**
 * Passes bytes through and fails at the end with DIGEST_MISMATCH (or what `mismatch` returns) unless they hash to
 * `digest`; `ok` runs when they do.
 */
export function verifying(digest: string, hooks: { ok?: () => void; mismatch?: (actual: string) => Promise<Error> | Error } = {}): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual === digest) {
        hooks.ok?.();
        return done();
      }
      Promise.resolve(hooks.mismatch ? hooks.mismatch(actual) : digestMismatch(digest, actual, false)).then(done, done);
    },
  });
}

export interface SpooledObject {
  /** A temporary file holding the bytes; the caller moves or removes it. */
  file: string;
  digest: string;
  size: number;
}

/** Writes a stream to a temporary file under `dir`, hashing it on the way. */
export async function spool(source: Readable | AsyncIterable<Uint8Array>, dir: string): Promise<SpooledObject> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `.incoming-${randomUUID()}.tmp`);
  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(source instanceof Readable ? source : Readable.from(source), counter, createWriteStream(file));
  } catch (error) {
    await unlink(file).catch(() => {});
    throw error;
  }
  return { file, digest: `sha256:${hash.digest('hex')}`, size };
}

/** Writes `body` to `file` through a temporary name, renamed only once the bytes hash to `digest`. */
export async function writeVerified(body: Readable, digest: string, file: string, mismatch?: (actual: string) => Promise<Error> | Error): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  try {
    await pipeline(body, verifying(digest, { mismatch }), createWriteStream(tmp));
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => {});
    throw error;
  }
}

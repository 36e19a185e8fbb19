// The object store: immutable blobs addressed by their SHA-256 digest. Filesystem by default
// (`$ATELIER_DATA_DIR/objects`); writes are atomic (temp file + rename) so a crash leaves no partial object.
// Its errors name digests, never the server's paths: they reach callers.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AtelierError } from '../errors';

export interface ObjectStore {
  /** Stores bytes and returns their digest (`sha256:<hex>`); storing the same bytes twice is a no-op. */
  put(bytes: Uint8Array): Promise<string>;
  /** Local path of an object, verified against its digest. Throws NOT_FOUND or DIGEST_MISMATCH. */
  path(digest: string): Promise<string>;
  get(digest: string): Promise<Buffer>;
  has(digest: string): Promise<boolean>;
}

export const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const digestRe = /^sha256:[0-9a-f]{64}$/;

export function createFileObjectStore(root: string): ObjectStore {
  const verified = new Set<string>();
  const locate = (digest: string) => {
    if (!digestRe.test(digest)) throw new AtelierError('BAD_USER_INPUT', `"${digest}" is not a digest; expected sha256:<64 hex digits>`);
    const hex = digest.slice(7);
    return path.join(root, 'sha256', hex.slice(0, 2), hex);
  };
  const store: ObjectStore = {
    async put(bytes) {
      const digest = sha256(bytes);
      const file = locate(digest);
      if (await exists(file)) return digest;
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${randomUUID()}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, file);
      verified.add(digest);
      return digest;
    },
    async path(digest) {
      const file = locate(digest);
      if (!(await exists(file))) throw new AtelierError('NOT_FOUND', `No object ${digest} in the store.`); // never the store's path: callers show this
      if (!verified.has(digest)) {
        const actual = await hashFile(file);
        if (actual !== digest) {
          await unlink(file).catch(() => {});
          throw new AtelierError('DIGEST_MISMATCH', `Object ${digest} is corrupt (its content hashes to ${actual}); it was removed, publish it again`);
        }
        verified.add(digest);
      }
      return file;
    },
    async get(digest) {
      return readFile(await store.path(digest));
    },
    async has(digest) {
      return exists(locate(digest));
    },
  };
  return store;
}

async function exists(file: string) {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** The `sha256:<hex>` digest of a file, streamed. */
export function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(`sha256:${hash.digest('hex')}`));
  });
}

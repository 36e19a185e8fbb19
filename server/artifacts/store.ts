// The object store contract: immutable blobs addressed by their SHA-256 digest, with three backends chosen by
// `ATELIER_OBJECT_STORE` (open.ts): this local directory (`$ATELIER_DATA_DIR/objects`, the embedded default), an
// S3-compatible bucket (s3.ts) and the NATS JetStream object store (nats.ts). Replicas must share one: the store
// names itself with an id kept inside it (`identity`), which every replica records in the database (replicas.ts).
// Every read is checked against the digest; errors name digests, never the server's paths or keys: they reach callers.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AtelierError } from '../errors';
import { deleteLocalObject, listLocalObjects, restoreGraves, touch } from './local-gc';
import { removeStalePartials } from './partials';
import { checkedDigest, objectNotFound, type SpooledObject, spool, verifying } from './verify';

export type ObjectStoreBackend = 'local' | 's3' | 'nats';

export interface ObjectInfo {
  digest: string;
  size: number;
}

/** An object as the collector sees it (collect.ts): `touchedAt` is when it was last written or re-put. */
export interface StoredObject extends ObjectInfo {
  touchedAt: Date;
}

export interface ObjectStore {
  readonly backend: ObjectStoreBackend;
  /**
   * Stores bytes and returns their digest (`sha256:<hex>`). Storing bytes already there writes nothing but refreshes
   * the object's last-touched time: a caller about to reference an object has just made it look recent, so the
   * collector (collect.ts) keeps it for its grace period whether or not the reference is written yet.
   */
  put(bytes: Uint8Array): Promise<string>;
  /** Stores a stream without holding it in memory (hashed on the way to a temporary file); returns its digest. Touches as `put`. */
  putStream(source: Readable | AsyncIterable<Uint8Array>): Promise<string>;
  /** Every stored object (never the store's own marker or temporary files), page by page: nothing is held whole. */
  list(): AsyncIterable<StoredObject>;
  /**
   * Deletes an object only if it is still untouched since `untouchedBefore` (a put that touched it in the meantime
   * wins); resolves with the bytes freed, or null when it was kept or is gone already.
   */
  delete(digest: string, untouchedBefore: Date): Promise<number | null>;
  /** Size of an object. Throws NOT_FOUND. */
  stat(digest: string): Promise<ObjectInfo>;
  exists(digest: string): Promise<boolean>;
  /**
   * Whether an object exists, for a caller about to reference it again (a cache hit copying an entry's outputs):
   * if so it is also made to look touched within the last TOUCH_FRESH_MS, so the collector keeps it while the
   * reference is written even if the row it is copied from is deleted meanwhile. Cheap when it is recent already.
   */
  touch(digest: string): Promise<boolean>;
  /** The object's bytes as a stream that fails with DIGEST_MISMATCH at its end if they do not hash to `digest`. Throws NOT_FOUND. */
  stream(digest: string): Promise<{ size: number; body: Readable }>;
  /** The whole object, verified. Throws NOT_FOUND or DIGEST_MISMATCH (a corrupt object is removed). */
  get(digest: string): Promise<Buffer>;
  /** Local path of an object, verified against its digest (remote backends keep a local copy). Throws NOT_FOUND or DIGEST_MISMATCH. */
  path(digest: string): Promise<string>;
  /** The id written into the store when it was first used: two stores with one id are one store. */
  identity(): Promise<string>;
  /**
   * Removes the temporary files writes interrupted by a crash left on local disk, those untouched for `olderThanMs`
   * (partials.ts); resolves with how many.
   */
  removePartials(olderThanMs: number): Promise<number>;
  /** A short description for logs and errors (no credentials). */
  describe(): string;
  close(): Promise<void>;
}

/** How recent `touch` leaves an object's last-touched time: far below the collector's grace (an hour at least). */
export const TOUCH_FRESH_MS = 10 * 60_000;

export const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** The marker that names a store: a file in the local directory, an object in a bucket. */
export const STORE_ID_NAME = 'atelier-store-id';

export function createFileObjectStore(root: string): ObjectStore {
  const verified = new Set<string>();
  const locate = (digest: string) => {
    const hex = checkedDigest(digest);
    return path.join(root, 'sha256', hex.slice(0, 2), hex);
  };
  const place = async (file: string, digest: string, write: (tmp: string) => Promise<void>) => {
    if (await touch(file)) return;
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    try {
      await write(tmp);
      await rename(tmp, file); // atomic: a crash leaves no partial object under its real name
    } catch (error) {
      await unlink(tmp).catch(() => {});
      throw error;
    }
    verified.add(digest);
  };
  const corrupt = async (file: string, digest: string, actual: string) => {
    await unlink(file).catch(() => {});
    verified.delete(digest);
    return new AtelierError('DIGEST_MISMATCH', `Object ${digest} is corrupt (its content hashes to ${actual}); it was removed, publish it again`);
  };
  const store: ObjectStore = {
    backend: 'local',
    async put(bytes) {
      const digest = sha256(bytes);
      await place(locate(digest), digest, (tmp) => writeFile(tmp, bytes));
      return digest;
    },
    async putStream(source) {
      await mkdir(root, { recursive: true });
      const spooled: SpooledObject = await spool(source, root);
      try {
        await place(locate(spooled.digest), spooled.digest, (tmp) => rename(spooled.file, tmp));
      } finally {
        await unlink(spooled.file).catch(() => {});
      }
      return spooled.digest;
    },
    async stat(digest) {
      const file = locate(digest);
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile()) throw objectNotFound(digest);
      return { digest, size: info.size };
    },
    async exists(digest) {
      return exists(locate(digest));
    },
    async touch(digest) {
      const file = locate(digest);
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile()) return false;
      if (Date.now() - info.mtimeMs >= TOUCH_FRESH_MS) await touch(file); // present either way
      return true;
    },
    async stream(digest) {
      const { size } = await store.stat(digest);
      const file = locate(digest);
      const raw = createReadStream(file);
      if (verified.has(digest)) return { size, body: raw };
      return {
        size,
        body: raw.pipe(
          verifying(digest, {
            ok: () => verified.add(digest),
            mismatch: (actual) => corrupt(file, digest, actual),
          }),
        ),
      };
    },
    async path(digest) {
      const file = locate(digest);
      if (!(await exists(file))) throw objectNotFound(digest); // never the store's path: callers show this
      if (!verified.has(digest)) {
        const actual = await hashFile(file);
        if (actual !== digest) throw await corrupt(file, digest, actual);
        verified.add(digest);
      }
      return file;
    },
    async get(digest) {
      return readFile(await store.path(digest));
    },
    async identity() {
      await mkdir(root, { recursive: true });
      const marker = path.join(root, STORE_ID_NAME);
      // `wx`: only the first writer creates it, so every process on this directory reads one id.
      await writeFile(marker, `${randomUUID()}\n`, { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      return `local:${(await readFile(marker, 'utf8')).trim()}`;
    },
    list: () => listLocalObjects(root),
    async delete(digest, untouchedBefore) {
      const freed = await deleteLocalObject(locate(digest), untouchedBefore);
      if (freed !== null) verified.delete(digest);
      return freed;
    },
    async removePartials(olderThanMs) {
      await restoreGraves(root); // a collector killed mid-delete left them: keep those objects
      return removeStalePartials(root, olderThanMs);
    },
    describe: () => `local directory ${root}`,
    async close() {},
  };
  return store;
}

async function exists(file: string) {
  return stat(file).then(
    (s) => s.isFile(),
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

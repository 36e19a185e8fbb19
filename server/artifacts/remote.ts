// The object store over a shared remote backend (S3, NATS JetStream): the backend only moves named blobs
// (blobs below), this file adds what the contract promises on top: content-addressed keys, uploads streamed from a
// spooled file, every read checked against its digest (a corrupt object is removed so it can be published again),
// the store's id marker, and a local verified copy for callers that need a path (the embedded executor host).
import { randomUUID } from 'node:crypto';
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { removeStalePartials } from './partials';
import { hashFile, type ObjectStore, STORE_ID_NAME, sha256, TOUCH_FRESH_MS } from './store';
import { checkedDigest, digestMismatch, objectNotFound, spool, verifying, writeVerified } from './verify';

/** What a remote backend provides: named blobs. Missing blobs are `null`, never an error. */
export interface Blobs {
  readonly backend: 's3' | 'nats';
  describe(): string;
  size(name: string): Promise<number | null>;
  read(name: string): Promise<Readable | null>;
  /** Uploads from a file (streamed) or from bytes in memory. */
  write(name: string, source: { file: string; size: number } | { bytes: Uint8Array }): Promise<void>;
  /** Size and last-touched time (last write or `touch`) of a blob; null when missing. */
  head(name: string): Promise<{ size: number; touchedAt: Date } | null>;
  /** Refreshes a blob's last-touched time without moving its bytes; false when missing or it could not (the caller writes it again). */
  touch(name: string): Promise<boolean>;
  /** Every blob whose name starts with `prefix`, page by page as the backend lists them. */
  list(prefix: string): AsyncIterable<{ name: string; size: number; touchedAt: Date }>;
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

/** `sha256/ab/<hex>`: the local directory's layout, so a bucket can be filled from a directory with plain tools. */
export const objectKey = (digest: string) => {
  const hex = checkedDigest(digest);
  return `sha256/${hex.slice(0, 2)}/${hex}`;
};

const OBJECT_KEY = /^sha256\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

/**
 * Backends stamp whole seconds (S3's Last-Modified) or a clock that is not ours: a stamp is read as the latest
 * instant it may stand for, so an object touched within the same second as a pass's cut-off counts as touched.
 */
const latest = (stamp: Date) => new Date((Math.floor(stamp.getTime() / 1000) + 1) * 1000);

export function createRemoteObjectStore(blobs: Blobs, options: { cacheDir: string }): ObjectStore {
  const verifiedCopies = new Set<string>();
  const downloads = new Map<string, Promise<string>>();
  const corrupt = async (digest: string, actual: string) => {
    await blobs.remove(objectKey(digest)).catch(() => {});
    return digestMismatch(digest, actual, true);
  };
  const has = async (digest: string) => (await blobs.size(objectKey(digest))) !== null;
  // A put of an object already stored refreshes it instead of uploading it again; if that fails it is uploaded.
  const refreshed = (digest: string) => blobs.touch(objectKey(digest)).catch(() => false);

  const store: ObjectStore = {
    backend: blobs.backend,
    async put(bytes) {
      const digest = sha256(bytes);
      if (!(await refreshed(digest))) await blobs.write(objectKey(digest), { bytes });
      return digest;
    },
    async putStream(source) {
      const spooled = await spool(source, path.join(options.cacheDir, 'incoming'));
      try {
        if (!(await refreshed(spooled.digest))) await blobs.write(objectKey(spooled.digest), { file: spooled.file, size: spooled.size });
      } finally {
        await unlink(spooled.file).catch(() => {});
      }
      return spooled.digest;
    },
    async stat(digest) {
      const size = await blobs.size(objectKey(digest));
      if (size === null) throw objectNotFound(digest);
      return { digest, size };
    },
    exists: has,
    async touch(digest) {
      const head = await blobs.head(objectKey(digest));
      if (!head) return false;
      if (Date.now() - head.touchedAt.getTime() >= TOUCH_FRESH_MS) await refreshed(digest);
      return true;
    },
    async stream(digest) {
      const key = objectKey(digest);
      const size = await blobs.size(key);
      const body = size === null ? null : await blobs.read(key);
      if (size === null || !body) throw objectNotFound(digest);
      return { size, body: body.pipe(verifying(digest, { mismatch: (actual) => corrupt(digest, actual) })) };
    },
    async get(digest) {
      const { body } = await store.stream(digest);
      return buffer(body);
    },
    path(digest) {
      const hex = checkedDigest(digest);
      const file = path.join(options.cacheDir, 'sha256', hex.slice(0, 2), hex);
      if (verifiedCopies.has(digest)) return Promise.resolve(file);
      let pending = downloads.get(digest); // tasks of one module often start together: one download
      if (!pending) {
        pending = (async () => {
          // A copy left by an earlier process is checked once: the disk may have changed under it.
          if (await isFile(file)) {
            if ((await hashFile(file)) === digest) return file;
            await unlink(file).catch(() => {});
          }
          const key = objectKey(digest);
          const body = await blobs.read(key);
          if (!body) throw objectNotFound(digest);
          await writeVerified(body, digest, file, (actual) => corrupt(digest, actual));
          return file;
        })()
          .then((f) => {
            verifiedCopies.add(digest);
            return f;
          })
          .finally(() => downloads.delete(digest));
        downloads.set(digest, pending);
      }
      return pending;
    },
    async identity() {
      const read = async () => {
        const body = await blobs.read(STORE_ID_NAME);
        return body ? (await buffer(body)).toString('utf8').trim() : null;
      };
      // Two replicas creating the marker at once are kept apart by replicas.ts's lock.
      let id = await read();
      if (!id) {
        await blobs.write(STORE_ID_NAME, { bytes: Buffer.from(`${randomUUID()}\n`) });
        id = await read();
      }
      if (!id) throw new Error(`could not write the store id marker into ${blobs.describe()}`);
      return `${blobs.backend}:${id}`;
    },
    async *list() {
      for await (const blob of blobs.list('sha256/')) {
        const match = OBJECT_KEY.exec(blob.name);
        if (match && match[2]!.startsWith(match[1]!)) yield { digest: `sha256:${match[2]}`, size: blob.size, touchedAt: latest(blob.touchedAt) };
      }
    },
    async delete(digest, untouchedBefore) {
      // No backend deletes on a condition about its time: the window between this check and the delete is a
      // round trip, against a grace period of hours (a put landing in it is the one race left; see collect.ts).
      const key = objectKey(digest);
      const head = await blobs.head(key);
      if (!head || latest(head.touchedAt) >= untouchedBefore) return null;
      await blobs.remove(key);
      if (verifiedCopies.delete(digest)) {
        const hex = checkedDigest(digest);
        await unlink(path.join(options.cacheDir, 'sha256', hex.slice(0, 2), hex)).catch(() => {});
      }
      return head.size;
    },
    // The bucket gets whole objects only (one put, or a multipart upload a bucket lifecycle rule aborts); the local
    // spool and cache are this process's.
    removePartials: (olderThanMs) => removeStalePartials(options.cacheDir, olderThanMs),
    describe: () => blobs.describe(),
    async close() {
      await blobs.close();
    },
  };
  return store;
}

async function isFile(file: string) {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

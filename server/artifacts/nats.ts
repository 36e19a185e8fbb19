// The NATS JetStream object store backend (`@nats-io/obj`), on the nats-server the deployment already runs for the
// bus: a bucket (`ATELIER_NATS_OBJECT_BUCKET`, default `atelier-objects`, file storage) on its own connection.
// Objects go in 128 KiB chunks, streamed both ways; NATS checks its own digest and remote.ts checks ours.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { type ObjectStore as NatsBucket, type ObjectInfo, Objm, StorageType } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { redactUrl } from '../../plugins/redact-url';
import { natsConnectError, natsConnectOptions } from '../bus/nats-connect';
import type { Blobs } from './remote';

export interface NatsStoreOptions {
  url: string;
  bucket: string;
  /** Replicas of the bucket's stream in a NATS cluster (1 on a single server). */
  replicas?: number;
}

const TOUCHED = 'atelier-touched';

function touchedAt(info: ObjectInfo): Date {
  const stamps = [info.mtime, info.metadata?.[TOUCHED]].map((s) => (s ? Date.parse(s) : Number.NaN)).filter((t) => Number.isFinite(t));
  return new Date(stamps.length ? Math.max(...stamps) : Date.now()); // no readable stamp: counted as fresh
}

export async function createNatsBlobs(options: NatsStoreOptions): Promise<Blobs> {
  const where = `NATS object store bucket ${options.bucket}`;
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ ...natsConnectOptions(options.url), name: 'atelier-objects', maxReconnectAttempts: -1 });
  } catch (error) {
    throw natsConnectError(error as Error, `${redactUrl(options.url)} (the object store's)`);
  }
  let bucket: NatsBucket;
  try {
    bucket = await new Objm(nc).create(options.bucket, { storage: StorageType.File, replicas: options.replicas ?? 1 });
  } catch (error) {
    await nc.close().catch(() => {});
    throw new Error(`cannot open ${where}: ${(error as Error).message}. Is JetStream enabled (nats-server -js)?`);
  }
  return {
    backend: 'nats',
    describe: () => where,
    async size(name) {
      const info = await bucket.info(name);
      return info && !info.deleted ? info.size : null;
    },
    async read(name) {
      const got = await bucket.get(name);
      if (!got) return null;
      const body = Readable.fromWeb(got.data as import('node:stream/web').ReadableStream<Uint8Array>);
      // NATS reports a broken transfer (a missing chunk, its own digest) on `error`: fail the stream with it.
      void got.error.then((error) => {
        if (error) body.destroy(error);
      });
      return body;
    },
    async write(name, source) {
      if ('bytes' in source) {
        await bucket.putBlob({ name }, source.bytes);
      } else {
        const web = Readable.toWeb(createReadStream(source.file)) as unknown as ReadableStream<Uint8Array>;
        await bucket.put({ name }, web);
      }
    },
    async head(name) {
      const info = await bucket.info(name);
      return info && !info.deleted ? { size: info.size, touchedAt: touchedAt(info) } : null;
    },
    async touch(name) {
      // The object store's mtime is set by a put only; a touch is a new meta entry (update) carrying its own time.
      try {
        const info = await bucket.info(name);
        if (!info || info.deleted) return false;
        await bucket.update(name, { metadata: { ...info.metadata, [TOUCHED]: new Date().toISOString() } });
        return true;
      } catch {
        return false;
      }
    },
    async *list(prefix) {
      // The bucket's latest meta entry per object, streamed from an ordered consumer that stops at the end of history
      // (`list()` would gather them all in an array first).
      const watch = await bucket.watch({ includeHistory: true, ignoreDeletes: true, historyOnly: true } as Parameters<NatsBucket['watch']>[0]);
      for await (const info of watch) {
        if (!info.deleted && info.name.startsWith(prefix)) yield { name: info.name, size: info.size, touchedAt: touchedAt(info) };
      }
    },
    async remove(name) {
      await bucket.delete(name);
    },
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}

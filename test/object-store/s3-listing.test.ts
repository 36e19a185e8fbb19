// The S3 store's listing across pages: ListObjectsV2 answers a page (1,000 keys at most), then a continuation token. The
// stand-in (s3rver) sealed its tokens with DES, which Node 20's OpenSSL 3 lacks, so its second page was a 500 and the
// listing that the object collector walks was never tried past one page; it is patched
// (server/db/patches/s3rver+3.7.1.patch). Here 25 objects in pages of 10 are listed whole, each key once, and the
// collector's pass over them sees every one.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { collectObjects } from '../../server/artifacts/collect';
import { type Blobs, createRemoteObjectStore, objectKey } from '../../server/artifacts/remote';
import { createS3Blobs } from '../../server/artifacts/s3';
import type { ObjectStore } from '../../server/artifacts/store';
import type { Database } from '../../server/db/client';
import { openTestDatabase } from '../harness/pglite-template';
import { type S3Server, startS3 } from '../harness/s3';

const COUNT = 25;
const PAGE = 10;
let s3: S3Server;
let blobs: Blobs;
let store: ObjectStore;
let cacheDir = '';
let database: { database: Database; close(): Promise<void> };

beforeAll(async () => {
  s3 = await startS3(['pages']);
  blobs = createS3Blobs({
    bucket: 'pages',
    prefix: 'atelier/',
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3.credentials,
    listPageSize: PAGE,
  });
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-s3-pages-'));
  store = createRemoteObjectStore(blobs, { cacheDir });
  database = await openTestDatabase('s3-pages');
}, 120_000);

afterAll(async () => {
  await store?.close();
  await database?.close();
  await s3?.stop();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

it('lists a bucket of three pages whole, each object once, and a collector pass sees them all', async () => {
  // Written as the store lays objects out (`sha256/ab/<hex>`), straight to the bucket: the listing is what is tried.
  const digests = Array.from({ length: COUNT }, (_, i) => `sha256:${createHash('sha256').update(`object ${i}`).digest('hex')}`);
  await Promise.all(digests.map((d) => blobs.write(objectKey(d), { bytes: Buffer.from('x') })));
  const names: string[] = [];
  for await (const blob of blobs.list('sha256/')) names.push(blob.name);
  expect(names).toHaveLength(COUNT);
  expect(new Set(names).size).toBe(COUNT);

  const listed: string[] = [];
  for await (const object of store.list()) listed.push(object.digest);
  expect(listed.sort()).toEqual([...digests].sort());

  // Within the grace: every object seen, none deleted.
  expect(await collectObjects({ db: database.database.db, store, graceMs: 3_600_000 })).toEqual({ seen: COUNT, unreferenced: 0, deleted: 0, bytesFreed: 0 });
}, 120_000);

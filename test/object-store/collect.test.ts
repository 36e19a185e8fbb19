// The object store's collector (server/artifacts/collect.ts) against each real backend: the local directory, the
// JetStream object store on a real nats-server, and S3 through s3rver. It deletes only objects untouched for the grace
// period that no row mentions in any form; an object re-put while a pass decides is kept; a pass killed midway leaves
// every referenced object in place, and the next pass finishes the work.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rename, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectAndRecord, collectObjects, lastCollection } from '../../server/artifacts/collect';
import { createNatsBlobs } from '../../server/artifacts/nats';
import { createRemoteObjectStore } from '../../server/artifacts/remote';
import { createS3Blobs } from '../../server/artifacts/s3';
import { createFileObjectStore, type ObjectStore } from '../../server/artifacts/store';
import type { Database } from '../../server/db/client';
import { startNats } from '../harness/nats';
import { openTestDatabase } from '../harness/pglite-template';
import { startS3 } from '../harness/s3';

let database: Database;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  const opened = await openTestDatabase('collect');
  database = opened.database;
  cleanups.push(() => opened.close());
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
}, 60_000);

const hexOf = (digest: string) => digest.slice('sha256:'.length);
const listed = async (store: ObjectStore) => {
  const digests: string[] = [];
  for await (const o of store.list()) digests.push(o.digest);
  return digests.sort();
};
/** Stamps are read rounded up to the second (S3's Last-Modified): let the clock pass what was just written. */
const clockPasses = async (ms = 1_100) => {
  const until = Date.now() + ms;
  while (Date.now() < until) await new Promise((r) => setTimeout(r, until - Date.now()));
};
/** A pass's clock as if it had passed what was just written (clockPasses), for a test with nothing written meanwhile. */
const passed = () => new Date(Date.now() + 1_100);

/** References written the ways the code writes them: jsonb (nested), a text[] column, plain text as an object key. */
async function reference(digests: { json: string; array: string; key: string }) {
  const db = database.db;
  await db.execute(sql`insert into audit_events (action, decision, subject, rule, details)
    values ('test.ref', 'allow', ${`objects/sha256/${hexOf(digests.key).slice(0, 2)}/${hexOf(digests.key)}`}, 'test',
            ${JSON.stringify({ outputs: { model: { files: [{ path: 'w.bin', digest: digests.json }] } } })}::jsonb)`);
  // A cache entry's object_digests (text[]); its foreign key is not what this test is about.
  await db.execute(sql`set session_replication_role = replica`);
  try {
    await db.execute(sql`insert into cache_entries (key, components, scope, module, module_version_id, outputs, object_digests, size_bytes,
                           source_task_id, source_run_id, duration_ms)
      values (${randomBytes(32).toString('hex')}, '{}'::jsonb, 'team:x', 'ns/m', gen_random_uuid(), '{}'::jsonb,
              ${sql`array[${digests.array.toUpperCase()}]::text[]`}, 1, gen_random_uuid(), gen_random_uuid(), 1)`);
  } finally {
    await db.execute(sql`set session_replication_role = origin`);
  }
}

interface Backend {
  name: string;
  open(): Promise<ObjectStore>;
}

const backends: Backend[] = [
  {
    name: 'local directory',
    async open() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-collect-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return createFileObjectStore(dir);
    },
  },
  {
    name: 'NATS object store',
    async open() {
      const nats = await startNats();
      cleanups.push(() => nats.stop());
      const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-collect-cache-'));
      cleanups.push(() => rm(cacheDir, { recursive: true, force: true }));
      const store = createRemoteObjectStore(await createNatsBlobs({ url: nats.url, bucket: 'collect' }), { cacheDir });
      cleanups.push(() => store.close());
      return store;
    },
  },
  {
    name: 'S3 (s3rver)',
    async open() {
      const s3 = await startS3(['collect']);
      cleanups.push(() => s3.stop());
      const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-collect-cache-'));
      cleanups.push(() => rm(cacheDir, { recursive: true, force: true }));
      const blobs = createS3Blobs({
        bucket: 'collect',
        prefix: 'atelier/',
        endpoint: s3.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: s3.credentials,
      });
      const store = createRemoteObjectStore(blobs, { cacheDir });
      cleanups.push(() => store.close());
      return store;
    },
  },
];

describe.each(backends)('the collector on the $name', (backend) => {
  let store: ObjectStore;
  beforeAll(async () => {
    store = await backend.open();
    await store.identity(); // the store's marker is no object: never listed, never collected
  }, 60_000);

  it('deletes unreferenced objects past the grace and keeps referenced and fresh ones', async () => {
    const bytes = Array.from({ length: 6 }, () => randomBytes(64));
    const [json, array, key, orphanA, orphanB, orphanC] = await Promise.all(bytes.map((b) => store.put(b)));
    await reference({ json: json!, array: array!, key: key! });

    // Within the grace everything stays, referenced or not.
    expect(await collectObjects({ db: database.db, store, graceMs: 3_600_000, now: passed })).toMatchObject({ deleted: 0 });
    expect(await listed(store)).toHaveLength(6);

    const pass = await collectAndRecord({ db: database.db, store, graceMs: 0, now: passed, log: () => {} });
    expect(pass).toEqual({ seen: 6, unreferenced: 3, deleted: 3, bytesFreed: 3 * 64 });
    expect(await listed(store)).toEqual([json, array, key].sort());
    for (const orphan of [orphanA!, orphanB!, orphanC!]) expect(await store.exists(orphan)).toBe(false);
    expect(Buffer.compare(await store.get(json!), bytes[0]!)).toBe(0);
    expect(await lastCollection(database.db)).not.toBeNull();
    // Deleted objects can be stored again.
    expect(await store.put(bytes[3]!)).toBe(orphanA);
    expect(await store.exists(orphanA!)).toBe(true);
  }, 60_000);

  it('keeps an object re-put while the pass decides on it (the write about to reference it wins)', async () => {
    const racingBytes = randomBytes(64);
    const racing = await store.put(racingBytes);
    const orphan = await store.put(randomBytes(64));
    await clockPasses();
    const beforeRace = (await listed(store)).length;

    // A put lands after the pass listed the object as untouched and found no reference, just before its delete.
    const racingStore: ObjectStore = {
      ...store,
      async delete(digest, untouchedBefore) {
        if (digest === racing) expect(await store.put(racingBytes)).toBe(racing);
        return store.delete(digest, untouchedBefore);
      },
    };
    const pass = await collectObjects({ db: database.db, store: racingStore, graceMs: 0 });
    expect(pass.seen).toBe(beforeRace);
    expect(await store.exists(racing)).toBe(true);
    expect(Buffer.compare(await store.get(racing), racingBytes)).toBe(0);
    expect(await store.exists(orphan)).toBe(false);
  }, 60_000);

  it('leaves every referenced object in place when a pass dies midway, and the next pass finishes', async () => {
    const kept = await Promise.all([0, 1, 2].map(() => store.put(randomBytes(32))));
    await reference({ json: kept[0]!, array: kept[1]!, key: kept[2]! });
    const orphans = await Promise.all([0, 1, 2, 3].map(() => store.put(randomBytes(32))));

    let deletes = 0;
    const dying: ObjectStore = {
      ...store,
      async delete(digest, untouchedBefore) {
        if (++deletes === 2) throw new Error('killed mid-pass');
        return store.delete(digest, untouchedBefore);
      },
    };
    await expect(collectObjects({ db: database.db, store: dying, graceMs: 0, now: passed })).rejects.toThrow('killed mid-pass');
    for (const digest of kept) expect(await store.exists(digest)).toBe(true);

    const pass = await collectObjects({ db: database.db, store, graceMs: 0, now: passed });
    expect(pass.deleted).toBeGreaterThanOrEqual(3); // with what the earlier tests left unreferenced
    for (const digest of kept) expect(await store.exists(digest)).toBe(true);
    for (const digest of orphans) expect(await store.exists(digest)).toBe(false);
  }, 60_000);
});

describe('the local directory’s delete', () => {
  it('links back an object a collector killed between its rename and its decision left as a grave', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-collect-grave-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = createFileObjectStore(dir);
    const digest = await store.put(Buffer.from('touched just before the rename'));
    const hex = hexOf(digest);
    const folder = path.join(dir, 'sha256', hex.slice(0, 2));
    await rename(path.join(folder, hex), path.join(folder, `${hex}.0b7c1f0e-1c52-4f47-9c1e-2d3f4a5b6c7d.gc`));
    expect(await store.exists(digest)).toBe(false);

    await store.removePartials(3_600_000); // what a restarted process runs first
    expect(await store.exists(digest)).toBe(true);
    expect(await readdir(folder)).toEqual([hex]);
  });

  it('keeps an object touched after the pass listed it, and a put after its rename writes it again', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-collect-touch-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = createFileObjectStore(dir);
    const bytes = Buffer.from('an object being referenced again');
    const digest = await store.put(bytes);
    const hex = hexOf(digest);
    const file = path.join(dir, 'sha256', hex.slice(0, 2), hex);
    const old = new Date(Date.now() - 48 * 3_600_000);
    await utimes(file, old, old);
    const cutOff = new Date(Date.now() - 24 * 3_600_000);

    await store.put(bytes); // refreshes its mtime
    expect(await store.delete(digest, cutOff)).toBeNull();
    expect(await store.exists(digest)).toBe(true);

    await utimes(file, old, old);
    // A cache hit about to copy the digest into a task's row touches it too (server/cache/store.ts).
    expect(await store.touch(digest)).toBe(true);
    expect(await store.delete(digest, cutOff)).toBeNull();

    await utimes(file, old, old);
    expect(await store.delete(digest, cutOff)).toBe(bytes.length);
    expect(await store.touch(digest)).toBe(false);
    expect(await store.put(bytes)).toBe(digest); // gone: written again, not merely touched
    expect(Buffer.compare(await store.get(digest), bytes)).toBe(0);
  });
});

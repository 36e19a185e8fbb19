// A database restored from a backup issues again the message ids of the history it went back over (an outbox row in
// the dump, a task attempt it numbers again). With NATS kept running, JetStream saw those ids within its dedupe window
// and dropped the restored database's publishes as repeats: the attempt was found missing later and ran only as the
// next attempt. Message ids carry the database's incarnation, drawn anew by the restore (server/events/incarnation.ts);
// the same row published twice by one database (a relay that died before deleting it) is still dropped as a repeat.
// The embedded database's copy too: a copy of its data directory, started beside it or put back in its place, draws
// one of its own. Real Postgres (pg_dump, pg_restore into a new database), real PGlite, real nats-server.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus, Delivery } from '../../plugins/bus/types';
import type { TaskMessage } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { type Database, openDatabase } from '../../server/db/client';
import { databaseIncarnation } from '../../server/events/incarnation';
import { createOutboxRelay } from '../../server/events/outbox-relay';
import { type NatsServer, startNats } from '../harness/nats';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const POOL = 'restored-pool';
const PREFIX = 'RESTOREIDS';
const task = { taskId: '00000000-0000-4000-8000-000000000001', runId: '00000000-0000-4000-8000-000000000002', attempt: 1, pool: POOL } as TaskMessage;
const KEY = `${task.taskId}:1`;

let pg: PostgresServer;
let nats: NatsServer;
let scratch: string;
let bus: Bus;
const databases: Database[] = [];

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres({ migrated: true }), startNats()]);
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-restore-ids-'));
  bus = await createJetStreamBus({ url: nats.url, streamPrefix: PREFIX });
}, 120_000);
afterAll(async () => {
  await bus?.close();
  for (const d of databases) await d.close();
  await Promise.all([pg?.stop(), nats?.stop()]);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const databaseUrl = (name: string) => pg.url.replace(/\/atelier$/, `/${name}`);
async function open(name: string) {
  const database = await openDatabase({ url: databaseUrl(name), dataDir: await mkdtemp(path.join(scratch, 'data-')) });
  databases.push(database);
  return database;
}
async function openEmbedded(dataDir: string) {
  const database = await openDatabase({ dataDir });
  databases.push(database);
  return database;
}
async function close(database: Database) {
  databases.splice(databases.indexOf(database), 1);
  await database.close();
}
/** The task's outbox row, as dispatch writes it (left by a relay that died before deleting it, the second time). */
const writeRow = (database: Database, message = task) =>
  database.db.execute(
    sql`insert into outbox (kind, pool, msg_id, payload) values ('task', ${POOL}, ${`${message.taskId}:1`}, ${JSON.stringify(message)}::json)`,
  );
/** One relay, as a control plane's start makes it, run until the outbox is empty. */
async function relayAll(database: Database) {
  const relay = createOutboxRelay({ db: database.db, bus, pollMs: 60_000 });
  relay.start();
  await relay.drain();
  await relay.stop();
}
const held = async (key = KEY) => (await bus.heldTaskMessages!(new Set([key]))).has(key);
async function messagesOnStream() {
  const nc = await connect({ servers: nats.url });
  try {
    return (await (await jetstreamManager(nc)).streams.info(`${PREFIX}_TASKS`)).state.messages;
  } finally {
    await nc.close();
  }
}

it('publishes the task message a restored database issues again, which the bus saw before the restore, and dedupes a republished row', async () => {
  const original = await open('atelier');
  await writeRow(original);
  // The backup, the task's message not yet published.
  const dump = path.join(scratch, 'atelier.dump');
  await run(`${PG_BIN}/pg_dump`, ['--format=custom', `--file=${dump}`, pg.url]);

  // After it: the message is published, and a host takes and acks it (its attempt ran in the history that is lost).
  await relayAll(original);
  expect(await held()).toBe(true);
  let acked = false;
  const consumer = await bus.consumeTasks(
    POOL,
    async (d: Delivery<TaskMessage>) => {
      await d.ack();
      acked = true;
    },
    { durable: `pool-${POOL}` },
  );
  for (const deadline = Date.now() + 30_000; !acked; await new Promise((r) => setTimeout(r, 20)))
    if (Date.now() > deadline) throw new Error('the task message was never delivered');
  await consumer.stop();
  expect(await held()).toBe(false);

  // The restore into a new database, NATS kept running (well within its 2-minute dedupe window): the restored outbox
  // row is published again, under the same outbox id, and the bus takes it.
  await run(`${PG_BIN}/psql`, [pg.url, '-c', 'create database restored']);
  await run(`${PG_BIN}/pg_restore`, ['--no-owner', `--dbname=${databaseUrl('restored')}`, dump]);
  const restored = await open('restored');
  await relayAll(restored);
  expect(await held()).toBe(true);
  expect(await messagesOnStream()).toBe(1);

  // The restored database's relay dies after publishing, before deleting the row; the next start publishes it again
  // under the same id, and the bus drops it.
  await writeRow(restored);
  await relayAll(restored);
  expect(await messagesOnStream()).toBe(1);
}, 180_000);

/** Whether the temporary directory's file system records when a directory was made (statx's birth time). */
const recordsBirthTimes = (() => {
  const probe = mkdtempSync(path.join(os.tmpdir(), 'atelier-birth-'));
  mkdirSync(path.join(probe, 'd'));
  const born = statSync(path.join(probe, 'd'), { bigint: true }).birthtimeNs > 0n;
  rmSync(probe, { recursive: true });
  return born;
})();

/** Another task than the first test's, and its message's key. */
const copiedTask = { ...task, taskId: '00000000-0000-4000-8000-000000000003' };
const COPIED_KEY = `${copiedTask.taskId}:1`;

/**
 * An embedded data directory as a control plane that ran before left it (its incarnation drawn at an earlier publish),
 * stopped with the task's message not yet published, and a copy of it taken then.
 */
async function copiedWhileStopped(name: string): Promise<{ dataDir: string; copy: string }> {
  const dataDir = path.join(scratch, name);
  await seedEmbeddedDatabase(dataDir);
  const stopped = await openEmbedded(dataDir);
  await databaseIncarnation(stopped.db);
  await writeRow(stopped, copiedTask);
  await close(stopped);
  const copy = path.join(scratch, `${name}-copy`);
  await cp(dataDir, copy, { recursive: true });
  return { dataDir, copy };
}

it('publishes the task message a copy of the embedded data directory issues again beside its original, and dedupes its own republished row', async () => {
  // The original stopped with the task's message not yet published; its data directory copied to a second path.
  const { dataDir: original, copy } = await copiedWhileStopped('embedded-beside');

  // Both started side by side on one NATS: each publishes the row under its own incarnation, and the bus takes both.
  const before = await messagesOnStream();
  const [first, second] = [await openEmbedded(original), await openEmbedded(copy)];
  expect(await databaseIncarnation(first.db)).not.toBe(await databaseIncarnation(second.db));
  await relayAll(first);
  expect(await held(COPIED_KEY)).toBe(true);
  await relayAll(second);
  expect(await messagesOnStream()).toBe(before + 2);

  // The copy restarted is the same database: its row published again after a crash keeps its id, and the bus drops it.
  await close(second);
  const again = await openEmbedded(copy);
  await writeRow(again, copiedTask);
  await relayAll(again);
  expect(await messagesOnStream()).toBe(before + 2);
}, 180_000);

it.skipIf(!recordsBirthTimes)(
  'publishes the task message a backup of the embedded data directory put back at its own path issues again',
  async () => {
    // The backup, taken while stopped with the task's message not yet published; after it the original publishes it.
    const { dataDir, copy: backup } = await copiedWhileStopped('embedded-in-place');
    const original = await openEmbedded(dataDir);
    const before = await messagesOnStream();
    await relayAll(original);
    await close(original);

    // The backup put back where the original was, within the bus's dedupe window: same path, a directory made anew.
    await rm(dataDir, { recursive: true });
    await cp(backup, dataDir, { recursive: true });
    const restored = await openEmbedded(dataDir);
    await relayAll(restored);
    expect(await messagesOnStream()).toBe(before + 2);
  },
  180_000,
);

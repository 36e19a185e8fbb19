// The outbox rows of direct publishes (issue 21): a task message is published straight after its commit and its row
// stays the fallback. A publish the bus refused leaves the row, which a relay pass publishes once; the rows the bus
// took are deleted by the next transaction that takes them (dispatch's enqueue, in the statement that writes its own
// rows) only if that transaction commits, or else by one delete of their own; and rows a dead process published but
// never deleted are published again by the next relay, for the bus to drop. Real Postgres, the in-memory bus.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createMemoryBus } from '../../plugins/bus/memory';
import type { Bus } from '../../plugins/bus/types';
import type { TaskMessage } from '../../plugins/protocol';
import { arrayOf } from '../../server/db/arrays';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import { createRunFeed } from '../../server/events/feed';
import { databaseIncarnation } from '../../server/events/incarnation';
import { createOutboxRelay, type OutboxRelay } from '../../server/events/outbox-relay';
import { type OrchestratorContext, transact } from '../../server/orchestrator/context';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let database: Database;
const relays: OutboxRelay[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-outbox-cleanup-')) });
}, 60_000);
afterEach(async () => {
  for (const relay of relays.splice(0)) await relay.stop();
  await database.db.execute(sql`delete from outbox`);
});
afterAll(async () => {
  await database?.close();
  await pg?.stop();
});

const message = (n: number): TaskMessage => ({ taskId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, attempt: 1 }) as TaskMessage;

/** An outbox row of one task message, as dispatch writes it, and what publishCommitted is handed for it. */
async function committedRow(n: number) {
  const payload = message(n);
  const msgId = `${payload.taskId}:1`;
  const [row] = await queryRows<{ id: string }>(
    database.db,
    sql`insert into outbox (kind, pool, msg_id, payload) values ('task', 'cleanup', ${msgId}, ${JSON.stringify(payload)}::json) returning id`,
  );
  return { id: Number(row!.id), pool: 'cleanup', msgId, payload };
}

const rowsLeft = async (ids: number[]) =>
  (await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from outbox where id = any(${arrayOf(ids, 'bigint')})`))[0]!.n;

async function until(check: () => Promise<boolean> | boolean, what: string) {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

/** A memory bus that counts the task messages it takes, refuses them while `refusing`, and hands its deliveries to `delivered`. */
async function countingBus() {
  const inner = createMemoryBus();
  const state = { refusing: false, refused: 0, published: 0, delivered: [] as string[] };
  const bus: Bus = {
    ...inner,
    async publishTask(pool, task, msgId) {
      if (state.refusing) {
        state.refused++;
        throw new Error('the bus is down');
      }
      state.published++;
      await inner.publishTask(pool, task, msgId);
    },
  };
  await inner.consumeTasks(
    'cleanup',
    async (d) => {
      state.delivered.push(d.data.taskId);
      await d.ack();
    },
    { durable: 'cleanup', maxInFlight: 100 },
  );
  return { bus, state };
}

function relayOn(bus: Bus, cleanupDelayMs = 60_000) {
  const relay = createOutboxRelay({ db: database.db, bus, pollMs: 60_000, cleanupDelayMs });
  relays.push(relay);
  return relay;
}

it('a direct publish the bus refused leaves its row, which a relay pass publishes once and deletes', async () => {
  const { bus, state } = await countingBus();
  const relay = relayOn(bus);
  const row = await committedRow(1);
  state.refusing = true;
  relay.publishCommitted([row]);
  await until(() => state.refused === 1, 'the publish to fail');
  await new Promise((r) => setTimeout(r, 20));
  expect(await rowsLeft([row.id])).toBe(1);
  expect(relay.takePublished()).toBeUndefined();
  state.refusing = false;
  await relay.drain();
  expect(await rowsLeft([row.id])).toBe(0);
  await until(() => state.delivered.length === 1, 'the delivery');
  expect(state.delivered).toEqual([row.payload.taskId]);
});

it('rows the bus took go to the next transaction that takes them, and are deleted only if it commits', async () => {
  const { bus, state } = await countingBus();
  const relay = relayOn(bus);
  const rows = [await committedRow(2), await committedRow(3)];
  relay.publishCommitted(rows);
  await until(() => state.published === 2, 'both publishes');
  await new Promise((r) => setTimeout(r, 0));
  // What transact uses of a context: the database, the feed, the clock (and the relay, as app.ts wires it).
  const partial: Partial<OrchestratorContext> = { db: database.db, feed: createRunFeed(), now: () => new Date(), takePublished: () => relay.takePublished() };
  const ctx = partial as OrchestratorContext;
  const deleting = (fail: boolean) =>
    transact(ctx, async ({ tx, step }) => {
      const taken = ctx.takePublished!();
      if (!taken) return [];
      step.deletedPublished.push(taken);
      await tx.execute(sql`delete from outbox where id = any(${arrayOf(taken.ids, 'bigint')})`);
      if (fail) throw new Error('rolled back');
      return taken.ids;
    });
  // Taken by a transaction that rolls back: the rows are still there, and handed to the next one.
  await expect(deleting(true)).rejects.toThrow('rolled back');
  expect(await rowsLeft(rows.map((r) => r.id))).toBe(2);
  expect((await deleting(false)).sort()).toEqual(rows.map((r) => r.id).sort());
  expect(await rowsLeft(rows.map((r) => r.id))).toBe(0);
  expect(relay.takePublished()).toBeUndefined();
  // Nothing was published twice.
  await relay.drain();
  expect(state.published).toBe(2);
});

it('rows no transaction takes are deleted by one statement of their own', async () => {
  const { bus, state } = await countingBus();
  const relay = relayOn(bus, 10);
  const rows = [await committedRow(4), await committedRow(5), await committedRow(6)];
  relay.publishCommitted(rows);
  await until(async () => (await rowsLeft(rows.map((r) => r.id))) === 0, 'the cleanup');
  expect(state.published).toBe(3);
  expect(relay.takePublished()).toBeUndefined();
});

it('rows a process published and died before deleting are published again by the next relay, and the bus drops the repeat', async () => {
  const { bus, state } = await countingBus();
  // It dies before deleting: here, its database refuses the delete (a relay that is never started makes no passes).
  const refusing = new Proxy(database.db, {
    get: (target, key) => (key === 'execute' ? () => Promise.reject(new Error('the process is gone')) : Reflect.get(target, key)),
  });
  const incarnation = () => databaseIncarnation(database.db); // read before it died
  const dying = createOutboxRelay({ db: refusing, bus, pollMs: 60_000, cleanupDelayMs: 10, onError: () => {}, incarnation });
  const row = await committedRow(7);
  dying.publishCommitted([row]);
  await until(() => state.delivered.length === 1, 'the first delivery');
  await new Promise((r) => setTimeout(r, 50));
  expect(await rowsLeft([row.id])).toBe(1);
  const next = relayOn(bus);
  await next.drain();
  expect(await rowsLeft([row.id])).toBe(0);
  expect(state.published).toBe(2);
  await new Promise((r) => setTimeout(r, 100));
  expect(state.delivered).toEqual([row.payload.taskId]);
});

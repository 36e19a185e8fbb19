// The embedded database (PGlite) has one connection: a statement sent on `db` while a transaction is open waits for
// that transaction, for ever when the transaction awaits it. The outbox relay's first pass after a crash did that (it
// read the database's incarnation through `db` inside its transaction) and a restarted control plane hung at start
// with nothing said (test/embedded/restart.test.ts). Now such a statement is refused at once, naming the fix
// (server/db/pglite-guard.ts), and the relay reads the incarnation before its transaction.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMemoryBus } from '../../plugins/bus/memory';
import type { TaskMessage } from '../../plugins/protocol';
import { type Database, queryRows } from '../../server/db/client';
import { createOutboxRelay } from '../../server/events/outbox-relay';
import { openTestDatabase } from '../harness/pglite-template';

let opened: Awaited<ReturnType<typeof openTestDatabase>>;
let database: Database;

beforeAll(async () => {
  opened = await openTestDatabase('nested-statements');
  database = opened.database;
}, 120_000);
afterAll(async () => opened?.close());

/** `pending`, or a rejection once `ms` have passed: a hang fails the test instead of holding it. */
async function within<T>(pending: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([pending, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

it('refuses a statement sent on the database from inside an open transaction, and the transaction goes on', async () => {
  const { db } = database;
  const outcome = await within(
    db.transaction(async (tx) => {
      const nested = await db.execute(sql`select 1`).then(
        () => 'ran',
        // drizzle wraps the driver's error: the refusal is its cause.
        (e: { cause?: { code?: string; message: string } }) => `${e.cause?.code}: ${e.cause?.message}`,
      );
      const own = await queryRows<{ n: number }>(tx, sql`select 2 as n`);
      return { nested, own: own[0]?.n };
    }),
    20_000,
    'a statement on db inside a transaction',
  );
  expect(outcome.nested).toMatch(/^NESTED_STATEMENT: .*Send it on the transaction \(`tx`\)/);
  expect(outcome.own).toBe(2);
  // A transaction begun inside another waits as well: refused too.
  await expect(
    within(
      db.transaction(async () => db.transaction(async () => 1)),
      20_000,
      'a transaction inside a transaction',
    ),
  ).rejects.toMatchObject({
    code: 'NESTED_STATEMENT',
  });
});

it('lets work a transaction started use the database once the transaction has ended', async () => {
  const { db } = database;
  let later: Promise<unknown> | undefined;
  await db.transaction(async (tx) => {
    await tx.execute(sql`select 1`);
    // Started inside, run after the commit: a timer, a publish after commit.
    later = new Promise((resolve) => setTimeout(resolve, 50)).then(() => queryRows<{ n: number }>(db, sql`select 3 as n`));
  });
  expect(await within(later!, 20_000, 'a statement after the transaction')).toEqual([{ n: 3 }]);
});

it('publishes the rows a crashed process left in the outbox on the relay’s first pass', async () => {
  const { db } = database;
  const payload = { taskId: '00000000-0000-4000-8000-000000000001', attempt: 1 } as TaskMessage;
  await db.execute(sql`insert into outbox (kind, pool, msg_id, payload) values ('task', 'nested', 'left:1', ${JSON.stringify(payload)}::json)`);
  const bus = createMemoryBus();
  const taken: string[] = [];
  const publishTask = bus.publishTask.bind(bus);
  bus.publishTask = async (pool, message, msgId) => {
    taken.push(msgId ?? '');
    return publishTask(pool, message, msgId);
  };
  const relay = createOutboxRelay({ db, bus, pollMs: 20 });
  relay.start();
  try {
    for (const deadline = Date.now() + 20_000; !taken.length && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    expect(taken).toEqual([expect.stringMatching(/^[0-9a-f]{12}\/left:1$/)]);
    expect((await queryRows<{ n: number }>(db, sql`select count(*)::int as n from outbox`))[0]?.n).toBe(0);
  } finally {
    await within(relay.stop(), 20_000, 'the relay to stop');
    await bus.close();
  }
});

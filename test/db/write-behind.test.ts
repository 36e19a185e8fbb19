// Writes sent behind a transaction's next statements (writeBehind, issue 21): the statements after one never overtake
// it, whichever drizzle path they take (so they see what it wrote), the transaction commits only once it has
// succeeded, and one that fails fails the transaction with its own error, not the "transaction is aborted" of the
// statements sent after it, so a deadlock's victim is still told apart and retried. Real Postgres.
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { integer, pgTable } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import { createRunFeed, type FeedEvent } from '../../server/events/feed';
import { type OrchestratorContext, transact, writeBehind } from '../../server/orchestrator/context';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let database: Database;
let ctx: OrchestratorContext;
const probe = pgTable('write_behind_probe', { id: integer('id').primaryKey() });

beforeAll(async () => {
  pg = await startPostgres();
  database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-write-behind-')) });
  await database.db.execute(sql`create table write_behind_probe (id int primary key)`);
  // What transact uses of a context: the database, the feed, the clock.
  const partial: Partial<OrchestratorContext> = { db: database.db, feed: createRunFeed(), now: () => new Date() };
  ctx = partial as OrchestratorContext;
}, 60_000);
afterAll(async () => {
  await database?.close();
  await pg?.stop();
});

const count = async () => (await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from write_behind_probe`))[0]!.n;

it('the statements after a write sent behind see what it wrote, whichever drizzle path they take', async () => {
  for (let i = 0; i < 20; i++) {
    const seen = await transact(ctx, async (tc) => {
      const { tx } = tc;
      writeBehind(tc, sql`insert into write_behind_probe (id) values (${4 * i + 1})`);
      const byBuilder = (
        await tx
          .select()
          .from(probe)
          .where(sql`id = ${4 * i + 1}`)
      ).length;
      writeBehind(tc, sql`insert into write_behind_probe (id) values (${4 * i + 2})`);
      const byRows = (await queryRows<{ id: number }>(tx, sql`select id from write_behind_probe where id = ${4 * i + 2}`)).length;
      writeBehind(tc, sql`insert into write_behind_probe (id) values (${4 * i + 3})`);
      const byUpdate = (
        await tx
          .update(probe)
          .set({ id: 4 * i + 4 })
          .where(sql`id = ${4 * i + 3}`)
          .returning()
      ).length;
      writeBehind(tc, sql`delete from write_behind_probe where id = ${4 * i + 4}`);
      const [gone] = await Promise.all([
        tx
          .select()
          .from(probe)
          .where(sql`id = ${4 * i + 4}`),
      ]);
      return [byBuilder, byRows, byUpdate, gone!.length === 0 ? 1 : 0];
    });
    expect(seen).toEqual([1, 1, 1, 1]);
  }
  expect(await count()).toBe(40);
});

it('hands a write its rows, and commits only once every write has succeeded', async () => {
  let handed: number[] = [];
  const result = await transact(ctx, async (tc) => {
    writeBehind<{ id: number }>(tc, sql`insert into write_behind_probe (id) values (1001), (1002) returning id`, (rows) => {
      handed = rows.map((r) => r.id);
    });
    return 'done';
  });
  expect(result).toBe('done');
  expect(handed.sort()).toEqual([1001, 1002]);
  expect(await count()).toBe(42);
});

it('a write that fails fails the transaction with its own error, and nothing of it is committed', async () => {
  const before = await count();
  const failed = transact(ctx, async (tc) => {
    writeBehind(tc, sql`insert into write_behind_probe (id) values (2001)`);
    writeBehind(tc, sql`insert into write_behind_probe (id) values (1)`); // taken: a unique violation
    // Sent behind the failed one: Postgres answers "current transaction is aborted" (25P02), and this throws that.
    await queryRows(tc.tx, sql`select count(*)::int as n from write_behind_probe`);
    return 'not reached';
  });
  const error = await failed.then(
    () => undefined,
    (e: unknown) => e as { code?: string; cause?: { code?: string } },
  );
  expect(error?.code ?? error?.cause?.code).toBe('23505');
  expect(await count()).toBe(before);
});

it('commits behind the feed append: its own events stored with the rest, and an append that fails keeps nothing', async () => {
  const before = await count();
  const run = (await queryRows<{ id: string }>(database.db, sql`select id from runs limit 1`))[0];
  // With a run (when the suite's database has one), its events are stored in the transaction the COMMIT went behind.
  const events = await transact(ctx, async (tc) => {
    writeBehind(tc, sql`insert into write_behind_probe (id) values (3001)`);
    if (run) tc.step.feed.push({ kind: 'run-status', runId: run.id, status: 'RUNNING', at: new Date().toISOString() } as never);
    return 'ok';
  });
  expect(events).toBe('ok');
  expect(await count()).toBe(before + 1);
  // An append Postgres refuses (not a run id): the transaction fails with its error, and its write is not kept.
  const refused = transact(ctx, async (tc) => {
    writeBehind(tc, sql`insert into write_behind_probe (id) values (3002)`);
    tc.step.feed.push({ kind: 'run-status', runId: 'not-a-uuid', status: 'RUNNING', at: new Date().toISOString() } as never);
  });
  const error = await refused.then(
    () => undefined,
    (e: unknown) => e as { code?: string; cause?: { code?: string } },
  );
  expect(error?.code ?? error?.cause?.code).toBe('22P02');
  // An append that fails before sending anything: the transaction rolls back instead of committing behind it.
  const failing = { ...ctx, feed: { ...ctx.feed, append: async () => Promise.reject(new Error('append failed in the process')) } };
  await expect(
    transact(failing as OrchestratorContext, async (tc) => {
      writeBehind(tc, sql`insert into write_behind_probe (id) values (3003)`);
    }),
  ).rejects.toThrow('append failed in the process');
  expect(await count()).toBe(before + 1);
});

it('sends the COMMIT only after work that writes once answered has sent its writes, which it keeps', async () => {
  const before = await count();
  await transact(ctx, async (tc) => {
    // As a run's end does: a lookup, then a write that depends on its answer.
    const work = queryRows<{ n: number }>(tc.tx, sql`select 1 as n`).then((rows) =>
      queryRows(tc.tx, sql`insert into write_behind_probe (id) values (${4000 + rows[0]!.n})`),
    );
    work.catch(() => undefined);
    tc.step.chained.push(work);
  });
  expect(await count()).toBe(before + 1);
});

it("holds a run's reads from the store, as its live events, until the registrations of its success are made", async () => {
  const runId = randomUUID();
  const [experiment] = await queryRows<{ id: string }>(database.db, sql`insert into experiments (name) values (${`hold-${runId}`}) returning id`);
  await database.db.execute(
    sql`insert into runs (id, experiment_id, status, trigger, domain) values (${runId}, ${experiment!.id}, 'RUNNING', 'EXTERNAL', 'adhoc')`,
  );
  let registered!: () => void;
  const registering = new Promise<void>((resolve) => (registered = resolve));
  const feed = createRunFeed({ db: database.db });
  const live: FeedEvent[] = [];
  feed.subscribe(runId, (e) => live.push(e));
  const registers = { ...ctx, feed, onRegistrations: () => registering } as OrchestratorContext;
  const done = transact(registers, async (tc) => {
    tc.step.feed.push({ kind: 'run-status', runId, status: 'SUCCEEDED', at: new Date().toISOString() } as never);
    tc.step.registrations.push({ taskId: randomUUID(), runId, attempt: 1, requests: [] });
  });
  // Committed, its registrations under way: the event is stored, and neither a subscriber catching up from the store
  // nor a live one gets it yet (the first did before: a watcher saw the success before the model versions existed).
  // vi.waitFor gives up after 1 s unless told: a loaded machine can take longer to commit (and below, to read).
  await vi.waitFor(async () => expect(await queryRows(database.db, sql`select seq from run_events where run_id = ${runId}`)).toHaveLength(1), {
    timeout: 20_000,
  });
  let read: FeedEvent[] | undefined;
  void feed.since(runId, 0).then((events) => (read = events));
  // A new subscriber's snapshot of the run (schema/types/run-events.ts) waits the same way.
  let snapshot: unknown;
  void feed.settled(runId, () => queryRows(database.db, sql`select status from runs where id = ${runId}`)).then((rows) => (snapshot = rows));
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(read).toBeUndefined();
  expect(snapshot).toBeUndefined();
  expect(live).toEqual([]);
  registered();
  await done;
  await vi.waitFor(() => expect(read?.map((e) => e.kind)).toEqual(['run-status']), { timeout: 20_000 });
  expect(live.map((e) => e.kind)).toEqual(['run-status']);
  expect(snapshot).toEqual([{ status: 'RUNNING' }]);
  // Released: the next read is not held.
  expect((await feed.since(runId, 0)).length).toBe(1);
});

// The recorder's early insert (server/orchestrator/event-insert.ts, issue 21): a batch's events go to Postgres with
// its lock and tasks' read, in the same round trip, and that insert stores only the rows of attempts that are current
// when it runs; what the recorder then decides for other attempts (a task that ended, an older attempt) is inserted
// after the read, as before, and a decision that differs from what the early insert stored fails the batch (it is
// recorded again from a fresh read) rather than leave rows it would not have stored. Real Postgres, the driver's own
// statements and Postgres' answers counted on the socket.
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { type Database, type Db, openDatabase, queryRows, type Tx } from '../../server/db/client';
import * as schema from '../../server/db/schema';
import { EARLY_MAX_EVENTS, insertIfCurrent, insertRest } from '../../server/orchestrator/event-insert';
import { eventRows } from '../../server/orchestrator/event-rows';
import { recordedTasks } from '../../server/orchestrator/recorded-tasks';
import { countingPool, type WireSeen } from '../harness/counting-pool';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let database: Database;
let counted: { db: Db; seen: WireSeen; end(): Promise<void> };
const runId = randomUUID();

beforeAll(async () => {
  pg = await startPostgres();
  database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-event-insert-')) });
  const { sql: client, seen } = countingPool(pg.url);
  counted = { db: drizzle(client, { schema }) as unknown as Db, seen, end: () => client.end({ timeout: 1 }) };
}, 60_000);
afterAll(async () => {
  await counted?.end();
  await database?.close();
  await pg?.stop();
});

/** A task of this test's run, in `status` on `attempt` (the run, module and workflow rows it points at are left out). */
async function task(status: string, attempt: number): Promise<string> {
  const id = randomUUID();
  await database.db.transaction(async (tx) => {
    await tx.execute(sql`set local session_replication_role = replica`);
    await tx.execute(sql`insert into tasks (id, run_id, node, kind, status, attempt, pool, executor, parameters, depends_on, trigger_rule, max_attempts, timeout_ms)
      values (${id}, ${runId}, ${`n-${id.slice(0, 8)}`}, 'module', ${status}, ${attempt}, 'p', 'noop', '{}', '{}', 'all_succeeded', 1, 60000)`);
  });
  return id;
}

const base = (taskId: string, attempt: number, seq: number) => ({ taskId, runId, attempt, seq, at: new Date().toISOString(), host: 'h' });
const log = (taskId: string, attempt: number, seq: number): ExecutorEvent => ({
  ...base(taskId, attempt, seq),
  kind: 'log',
  stream: 'stdout',
  lines: [`line ${seq}`],
});
const stored = async (taskId: string) =>
  (await queryRows<{ seq: string }>(database.db, sql`select seq from task_events where task_id = ${taskId} order by seq`)).map((r) => Number(r.seq));

/** As recordPart: the read and the early insert sent together, then what it keeps (here: every report of a known task). */
async function record(tx: Tx, events: ExecutorEvent[], keep: (e: ExecutorEvent, known: Set<string>) => boolean) {
  const [rows, early] = await Promise.all([recordedTasks(tx, [...new Set(events.map((e) => e.taskId))]), insertIfCurrent(tx, events)]);
  const known = new Set(rows.map((t) => t.id));
  const kept = events.filter((e) => keep(e, known));
  return { early, inserted: await insertRest(tx, early, kept, eventRows(kept).rows) };
}

it('sends the insert with the read, storing a current attempt at once and nothing more after the read', async () => {
  const running = await task('RUNNING', 1);
  const events = [log(running, 1, 1), log(running, 1, 2)];
  const { seen } = counted;
  // Once first: a statement built once is kept prepared on each connection, described on its first use there (a round
  // trip of its own, once per connection); what follows is every later use.
  const warm = await task('RUNNING', 1);
  await counted.db.transaction((tx) => record(tx, [log(warm, 1, 1)], (e, known) => known.has(e.taskId)));
  const { early, inserted } = await counted.db.transaction((tx) => record(tx, events, (e, known) => known.has(e.taskId)));
  expect(early.stored).toHaveLength(2);
  expect(inserted).toHaveLength(2);
  expect(await stored(running)).toEqual([1, 2]);
  // BEGIN, the read and the insert went out before any answer came back; nothing was sent between them and COMMIT.
  const sent = seen.sent.slice(-4);
  expect(sent.map((s) => s.statement.trim().split(/\s+/)[0]!.toLowerCase())).toEqual(['begin', 'select', 'insert', 'commit']);
  expect(sent[2]!.received).toBe(sent[0]!.received);
  // The same batch again (a redelivery) stores nothing, early or after.
  const again = await database.db.transaction((tx) => record(tx, events, (e, known) => known.has(e.taskId)));
  expect([again.early.stored, again.inserted]).toEqual([[], []]);
  expect(await stored(running)).toEqual([1, 2]);
});

it("stores an ended or older attempt's reports only once the recorder has decided on them", async () => {
  const ended = await task('SUCCEEDED', 1);
  const moved = await task('QUEUED', 2);
  const events = [log(ended, 1, 5), log(moved, 1, 6), log(moved, 2, 7)];
  const { early, inserted } = await database.db.transaction((tx) =>
    // The recorder's verdicts, in short: the late words of the ended attempt and the current attempt are kept, the older one's not.
    record(tx, events, (e) => !(e.taskId === moved && e.attempt === 1)),
  );
  expect([...early.current]).toEqual([`${moved}:2`]);
  expect(early.stored.map((r) => Number(r.seq))).toEqual([7]);
  expect(inserted.map((r) => Number(r.seq)).sort()).toEqual([5, 7]);
  expect(await stored(ended)).toEqual([5]);
  expect(await stored(moved)).toEqual([7]);
});

it('inserts a large batch once decided, as one statement after the read', async () => {
  const running = await task('RUNNING', 1);
  const events = Array.from({ length: EARLY_MAX_EVENTS + 1 }, (_, i) => log(running, 1, i + 1));
  const { early, inserted } = await database.db.transaction((tx) => record(tx, events, (e, known) => known.has(e.taskId)));
  expect(early.current.size).toBe(0);
  expect(inserted).toHaveLength(events.length);
  expect(await stored(running)).toHaveLength(events.length);
});

it('fails the batch, storing nothing, when what the recorder keeps of a current attempt is not what the early insert stored', async () => {
  const running = await task('RUNNING', 3);
  const events = [log(running, 3, 1), log(running, 3, 2)];
  await expect(database.db.transaction((tx) => record(tx, events, (e) => e.seq === 1))).rejects.toThrow(/recording it again/);
  expect(await stored(running)).toEqual([]);
});

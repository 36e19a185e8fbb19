// The stored live feed (server/events/run-event-log.ts): a transaction's events of a run go in rows of up to
// EVENTS_PER_ROW, and a reader gets them one by one, numbered, from any number on, a page at a time, with rows of
// one event written before the grouping read as they are. Embedded database (PGlite), migrated as the app does.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import type { FeedEventBody } from '../../server/events/feed';
import { appendRunEvents, EVENTS_PER_ROW, RUN_EVENTS_PAGE, runEventsAfter } from '../../server/events/run-event-log';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let database: Database;
const runId = '00000000-0000-4000-8000-000000000001';

beforeAll(async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-run-event-log-'));
  await seedEmbeddedDatabase(dataDir);
  database = await openDatabase({ dataDir });
  const [experiment] = await queryRows<{ id: string }>(database.db, sql`insert into experiments (name) values ('run-event-log') returning id`);
  await database.db.execute(
    sql`insert into runs (id, experiment_id, status, trigger, domain) values (${runId}, ${experiment!.id}, 'RUNNING', 'EXTERNAL', 'adhoc')`,
  );
}, 60_000);
afterAll(async () => {
  await database?.close();
});

const progress = (n: number): FeedEventBody => ({ kind: 'task-progress', runId, taskId: 't', node: 'n', fraction: n / 10_000, message: `${n}`, at: '' });

it('stores a transaction’s events a few rows to a run, and reads them back one by one from any number, a page at a time', async () => {
  // Written before events were grouped: a row per event, its number inside.
  await database.db.execute(sql`update runs set event_seq = 2 where id = ${runId}`);
  for (const seq of [1, 2])
    await database.db.execute(sql`insert into run_events (run_id, seq, event) values (${runId}, ${seq}, ${JSON.stringify({ ...progress(seq), seq })}::jsonb)`);
  const first = await database.db.transaction((tx) => appendRunEvents(tx, [progress(3), progress(4), progress(5)]));
  expect(first.map((e) => e.seq)).toEqual([3, 4, 5]);
  const wide = Array.from({ length: 2 * RUN_EVENTS_PAGE + 7 }, (_, i) => progress(6 + i));
  const second = await database.db.transaction((tx) => appendRunEvents(tx, wide));
  expect(second.at(-1)!.seq).toBe(5 + wide.length);

  const rows = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from run_events where run_id = ${runId}`);
  expect(rows[0]!.n).toBe(2 + 1 + Math.ceil(wide.length / EVENTS_PER_ROW));

  // Every event once, in order, numbered as when it was appended, whichever number a reader starts after.
  const last = 5 + wide.length;
  for (const after of [0, 1, 3, 4, 5, 6, 6 + EVENTS_PER_ROW, last - 1, last]) {
    const seen: number[] = [];
    for (let from = after; ; ) {
      const page = await runEventsAfter(database.db, runId, from);
      expect(page.length).toBeLessThanOrEqual(RUN_EVENTS_PAGE);
      for (const e of page) expect((e as { message: string }).message).toBe(`${e.seq}`);
      seen.push(...page.map((e) => e.seq));
      if (page.length < RUN_EVENTS_PAGE) break;
      from = page.at(-1)!.seq;
    }
    expect(seen).toEqual(Array.from({ length: last - after }, (_, i) => after + 1 + i));
  }
});

// The large values S1 writes (a row of run events, an outbox row's bundle of task messages) are compressed with lz4
// on Postgres, where pglz cost ~5 µs of Postgres' CPU a task (migration 0072, docs/performance.md "S1: Postgres' time
// a task (session 34)"); the embedded database, built without lz4, migrates all the same and keeps pglz. Both read
// back what was written.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import type { FeedEventBody } from '../../server/events/feed';
import { appendRunEvents, runEventsAfter } from '../../server/events/run-event-log';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const runId = '00000000-0000-4000-8000-000000000001';
// 64 events a row, each with a message long enough (and alike enough) that the row is compressed.
const events: FeedEventBody[] = Array.from({ length: 64 }, (_, i) => ({
  kind: 'task-progress',
  runId,
  taskId: `t${i}`,
  node: `n${i}`,
  fraction: i / 64,
  message: `step ${i} of a long and repetitive progress message `.repeat(4),
  at: '',
}));
// An outbox row as startRun's dispatch writes it: a bundle of task messages, ~40 KB.
const payload = JSON.stringify({ tasks: Array.from({ length: 100 }, (_, i) => ({ id: `task-${i}`, attempt: 1, module: 'bench/noop@1', parameters: {} })) });

async function writeAndRead(database: Database): Promise<{ event: string; outbox: string }> {
  const [experiment] = await queryRows<{ id: string }>(database.db, sql`insert into experiments (name) values ('toast') returning id`);
  await database.db.execute(
    sql`insert into runs (id, experiment_id, status, trigger, domain) values (${runId}, ${experiment!.id}, 'RUNNING', 'EXTERNAL', 'adhoc')`,
  );
  const appended = await database.db.transaction((tx) => appendRunEvents(tx, events));
  expect(await runEventsAfter(database.db, runId, 0)).toEqual(appended);
  await database.db.execute(sql`insert into outbox (kind, pool, msg_id, payload) values ('task', 'default', 'm1', ${payload}::json)`);
  const [back] = await queryRows<{ payload: unknown }>(database.db, sql`select payload from outbox where msg_id = 'm1'`);
  expect(back!.payload).toEqual(JSON.parse(payload));
  const [row] = await queryRows<{ event: string; outbox: string }>(
    database.db,
    sql`select (select pg_column_compression(event) from run_events where run_id = ${runId}) as event,
      (select pg_column_compression(payload) from outbox where msg_id = 'm1') as outbox`,
  );
  return row!;
}

describe('on Postgres', () => {
  let pg: PostgresServer;
  let database: Database;
  beforeAll(async () => {
    pg = await startPostgres({ migrated: true });
    database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-toast-')) });
  }, 60_000);
  afterAll(async () => {
    await database?.close();
    await pg?.stop();
  });

  it('compresses a row of run events and an outbox row with lz4, and reads them back', async () => {
    expect(await writeAndRead(database)).toEqual({ event: 'lz4', outbox: 'lz4' });
  });
});

describe('embedded (PGlite, no lz4)', () => {
  let database: Database;
  beforeAll(async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-toast-embedded-'));
    await seedEmbeddedDatabase(dataDir);
    database = await openDatabase({ dataDir });
  }, 60_000);
  afterAll(async () => {
    await database?.close();
  });

  it('migrates, keeps pglz, and reads them back', async () => {
    expect(await writeAndRead(database)).toEqual({ event: 'pglz', outbox: 'pglz' });
  });
});

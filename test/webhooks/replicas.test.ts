// Replicas share webhook deliveries (real Postgres): two delivery workers on one database, as two control-plane
// replicas run them, claim with SKIP LOCKED and lease what they post, so every delivery is posted exactly once; and
// finished deliveries past their retention are pruned.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../server/config';
import { type Database, openDatabase } from '../../server/db/client';
import { teams } from '../../server/db/tables/teams';
import { webhookDeliveries, webhooks } from '../../server/db/tables/webhooks';
import { pruneWebhookDeliveries } from '../../server/webhooks/deliveries';
import { emitWebhookEvent } from '../../server/webhooks/emit';
import { createWebhookWorker } from '../../server/webhooks/worker';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { type Receiver, startReceiver } from './receiver';

let pg: PostgresServer;
let database: Database;
let receiver: Receiver;

beforeAll(async () => {
  [pg, receiver] = await Promise.all([startPostgres(), startReceiver()]);
  database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-wh-')) });
});

afterAll(async () => {
  await database?.close();
  await pg?.stop();
  await receiver?.close();
});

it('posts each of 60 deliveries exactly once with two workers draining side by side', async () => {
  const { db } = database;
  const [team] = await db.insert(teams).values({ name: 'ml' }).returning();
  await db.insert(webhooks).values([
    { teamId: team!.id, url: `${receiver.url}/a`, events: ['run.*'], secret: 'whsec_a' },
    { teamId: team!.id, url: `${receiver.url}/b`, events: ['run.failed'], secret: 'whsec_b' },
  ]);
  for (let i = 0; i < 30; i++) await db.transaction((tx) => emitWebhookEvent(tx, { type: 'run.failed', team: team!.id, subject: `run:${i}`, payload: { i } }));
  const config = loadConfig({ ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*' }).webhooks;
  const replicas = [0, 1].map(() => createWebhookWorker({ db, config, log: (m) => console.log(m) }));
  await Promise.all(replicas.map((w) => w.drain()));
  expect(receiver.received).toHaveLength(60);
  const keys = receiver.received.map((r) => `${r.path} ${r.headers['atelier-webhook-id']}`);
  expect(new Set(keys).size).toBe(60);
  const rows = await db.select({ status: webhookDeliveries.status, attempts: webhookDeliveries.attempts }).from(webhookDeliveries);
  expect(rows.every((r) => r.status === 'SUCCEEDED' && r.attempts === 1)).toBe(true);
});

it('prunes finished deliveries past their retention, and keeps pending ones', async () => {
  const { db } = database;
  const [team] = await db.insert(teams).values({ name: 'old' }).returning();
  await db.insert(webhooks).values({ teamId: team!.id, url: `${receiver.url}/old`, events: ['*'], secret: 'whsec_o' });
  await emitWebhookEvent(db, { type: 'x.done', team: team!.id, subject: 'x:1', payload: {} });
  await emitWebhookEvent(db, { type: 'x.pending', team: team!.id, subject: 'x:2', payload: {} });
  await db.execute(sql`update webhook_deliveries set created_at = now() - interval '40 days',
    status = case when event_type = 'x.done' then 'SUCCEEDED' else 'PENDING' end, next_attempt_at = now() + interval '1 day'
    where event_type like 'x.%'`);
  expect(await pruneWebhookDeliveries(db, 30)).toBe(1);
  const left = await db.execute(sql`select event_type from webhook_deliveries where event_type like 'x.%'`);
  expect(JSON.stringify(left)).toContain('x.pending');
  expect(JSON.stringify(left)).not.toContain('x.done');
});

// Webhook delivery on real Postgres: 1,000 deliveries written by emitWebhookEvent (one transaction each, as a change
// would) and posted by the delivery worker (claimed with SKIP LOCKED, signed, logged) to a local receiver, against the
// floor of the same 1,000 signed POSTs sent straight with fetch, 20 at a time like one worker's batch.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../server/config';
import { openDatabase } from '../server/db/client';
import { teams } from '../server/db/tables/teams';
import { webhooks } from '../server/db/tables/webhooks';
import { emitWebhookEvent } from '../server/webhooks/emit';
import { webhookHeaders } from '../server/webhooks/signature';
import { createWebhookWorker } from '../server/webhooks/worker';
import { startReceiver } from '../test/webhooks/receiver';
import type { Row } from './lib';

const EVENTS = 1_000;
const BATCH = 20;

export async function webhooksBench(infra: { pgUrl: string }): Promise<Row[]> {
  const [receiver, database] = await Promise.all([
    startReceiver(),
    openDatabase({ url: infra.pgUrl, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-bench-wh-')) }),
  ]);
  try {
    const { db } = database;
    const [team] = await db
      .insert(teams)
      .values({ name: `bench-webhooks-${Date.now()}` })
      .returning();
    await db.insert(webhooks).values({ teamId: team!.id, url: `${receiver.url}/hook`, events: ['bench.*'], secret: 'whsec_bench' });
    const body = JSON.stringify({ id: 'x', type: 'bench.event', createdAt: new Date().toISOString(), data: { run: { id: 'r', status: 'SUCCEEDED' } } });

    // Floor: the POSTs alone.
    const floorStart = performance.now();
    for (let i = 0; i < EVENTS; i += BATCH)
      await Promise.all(
        Array.from({ length: BATCH }, (_, j) =>
          fetch(`${receiver.url}/floor`, { method: 'POST', body, headers: webhookHeaders(['whsec_bench'], `f${i + j}`, body) }).then((r) => r.arrayBuffer()),
        ),
      );
    const floorSeconds = (performance.now() - floorStart) / 1000;

    const emitStart = performance.now();
    for (let i = 0; i < EVENTS; i++)
      await db.transaction((tx) =>
        emitWebhookEvent(tx, { type: 'bench.event', team: team!.id, subject: `run:${i}`, payload: { run: { id: i, status: 'SUCCEEDED' } } }),
      );
    const emitMs = (performance.now() - emitStart) / EVENTS;

    const worker = createWebhookWorker({ db, config: loadConfig({ ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*' }).webhooks, log: console.log });
    const deliverStart = performance.now();
    await worker.drain();
    const deliverSeconds = (performance.now() - deliverStart) / 1000;
    const posted = receiver.at('/hook').length;
    if (posted !== EVENTS) throw new Error(`expected ${EVENTS} deliveries posted, the receiver got ${posted}`);
    return [
      {
        bench: 'webhooks',
        metric: `deliveries posted per second (${EVENTS.toLocaleString('en')}, one worker)`,
        value: EVENTS / deliverSeconds,
        unit: 'deliveries/s',
        floor: EVENTS / floorSeconds,
        ratio: deliverSeconds / floorSeconds,
        note: 'floor: the same signed POSTs sent straight, 20 at a time',
      },
      {
        bench: 'webhooks',
        metric: 'emitWebhookEvent in its own transaction: mean',
        value: emitMs,
        unit: 'ms',
        note: 'the cost a change pays for its webhooks',
      },
    ];
  } finally {
    await database.close();
    await receiver.close();
  }
}

// Registry events reach subscribers on every replica: two replicas' registry feeds over one database and one real
// nats-server, each wired as the app wires it (acrossReplicas over the bus's control topic). A change committed and
// kicked on one replica is passed on by the other's feed, once, in order; a replica that is not told reads nothing.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { type Database, openDatabase } from '../../server/db/client';
import { registeredModels, registryEvents } from '../../server/db/tables/registry';
import { acrossReplicas, createRegistryFeed, type LiveRegistryEvent, type RegistryFeed } from '../../server/registry/live';
import { type NatsServer, startNats } from '../harness/nats';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let nats: NatsServer;
let database: Database;
const buses: Bus[] = [];
const stops: (() => Promise<void>)[] = [];

async function replica(): Promise<RegistryFeed> {
  const bus = await createJetStreamBus({ url: nats.url, streamPrefix: 'REGREP' });
  buses.push(bus);
  const shared = acrossReplicas(
    createRegistryFeed(database.db),
    {
      publish: () => bus.publishControl('registry-changed', { at: new Date().toISOString() }),
      subscribe: (onKick) => bus.subscribeControl('registry-changed', () => onKick()),
    },
    (e) => console.error(e),
  );
  await shared.service.start();
  stops.push(() => shared.service.stop());
  return shared.feed;
}

beforeAll(async () => {
  nats = await startNats();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-regrep-'));
  await seedEmbeddedDatabase(dataDir);
  database = await openDatabase({ dataDir });
}, 60_000);

afterAll(async () => {
  for (const stop of stops) await stop();
  for (const bus of buses) await bus.close();
  await database?.close();
  await nats?.stop();
});

async function take(stream: AsyncIterableIterator<LiveRegistryEvent>, count: number, ms = 10_000): Promise<LiveRegistryEvent[]> {
  const got: LiveRegistryEvent[] = [];
  const deadline = setTimeout(() => void stream.return?.(), ms);
  for await (const event of stream) {
    got.push(event);
    if (got.length === count) break;
  }
  clearTimeout(deadline);
  return got;
}

it("passes on another replica's registry events, once and in order, when that replica kicks", async () => {
  const [a, b] = [await replica(), await replica()];
  const controller = new AbortController();
  const onB = b.stream(controller.signal);
  // The stream listens from the head as of its first read: start reading, then wait until it counts.
  const received = take(onB, 3);
  const deadline = Date.now() + 10_000;
  while (b.listening() === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 50)); // its head is read after it is counted

  const [model] = await database.db.insert(registeredModels).values({ namespace: 'ml', name: 'churn' }).returning();
  for (const type of ['version.registered', 'alias.moved', 'promotion.requested']) {
    await database.db.insert(registryEvents).values({ type, modelId: model!.id, payload: { type } });
    a.kick(); // what the writing replica does after each commit
  }
  const events = await received;
  controller.abort();
  expect(events.map((e) => [e.type, e.model])).toEqual([
    ['version.registered', 'ml/churn'],
    ['alias.moved', 'ml/churn'],
    ['promotion.requested', 'ml/churn'],
  ]);
  expect(new Set(events.map((e) => e.seq)).size).toBe(3);
});

// Change signals across replicas (server/events/live-changes.ts), each replica on its own connection to one real
// nats-server: a touch on one replica reaches the listeners of every replica once, a burst of touches is one batch,
// and a touch meant for this replica only (a heartbeat, which every replica hears itself) stays here.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { createLiveChanges, type LiveChanges } from '../../server/events/live-changes';
import { type NatsServer, startNats } from '../harness/nats';

let nats: NatsServer;
const buses: Bus[] = [];
const replicas: LiveChanges[] = [];

async function replica(): Promise<LiveChanges> {
  const bus = await createJetStreamBus({ url: nats.url, streamPrefix: 'LIVECH' });
  buses.push(bus);
  const changes = createLiveChanges(bus, (e) => console.error(e));
  await changes.service.start();
  replicas.push(changes);
  return changes;
}

beforeAll(async () => {
  nats = await startNats();
}, 60_000);

afterAll(async () => {
  for (const r of replicas) await r.service.stop();
  for (const bus of buses) await bus.close();
  await nats?.stop();
});

/** Batches a listener receives, and a wait for the batch that holds `key`. */
function listen(changes: LiveChanges, topic: 'deployments' | 'executors') {
  const batches: string[][] = [];
  const waiters: (() => void)[] = [];
  changes.listen(topic, (keys) => {
    batches.push([...keys].sort());
    for (const w of waiters.splice(0)) w();
  });
  const holding = (key: string) =>
    new Promise<void>((resolve) => {
      const look = () => (batches.some((b) => b.includes(key)) ? resolve() : waiters.push(look));
      look();
    });
  return { batches, holding };
}

it('passes a burst of touches on one replica to every replica as one batch, once', async () => {
  const [a, b] = [await replica(), await replica()];
  const onA = listen(a, 'deployments');
  const onB = listen(b, 'deployments');
  const onBExecutors = listen(b, 'executors');

  a.touchHere('executors', ['host:h1']); // heard by every replica itself: not sent
  a.touch('deployments', ['d1']);
  a.touch('deployments', ['d2', 'd1']);
  await Promise.all([onA.holding('d2'), onB.holding('d2')]);
  // a later touch on B: A gets it, and B's own listeners get it from B, not back from the bus as well
  b.touch('deployments', ['d3']);
  await Promise.all([onA.holding('d3'), onB.holding('d3')]);
  // A's next message reaches B after B's own for d3 came back to it (one subject, in the order the server took them)
  a.touch('executors', ['cluster:warm']);
  await onBExecutors.holding('cluster:warm');

  expect(onA.batches).toEqual([['d1', 'd2'], ['d3']]);
  expect(onB.batches).toEqual([['d1', 'd2'], ['d3']]);
  expect(onBExecutors.batches).toEqual([['cluster:warm']]);
});

it('sends a pass over more deployments than one message holds in several, none lost', async () => {
  const [a, b] = [await replica(), await replica()];
  const onB = listen(b, 'deployments');
  const keys = Array.from({ length: 30_000 }, () => crypto.randomUUID()); // ~1.1 MB of ids: past nats-server's 1 MiB
  a.touch('deployments', keys);
  await onB.holding(keys.at(-1)!);
  await onB.holding(keys[0]!);
  const got = new Set(onB.batches.flat());
  expect(keys.filter((k) => !got.has(k))).toEqual([]);
});

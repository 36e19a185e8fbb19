// The token signals with a bus of the test's: a change is told to the other replicas, one heard from them is forgotten
// here (never one's own), and a bus that never answers (NATS unreachable) does not keep the change's request waiting.
import { expect, it } from 'vitest';
import type { ControlTopics } from '../../plugins/protocol';
import { createTokenCache } from './token-cache';
import { tokenSignals } from './token-signals';

type Message = ControlTopics['tokens-changed'];

function fakeBus(publish: (message: Message) => Promise<void>) {
  let deliver: ((message: Message) => void) | undefined;
  return {
    bus: {
      kind: 'jetstream' as const,
      publishControl: (_topic: string, message: unknown) => publish(message as Message),
      subscribeControl: async (_topic: string, handler: (message: never) => void) => {
        deliver = handler as (message: Message) => void;
        return { stop: async () => undefined };
      },
    },
    deliver: (message: Message) => deliver?.(message),
  };
}

it('tells a change to the other replicas and forgets what they tell, not its own echo', async () => {
  const sent: Message[] = [];
  const { bus, deliver } = fakeBus(async (message) => void sent.push(message));
  const cache = createTokenCache({ ttlMs: 60_000 });
  const heard: string[][] = [];
  cache.onChange((change, local) => void (local || heard.push([...change.identities])));
  const signals = tokenSignals(cache, bus as never, () => undefined);
  await signals.start();
  await cache.changed({ identities: ['x'] });
  expect(sent.map((m) => m.identities)).toEqual([['x']]);
  deliver(sent[0]!); // its own message, back from the bus
  deliver({ identities: ['y'], origin: 'another replica' });
  expect(heard).toEqual([['y']]);
  await signals.stop();
});

it('answers the change without its message once the bus has not taken it for a while', async () => {
  const { bus } = fakeBus(() => new Promise<void>(() => undefined));
  const logged: string[] = [];
  const cache = createTokenCache({ ttlMs: 60_000 });
  const signals = tokenSignals(cache, bus as never, (m) => logged.push(m));
  await signals.start();
  await cache.changed({ identities: ['x'] }); // resolves: the test would time out otherwise
  await signals.stop();
});

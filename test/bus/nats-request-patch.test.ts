// Atelier's patch of the NATS client (server/db/patches/@nats-io+nats-core+*.patch, applied by `npm install`/`npm ci`):
// an answered request lets go of its subscription without making an error for its settled promise. Upstream's
// RequestOne called cancel() after every answer, which built a RequestError("cancelled") (a stack trace captured)
// that nothing ever saw: one per acknowledged JetStream publish and per claim request, on the host's hottest path.
import { createRequire } from 'node:module';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type NatsServer, startNats } from '../harness/nats';

// The module request.js reads RequestError from at each use: counting constructions there sees every one it makes.
const errorsModule = createRequire(createRequire(import.meta.url).resolve('@nats-io/nats-core/internal'))('./errors.js') as {
  RequestError: new (...args: unknown[]) => Error;
};

let nats: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url, noAsyncTraces: true });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

it('makes no error for a request that was answered', async () => {
  nc.subscribe('echo', {
    callback: (_err, msg) => {
      msg.respond(msg.data);
    },
  });
  await nc.flush();
  const original = errorsModule.RequestError;
  let made = 0;
  errorsModule.RequestError = class extends original {
    constructor(...args: unknown[]) {
      super(...args);
      made++;
    }
  };
  try {
    for (let i = 0; i < 50; i++) expect((await nc.request('echo', `${i}`, { timeout: 5000 })).string()).toBe(`${i}`);
  } finally {
    errorsModule.RequestError = original;
  }
  expect(made).toBe(0);
});

it('still fails a request nobody answers, with the error it had', async () => {
  await expect(nc.request('nobody.listens', 'x', { timeout: 200 })).rejects.toThrow();
});

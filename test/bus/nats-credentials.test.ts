// NATS that requires credentials: each process connects with the user and password (or token) written in its
// NATS_URL, so an executor host can have a NATS user of its own, and removing that user (a reload of nats-server)
// cuts the host off the bus: its claims go unanswered, so it runs no task, while the control plane's connection,
// another user's, carries on. Against a real nats-server with an authorization block.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptClaim, TaskMessage } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { natsConnectOptions } from '../../server/bus/nats-connect';
import { type NatsServer, startNats } from '../harness/nats';

const users = (withHost: boolean) =>
  `authorization { users = [ { user: "control", password: "cp-secret" }${withHost ? ', { user: "host-a", password: "h@st/secret" }' : ''} ] }`;

let nats: NatsServer;
const as = (userinfo: string) => `nats://${userinfo}@127.0.0.1:${nats.port}`;
const claim: AttemptClaim = { taskId: '00000000-0000-0000-0000-000000000001', runId: 'r', attempt: 1, host: 'host-a' };

beforeAll(async () => {
  nats = await startNats({ config: users(true) });
}, 30_000);
afterAll(() => nats?.stop());

describe('a NATS that requires credentials', () => {
  it('is joined with the credentials in NATS_URL, and refuses a process without them with what to write', async () => {
    const bus = await createJetStreamBus({ url: as('control:cp-secret'), streamPrefix: 'CRED1' });
    await bus.close();
    await expect(createJetStreamBus({ url: nats.url })).rejects.toThrow(/refused this process's credentials .*nats:\/\/USER:PASSWORD@host/);
    const wrong = createJetStreamBus({ url: as('control:not-it') });
    await expect(wrong).rejects.toThrow(/control:\*\*\*@/);
    await expect(wrong).rejects.not.toThrow(/not-it/);
  });

  it('cuts an executor host off once the operator removes its NATS user, and leaves the control plane connected', async () => {
    const control = await createJetStreamBus({ url: as('control:cp-secret'), streamPrefix: 'CRED2' });
    // A password with characters a URL must escape, as an operator writes it.
    const host = await createJetStreamBus({ url: as(`host-a:${encodeURIComponent('h@st/secret')}`), streamPrefix: 'CRED2' });
    try {
      await control.serveClaims(async () => ({ verdict: 'drop', reason: 'unknown' }));
      expect(await host.requestClaim(claim, 5_000)).toEqual({ verdict: 'drop', reason: 'unknown' });

      await nats.reconfigure(users(false));
      // Unanswered (or refused as closed): a host that gets no answer runs nothing.
      const answer = await host.requestClaim(claim, 1_000).catch(() => undefined);
      expect(answer).toBeUndefined();
      // Nor may it connect again with what it holds.
      await expect(createJetStreamBus({ url: as(`host-a:${encodeURIComponent('h@st/secret')}`), streamPrefix: 'CRED2' })).rejects.toThrow(/refused/);
      // The control plane's connection is whole, JetStream included, and its user may connect again.
      await control.publishTask('p', { taskId: '00000000-0000-0000-0000-000000000002' } as TaskMessage, 'after-reload');
      const other = await createJetStreamBus({ url: as('control:cp-secret'), streamPrefix: 'CRED2' });
      try {
        expect(await other.requestClaim({ ...claim, host: 'control' }, 5_000)).toEqual({ verdict: 'drop', reason: 'unknown' });
      } finally {
        await other.close();
      }
    } finally {
      await Promise.all([control.close(), host.close().catch(() => undefined)]);
    }
  });
});

describe('natsConnectOptions', () => {
  it('takes the first userinfo of NATS_URL as the credentials, and leaves it out of the servers', () => {
    expect(natsConnectOptions('nats://u:p%40ss@a:4222,nats://b:4222')).toEqual({ servers: ['nats://a:4222', 'nats://b:4222'], user: 'u', pass: 'p@ss' });
    expect(natsConnectOptions('tls://s3cr3t@a:4222')).toEqual({ servers: ['tls://a:4222'], token: 's3cr3t' });
    expect(natsConnectOptions('a:4222, nats://b:4222')).toEqual({ servers: ['a:4222', 'nats://b:4222'] });
  });
});

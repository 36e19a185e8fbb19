import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../plugins/bus/types';
import type { TaskMessage } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { type NatsServer, startNats } from '../harness/nats';
import { freePort } from '../harness/ports';
import { busContract } from './contract';

let nats: NatsServer | undefined;
let buses = 0;

beforeAll(async () => {
  nats = await startNats();
}, 30_000);

afterAll(async () => {
  await nats?.stop();
});

// One server for the file; a stream prefix per bus keeps each test's streams and consumers apart.
busContract('jetstream', () => createJetStreamBus({ url: nats!.url, name: 'contract-test', streamPrefix: `T${process.pid}_${++buses}` }));

describe('jetstream bus', () => {
  it('reuses and updates existing streams and consumers when several buses connect', async () => {
    const streamPrefix = `T${process.pid}_shared`;
    const first = await createJetStreamBus({ url: nats!.url, streamPrefix });
    const second = await createJetStreamBus({ url: nats!.url, streamPrefix, dedupeWindowMs: 60_000 });
    try {
      const seen: string[] = [];
      const handler = async (d: Delivery<TaskMessage>) => {
        seen.push(d.data.taskId);
        await d.ack();
      };
      await first.consumeTasks('p', handler, { durable: 'pool-p', ackWaitMs: 1_000 });
      await second.consumeTasks('p', handler, { durable: 'pool-p', ackWaitMs: 2_000 });
      // Both buses publish into the one stream, and its dedupe spans them.
      await first.publishTask('p', { taskId: 't1' } as TaskMessage, 't1:1');
      await second.publishTask('p', { taskId: 't1' } as TaskMessage, 't1:1');
      await second.publishTask('p', { taskId: 't2' } as TaskMessage, 't2:1');
      const deadline = Date.now() + 2_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen.sort()).toEqual(['t1', 't2']);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});

describe('jetstream bus, when NATS is not what it needs', () => {
  it('says where NATS could not be reached and what to start', async () => {
    const port = await freePort(); // nobody listens there
    await expect(createJetStreamBus({ url: `nats://127.0.0.1:${port}` })).rejects.toThrow(
      new RegExp(`^Cannot reach NATS at nats://127\\.0\\.0\\.1:${port} \\(.+\\)\\. Is nats-server running there, with JetStream on \\(nats-server -js\\)\\?$`),
    );
  });

  it('says a server without JetStream needs -js', async () => {
    const port = await freePort();
    const plain = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    try {
      for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 50))) {
        const open = await new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1', () => resolve(true)).on('error', () => resolve(false));
          s.on('connect', () => s.destroy());
        });
        if (open) break;
        if (Date.now() > deadline) throw new Error('nats-server (without -js) did not start');
      }
      await expect(createJetStreamBus({ url: `nats://127.0.0.1:${port}` })).rejects.toThrow(/has no JetStream .*start nats-server with -js/);
    } finally {
      plain.kill('SIGKILL');
    }
  });
});

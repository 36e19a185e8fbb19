// Task batches (protocol 3, issue 21) on a real nats-server: a batch is one JetStream message, and the host splits
// it and claims each attempt on its own. An attempt of a batch that ran elsewhere or was cancelled before its claim
// is dropped while the rest run; one whose claim says "later" is run on the message's redelivery, and the members
// that already ran are dropped then; a host with fewer slots than the batch has tasks runs them all, never more at
// once than its slots. The claims are answered here (as the control plane would) so each case is set up exactly.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import type { AttemptClaim, ClaimAnswer, ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import { defineExecutor, succeeded } from '../../plugins/sdk';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { type NatsServer, startNats } from '../harness/nats';

let nats: NatsServer;
let cpBus: Bus;
let hostBus: Bus;
let host: ExecutorHost;
const prefix = `batch${randomUUID().slice(0, 8)}`;

/** Every execution, by `taskId:attempt`; and the most attempts seen running at once. */
const executions = new Map<string, number>();
let running = 0;
let mostAtOnce = 0;
/** How the test answers each attempt's claims, by taskId (default: run). */
const answers = new Map<string, (claim: AttemptClaim) => ClaimAnswer>();
const claims: AttemptClaim[] = [];
const results: ExecutorEvent[] = [];

const counting = defineExecutor<null>({
  name: 'counting',
  workdir: false,
  async submit(task) {
    const key = `${task.taskId}:${task.attempt}`;
    executions.set(key, (executions.get(key) ?? 0) + 1);
    return null;
  },
  async wait(_handle, task) {
    running++;
    mostAtOnce = Math.max(mostAtOnce, running);
    await new Promise((r) => setTimeout(r, Number(task.parameters.ms ?? 0)));
    running--;
    return succeeded();
  },
  async cancel() {},
});

beforeAll(async () => {
  nats = await startNats();
  cpBus = await createJetStreamBus({ url: nats.url, name: 'batch-cp', streamPrefix: prefix });
  hostBus = await createJetStreamBus({ url: nats.url, name: 'batch-host', streamPrefix: prefix });
  await cpBus.serveClaims(async (claim) => {
    claims.push(claim);
    return answers.get(claim.taskId)?.(claim) ?? { verdict: 'run', protocol: 3 };
  });
  await cpBus.consumeEvents(
    async (deliveries) => {
      for (const d of deliveries) {
        if (d.data.kind === 'result') results.push(d.data);
        await d.ack();
      }
    },
    { durable: 'batch-recorder' },
  );
  host = createExecutorHost({
    bus: hostBus,
    registry: createExecutorRegistry([counting]),
    pools: ['batch'],
    hostName: 'batch-host',
    artifacts: { fetch: async () => '/nonexistent' },
    workRoot: path.join(os.tmpdir(), `atelier-${prefix}`),
    maxConcurrency: 2,
    warn: () => undefined,
  });
  await host.start();
}, 60_000);

afterAll(async () => {
  await host?.stop();
  await hostBus?.close();
  await cpBus?.close();
  await nats?.stop();
});

const message = (parameters: Record<string, unknown> = {}): TaskMessage => ({
  taskId: randomUUID(),
  runId: randomUUID(),
  attempt: 1,
  node: 'n',
  pool: 'batch',
  executor: 'counting',
  module: { ref: 'test/x@1', digest: 'sha256:0', entrypoint: 'x', runtime: 'none' },
  parameters,
  inputs: {},
  timeoutMs: 60_000,
  settings: {},
  enqueuedAt: new Date().toISOString(),
});

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  for (const deadline = Date.now() + timeoutMs; !(await ok()); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

/** Messages still on the pool's work queue (acked ones are removed) and every message the stream ever took. */
async function queue() {
  const nc = await connect({ servers: nats.url });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(`${prefix}_TASKS`);
    return { left: info.state.messages, published: info.state.last_seq };
  } finally {
    await nc.close();
  }
}

const ran = (m: TaskMessage) => executions.get(`${m.taskId}:${m.attempt}`) ?? 0;

it('runs a batch’s attempts, each claimed on its own: one that ran elsewhere and one cancelled before its claim are dropped', async () => {
  const before = await queue();
  const tasks = Array.from({ length: 6 }, () => message());
  const [elsewhere, cancelled] = tasks;
  answers.set(elsewhere!.taskId, () => ({ verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' }));
  answers.set(cancelled!.taskId, () => ({ verdict: 'drop', reason: 'finished', status: 'CANCELLED' }));
  await cpBus.publishTasks!('batch', tasks, `${tasks[0]!.taskId}:1+6`);
  const mine = tasks.slice(2);
  await until('the four current attempts to report', () => mine.every((m) => results.some((r) => r.taskId === m.taskId)));
  expect(tasks.map(ran)).toEqual([0, 0, 1, 1, 1, 1]);
  // Each attempt was claimed once, on its own, as a first delivery.
  for (const m of tasks) expect(claims.filter((c) => c.taskId === m.taskId).map((c) => c.redelivered ?? false)).toEqual([false]);
  // One message carried the six, and it is acked once every member was settled.
  await until('the batch to be acked', async () => (await queue()).left === 0);
  expect((await queue()).published - before.published).toBe(1);
  expect(results.filter((r) => r.taskId === elsewhere!.taskId || r.taskId === cancelled!.taskId)).toEqual([]);
});

it('runs a member whose claim said "later" on the message’s redelivery, and drops the members that already ran then', async () => {
  const tasks = Array.from({ length: 4 }, () => message());
  const late = tasks[3]!;
  let asked = 0;
  answers.set(late.taskId, () => (++asked === 1 ? { verdict: 'later', reason: 'recording' } : { verdict: 'run', protocol: 3 }));
  // What the control plane answers a redelivered claim of an attempt that has finished.
  for (const m of tasks.slice(0, 3)) answers.set(m.taskId, (c) => (c.redelivered ? { verdict: 'drop', reason: 'finished' } : { verdict: 'run', protocol: 3 }));
  await cpBus.publishTasks!('batch', tasks, `${tasks[0]!.taskId}:1+4`);
  await until('every attempt to report', () => tasks.every((m) => results.some((r) => r.taskId === m.taskId)), 30_000);
  expect(tasks.map(ran)).toEqual([1, 1, 1, 1]);
  // The redelivery came only after the three had ended (their claims then were answered "finished").
  for (const m of tasks.slice(0, 3)) expect(claims.filter((c) => c.taskId === m.taskId).map((c) => c.redelivered ?? false)).toEqual([false, true]);
  expect(claims.filter((c) => c.taskId === late.taskId).map((c) => c.redelivered ?? false)).toEqual([false, true]);
  await until('the batch to be acked', async () => (await queue()).left === 0);
}, 60_000);

it('runs a batch larger than the host’s slots whole, never more attempts at once than its slots', async () => {
  mostAtOnce = 0;
  const tasks = Array.from({ length: 12 }, () => message({ ms: 30 }));
  await cpBus.publishTasks!('batch', tasks, `${tasks[0]!.taskId}:1+12`);
  await until('every attempt to report', () => tasks.every((m) => results.some((r) => r.taskId === m.taskId)));
  expect(tasks.map(ran)).toEqual(tasks.map(() => 1));
  expect(mostAtOnce).toBe(2);
  await until('the batch to be acked', async () => (await queue()).left === 0);
});

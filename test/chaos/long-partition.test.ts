// A NATS partition longer than the task consumer's ack wait (3 s here, the least a host accepts). Between an executor
// host and nats-server: the task is redelivered to a second host while the first still runs it, the second's
// execution is recorded as the attempt's one result, and once the partition heals the first host's late reports are
// refused, its execution is told to stop and its process ends. Between the control plane and nats-server: claims go
// unanswered and events pile up unread, and once it heals every run in flight and started meanwhile finishes, each
// recorded once.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUS_NAMES } from '../../plugins/bus/defaults';
import { processAlive } from '../../plugins/process-group';
import { tasks } from '../../server/db/tables/runs';
import { taskEvents } from '../../server/db/tables/task-events';
import { EVENTS_DURABLE } from '../../server/events/recorder';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy';

const ACK_WAIT_SECONDS = '3';

let nats: NatsServer;
let dir: string;
const hosts: ExecutorProcess[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  nats = await startNats();
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-long-partition-'));
}, 60_000);
afterAll(async () => {
  for (const p of proxies) p.heal();
  await stopHosts();
  await Promise.all(proxies.map((p) => p.close()));
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

const stopHosts = () => Promise.all(hosts.splice(0).map((h) => h.stop('SIGKILL')));

async function proxyToNats(): Promise<TcpProxy> {
  const target = new URL(nats.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  proxies.push(proxy);
  return proxy;
}

async function startHost(t: TestApp, name: string, natsUrl: string): Promise<ExecutorProcess> {
  const host = await startExecutorProcess(
    { NATS_URL: natsUrl, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: path.join(dir, name) },
    ['local'],
    ['--concurrency', '2'],
    { ATELIER_TASK_ACK_WAIT_SECONDS: ACK_WAIT_SECONDS, ATELIER_MODULE_ISOLATION: 'none' },
  );
  hosts.push(host);
  return host;
}

const executions = (log: string): { pid: number }[] => {
  try {
    return readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
};

async function taskOf(t: TestApp, runId: string) {
  const [task] = await t.app.services.db.select().from(tasks).where(eq(tasks.runId, runId));
  return task!;
}
async function resultsOf(t: TestApp, taskId: string) {
  return t.app.services.db
    .select({ seq: taskEvents.seq, state: sql<string>`${taskEvents.payload}->'outcome'->>'state'` })
    .from(taskEvents)
    .where(and(eq(taskEvents.taskId, taskId), eq(taskEvents.kind, 'result')));
}
const runStatus = async (t: TestApp, id: string) => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id })).run?.status as string;
const startRun = async (t: TestApp, workflow: string) =>
  (await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow })).startRun.id as string;

describe('a host partitioned from NATS for longer than the ack wait', () => {
  let t: TestApp;
  beforeAll(async () => {
    // The host's silence is not what ends its attempt here (a minute's heartbeat timeout): the bus's redelivery is.
    t = await startTestApp({ NATS_URL: nats.url, ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '60' });
    await t.publishFixture('first-slow');
  }, 120_000);
  // Its hosts go with it: left on the bus, they took the next control plane's tasks (from the same pool) and fetched
  // their modules from this one, gone, which held the next test's runs for tens of seconds.
  afterAll(async () => {
    await stopHosts();
    await t?.stop();
  });

  it("records the other host's execution as the one result, refuses the first's late reports and stops it", async () => {
    const log = path.join(dir, 'host-partition.log');
    await t.createWorkflow({
      name: 'hp',
      tasks: [{ name: 'only', module: 'test/first-slow', executor: 'local', parameters: { log, firstMs: 60_000, ms: 500 } }],
    });
    const proxy = await proxyToNats();
    await startHost(t, 'partitioned', proxy.url(nats.url));
    const runId = await startRun(t, 'hp');
    const [first] = await until('the first execution to start', async () => executions(log).length === 1 && executions(log), 30_000);
    await until('its start to be recorded', async () => (await taskOf(t, runId)).status === 'RUNNING');
    proxy.blackHole();
    await startHost(t, 'other', nats.url);
    // The first host's heartbeats are held: past the ack wait the task is redelivered to the other host, which runs it.
    await until('the run to succeed', async () => (await runStatus(t, runId)) === 'SUCCEEDED', 30_000);
    const executed = executions(log);
    expect(executed).toHaveLength(2);
    const done = await taskOf(t, runId);
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempt: 1, outputs: { pid: executed[1]!.pid } });
    expect(await processAlive(first!.pid, null)).toBe(true);

    proxy.heal();
    // The first host's held reports arrive: refused, and its execution is told to stop.
    await until('the first execution to be stopped', async () => !(await processAlive(first!.pid, null)), 20_000);
    // Its own result (cancelled) is refused too: the one recorded result stays the other host's. Each host says in
    // its next announcement that it runs nothing (an attempt is let go once its result is published), and every event
    // published by then is recorded.
    const stoppedAt = Date.now();
    await until(
      'both hosts to announce that they run nothing',
      async () => {
        const { executorHosts } = await t.api.gql('{ executorHosts(liveOnly: true) { running lastSeenAt } }');
        const settled = executorHosts.filter((h: any) => h.running === 0 && Date.parse(h.lastSeenAt) > stoppedAt);
        return settled.length === 2;
      },
      20_000,
    );
    await until('every event published to be recorded', async () => {
      const b = await t.app.bus.eventBacklog(EVENTS_DURABLE);
      return b.recorded >= b.published;
    });
    const again = await startRun(t, 'hp');
    await until('a run started after to succeed', async () => (await runStatus(t, again)) === 'SUCCEEDED', 30_000);
    expect(await taskOf(t, runId)).toEqual(done);
    expect(await resultsOf(t, done.id)).toEqual([expect.objectContaining({ state: 'SUCCEEDED' })]);
  }, 90_000);
});

/** Every message on the events stream, as text. */
async function onBus(jsm: JetStreamManager): Promise<string[]> {
  const { state } = await jsm.streams.info(BUS_NAMES.eventsStream);
  const texts: string[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(BUS_NAMES.eventsStream, { seq }).catch(() => null);
    if (m) texts.push(m.string());
  }
  return texts;
}

describe('the control plane partitioned from NATS for longer than the ack waits', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let watcher: NatsConnection;
  beforeAll(async () => {
    // A bus of its own: nothing the last test left on the streams (its events, its task messages) is read here.
    await nats.stop();
    nats = await startNats();
    proxy = await proxyToNats();
    // The recorder's ack wait at 3 s (its default is 10 s): the partition outlasts it all the same, sooner.
    t = await startTestApp({ NATS_URL: proxy.url(nats.url), ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '60' }, { waits: { eventAckWaitMs: 3_000 } });
    await t.publishFixture('sleep');
    await t.createWorkflow({ name: 'cp', tasks: [{ name: 'nap', module: 'test/sleep', executor: 'local', parameters: { ms: 1500 } }] });
    await startHost(t, 'beside-cp', nats.url);
    watcher = await connect({ servers: nats.url, name: 'long-partition-watch' });
  }, 120_000);
  afterAll(async () => {
    proxy?.heal();
    await watcher?.close();
    await t?.stop();
  });

  it('answers requests meanwhile, and once it heals finishes the run in flight and the one started meanwhile, once each', async () => {
    const first = await startRun(t, 'cp');
    await until('the first run to be running', async () => (await runStatus(t, first)) === 'RUNNING', 30_000);
    proxy.blackHole();
    const second = await startRun(t, 'cp');
    expect(await runStatus(t, first)).toBe('RUNNING');
    // The first run's result is published meanwhile (the host reaches nats-server), and left unread past the
    // recorder's ack wait: the partition lasts that long after it, measured from the consumer's own setting.
    const jsm = await jetstreamManager(watcher);
    const firstTask = await taskOf(t, first);
    const published = await until(
      "the first run's result to be on the bus",
      async () => (await onBus(jsm)).some((m) => m.includes(firstTask.id) && m.includes('"kind":"result"')) && Date.now(),
      30_000,
    );
    const ackWaitMs = (await jsm.consumers.info(BUS_NAMES.eventsStream, EVENTS_DURABLE)).config.ack_wait! / 1e6;
    await until("the recorder's ack wait to pass", async () => Date.now() > published + ackWaitMs + 1_000, ackWaitMs + 5_000);
    proxy.heal();
    for (const id of [first, second]) await until(`run ${id} to succeed`, async () => (await runStatus(t, id)) === 'SUCCEEDED', 30_000);
    for (const id of [first, second]) {
      const task = await taskOf(t, id);
      expect(task).toMatchObject({ status: 'SUCCEEDED', attempt: 1 });
      expect(await resultsOf(t, task.id)).toEqual([expect.objectContaining({ state: 'SUCCEEDED' })]);
    }
    // Every loop goes on: a run started now finishes too.
    const after = await startRun(t, 'cp');
    await until('a run started after to succeed', async () => (await runStatus(t, after)) === 'SUCCEEDED', 30_000);
  }, 90_000);
});

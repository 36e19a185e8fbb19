// Chaos for the live feed (issue 15, item 3), on real Postgres and nats-server: whatever happens to NATS, every
// subscriber of a run ends with the state the database holds, over graphql-ws and SSE alike; a subscriber that went
// away resumes from the number of the last event it received and gets exactly what it missed; and an event the bus
// loses reaches its subscribers all the same.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { runEvents as runEventLog } from '../../server/db/tables/run-events';
import { runs, tasks } from '../../server/db/tables/runs';
import { fixturesDir, startTestApp, type TestApp } from '../harness/app';
import { apiClient, PUBLISH, RUN_EVENTS } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type LiveEvent, RUN_EVENTS_SEQ, stateOf, type Watcher, watchSse, watchWs, within } from '../harness/live';
import { type NatsServer, startNats } from '../harness/nats';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const token = 'atl_live-events-admin-token';
const terminal = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const KILLS = 2;

/** A fan-out: one root, `width` noop tasks after it (each sleeping `ms`), and a join after them all. */
const fanOut = (name: string, width: number, ms: number) => ({
  name,
  tasks: [
    { name: 'root', module: 'test/sleep', executor: 'noop', parameters: { ms: 0, sleepMs: 50 } },
    ...Array.from({ length: width }, (_, i) => ({
      name: `leaf${String(i).padStart(3, '0')}`,
      module: 'test/sleep',
      executor: 'noop',
      parameters: { ms: 0, sleepMs: ms },
      dependsOn: ['root'],
    })),
    {
      name: 'join',
      module: 'test/sleep',
      executor: 'noop',
      parameters: { ms: 0, sleepMs: 50 },
      dependsOn: Array.from({ length: width }, (_, i) => `leaf${String(i).padStart(3, '0')}`),
    },
  ],
});

describe('over nats-server SIGKILLs and restarts, with two control-plane replicas', () => {
  let pg: PostgresServer;
  let nats: NatsServer;
  const planes: ControlPlaneProcess[] = [];
  let executor: ExecutorProcess | undefined;

  beforeAll(async () => {
    [pg, nats] = await Promise.all([startPostgres({ migrated: true }), startNats()]);
  }, 120_000);
  afterAll(async () => {
    await executor?.stop('SIGKILL');
    for (const cp of planes) await cp.kill();
    await nats?.stop();
    await pg?.stop();
  });

  it('leaves every graphql-ws and SSE subscriber with the final status of every task and of the run that the database holds', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-live-chaos-'));
    const env = (port: number) => ({
      PORT: String(port),
      DATABASE_URL: pg.url,
      NATS_URL: nats.url,
      ATELIER_DATA_DIR: dataDir,
      ATELIER_ADMIN_TOKEN: token,
      ATELIER_TICK_MS: '200',
    });
    // Two replicas: executor events are recorded by either, and each one's subscribers see the other's over NATS.
    // Started together, as replicas are (migrations take a lock).
    const ports = [await freePort(), await freePort()];
    planes.push(...(await Promise.all(ports.map((port) => startControlPlaneProcess(env(port))))));
    const [a, b] = planes as [ControlPlaneProcess, ControlPlaneProcess];
    const api = apiClient(a.url, token);
    const published = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'sleep')));
    expect(published.errors).toBeUndefined();
    await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(fanOut('live-chaos', 80, 150)) });
    // A task whose ack died with nats-server is redelivered after the host's ack wait: 5 s here, not the default 30 s
    // the run otherwise sat out after each kill (the subscribers see the same events, sooner).
    executor = await startExecutorProcess(
      { NATS_URL: nats.url, ATELIER_URL: a.url, ATELIER_TOKEN: token, ATELIER_DATA_DIR: `${dataDir}/executor` },
      ['noop'],
      ['--concurrency', '16'],
      { ATELIER_TASK_ACK_WAIT_SECONDS: '5' },
    );
    const { startRun } = await api.gql(`mutation { startRun(workflow: "live-chaos") { id } }`);
    const runId = startRun.id as string;

    const watchers: [string, Watcher][] = [
      ['graphql-ws on replica b (1)', watchWs(b.url, token, RUN_EVENTS, { runId })],
      ['graphql-ws on replica b (2)', watchWs(b.url, token, RUN_EVENTS, { runId })],
      ['graphql-ws on replica a', watchWs(a.url, token, RUN_EVENTS, { runId })],
      ['SSE on replica a', watchSse(a.url, token, RUN_EVENTS, { runId })],
      ['SSE on replica b', watchSse(b.url, token, RUN_EVENTS, { runId })],
    ];
    // nats-server dies twice while the leaves run, each time coming back a second later on the same port and
    // storage; the replicas reconnect each in its own time, and whatever one publishes before the other is back is
    // lost to the other's subscribers on a fire-and-forget feed.
    const succeeded = async () =>
      (await api.gql(`query ($id: ID!) { run(id: $id) { tasks { status } } }`, { id: runId }).catch(() => ({ run: { tasks: [] } }))).run.tasks.filter(
        (task: { status: string }) => task.status === 'SUCCEEDED',
      ).length;
    for (let kill = 0; kill < KILLS; kill++) {
      // Each kill lands while tasks run: after a few more have finished since the last one.
      const before = await succeeded();
      for (let i = 0; i < 200 && (await succeeded()) < before + 5; i++) await sleep(100);
      await nats.restart('SIGKILL', 1000);
    }

    let status = '';
    for (let i = 0; i < 600 && !terminal.has(status); i++) {
      await sleep(250);
      status = (await api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: runId }).catch(() => ({ run: { status: '' } }))).run.status;
    }
    expect(status).toBe('SUCCEEDED');

    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ node: string; status: string }[]>`select node, status from tasks where run_id = ${runId}`;
      const [run] = await sql<{ status: string }[]>`select status from runs where id = ${runId}`;
      const database = { run: run!.status, tasks: Object.fromEntries(rows.map((r) => [r.node, r.status])) };
      let differing = 0;
      for (const [name, w] of watchers) {
        // A subscriber left waiting for a status that never comes is the failure: give it time, then compare.
        await within(w.done, 20_000);
        const seen = stateOf(w.events);
        const wrong = Object.keys(database.tasks).filter((node) => seen.tasks[node] !== database.tasks[node]);
        if (wrong.length || seen.run !== database.run) {
          differing++;
          console.error(`${name}: run ${seen.run} (database ${database.run}); ${wrong.length} tasks differ, e.g. ${wrong.slice(0, 5).join(', ')}`);
        }
        expect({ name, ...seen }).toEqual({ name, ...database });
        expect(w.completed()).toBe(true);
      }
      console.log(`live events over ${KILLS} nats-server SIGKILLs: ${watchers.length} subscribers, ${differing} with a state that differs from the database`);
    } finally {
      await sql.end();
      for (const [, w] of watchers) w.stop();
    }
  }, 300_000);
});

describe('resuming and filling gaps (one replica, NATS)', () => {
  let nats: NatsServer;
  let t: TestApp;

  beforeAll(async () => {
    nats = await startNats();
    t = await startTestApp({ NATS_URL: nats.url, ATELIER_EMBEDDED_EXECUTOR: 'true', ATELIER_POOLS: 'noop', ATELIER_FEED_CHECK_MS: '200' });
    await t.publishFixture('sleep');
    // A chain: each task starts when the one before it succeeded, so events keep coming for a few seconds.
    await t.createWorkflow({
      name: 'chain',
      tasks: Array.from({ length: 8 }, (_, i) => ({
        name: `c${i}`,
        module: 'test/sleep',
        executor: 'noop',
        parameters: { ms: 0, sleepMs: 300 },
        ...(i ? { dependsOn: [`c${i - 1}`] } : {}),
      })),
    });
    await t.createWorkflow(fanOut('gaps', 20, 200));
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
    await nats?.stop();
  });

  const stored = async (runId: string) => {
    const { db } = t.app.database;
    const [run] = await db.select().from(runs).where(eq(runs.id, runId));
    const rows = await db.select().from(tasks).where(eq(tasks.runId, runId));
    const log = await db.select().from(runEventLog).where(eq(runEventLog.runId, runId));
    return { run: run!, tasks: Object.fromEntries(rows.map((r) => [r.node, r.status])), seqs: log.map((r) => r.seq).sort((x, y) => x - y) };
  };
  const seqsOf = (events: LiveEvent[]) => events.map((e) => e.seq!);
  const waitForRun = async (runId: string) => {
    for (let i = 0; i < 400; i++) {
      const { run } = await stored(runId);
      if (terminal.has(run.status)) return run.status;
      await sleep(100);
    }
    throw new Error('the run did not finish');
  };
  const consecutive = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i + 1);

  for (const transport of ['graphql-ws', 'SSE'] as const) {
    it(`resumes over ${transport} from the last event received: exactly the events missed, none twice, then live to the end`, async () => {
      const runId = (await t.api.gql(`mutation { startRun(workflow: "chain") { id } }`)).startRun.id as string;
      // Watch until c1 has succeeded, then go away while the chain goes on.
      const stopAt = (e: LiveEvent, w: Watcher) => {
        if (e.__typename === 'TaskStatusEvent' && e.node === 'c1' && e.status === 'SUCCEEDED') w.stop();
      };
      const first =
        transport === 'SSE'
          ? watchSse(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId }, { onEvent: stopAt })
          : watchWs(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId }, stopAt);
      for (let i = 0; i < 1200 && !first.events.some((e) => e.node === 'c1' && e.status === 'SUCCEEDED'); i++) await sleep(50);
      const last = first.events.at(-1)!.seq!;
      // Events happen while nobody listens: waited for, not slept on (a loaded machine may take longer than any nap).
      for (let i = 0; i < 600 && (await stored(runId)).run.eventSeq <= last; i++) await sleep(50);
      expect((await stored(runId)).run.eventSeq).toBeGreaterThan(last);

      const again =
        transport === 'SSE'
          ? watchSse(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId }, { lastEventId: first.ids.at(-1) })
          : watchWs(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId, after: last });
      expect(await within(again.done, 60_000)).toBe(true);
      expect(await waitForRun(runId)).toBe('SUCCEEDED');
      const db = await stored(runId);
      // Exactly the stored events after `last`, in order, each once, ending with the run's terminal status.
      expect(seqsOf(again.events)).toEqual(consecutive(last, db.run.eventSeq));
      expect(again.events.at(-1)).toMatchObject({ __typename: 'RunStatusEvent', runStatus: 'SUCCEEDED' });
      if (transport === 'SSE') expect(again.ids).toEqual(seqsOf(again.events).map(String));
      // What the first watch showed, then the resumed one, is the database's state.
      expect(stateOf([...first.events, ...again.events])).toEqual({ run: db.run.status, tasks: db.tasks });
    }, 120_000);
  }

  it('refuses to resume after a number the run has not reached, and ends at once when resuming a finished run at its end', async () => {
    const runId = (await t.api.gql(`mutation { startRun(workflow: "chain") { id } }`)).startRun.id as string;
    await waitForRun(runId);
    const head = (await stored(runId)).run.eventSeq;
    const beyond = watchWs(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId, after: head + 5 });
    await expect(beyond.done).rejects.toThrow(`latest event is number ${head}`);
    const atEnd = watchWs(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId, after: head });
    expect(await within(atEnd.done, 30_000)).toBe(true);
    expect(atEnd.events).toEqual([]);
  }, 120_000);

  it('fills in events the bus lost (task results, the run’s end) for graphql-ws and SSE subscribers alike, each once', async () => {
    const publish = t.app.bus.publishFeed.bind(t.app.bus);
    // The bus loses every other task's success and the run's terminal status.
    let dropped = 0;
    t.app.bus.publishFeed = (events) => {
      const kept = (events as LiveEvent[]).filter((e) => {
        const e2 = e as unknown as { kind: string; status?: string; node?: string };
        const lose =
          (e2.kind === 'task-status' && e2.status === 'SUCCEEDED' && Number(e2.node?.slice(-1)) % 2 === 1) ||
          (e2.kind === 'run-status' && terminal.has(e2.status ?? ''));
        if (lose) dropped++;
        return !lose;
      });
      if (kept.length) publish(kept);
    };
    try {
      const runId = (await t.api.gql(`mutation { startRun(workflow: "gaps") { id } }`)).startRun.id as string;
      const watchers = [
        watchWs(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId }),
        watchSse(t.url, t.app.adminToken, RUN_EVENTS_SEQ, { runId }),
        watchWs(t.url, t.app.adminToken, RUN_EVENTS, { runId }), // selects no seq: filled all the same
      ];
      expect(await waitForRun(runId)).toBe('SUCCEEDED');
      const db = await stored(runId);
      for (const w of watchers) {
        expect(await within(w.done, 30_000)).toBe(true);
        expect(stateOf(w.events)).toEqual({ run: 'SUCCEEDED', tasks: db.tasks });
      }
      expect(dropped).toBeGreaterThan(10);
      // After the snapshot (which carries one number), the live events are the stored ones, in order, each once.
      for (const w of watchers.slice(0, 2)) {
        const snapshot = w.events.filter((e) => e.seq === w.events[0]!.seq).length;
        const live = seqsOf(w.events.slice(snapshot));
        expect(live).toEqual(consecutive(w.events[0]!.seq!, db.run.eventSeq));
      }
    } finally {
      t.app.bus.publishFeed = publish;
    }
  }, 120_000);
});

// Two executions of one attempt (a redelivery after a slow ack, two executor hosts) each leave files in
// ATELIER_ARTIFACTS_DIR, and each host logs its own into the task: the task's files afterwards are exactly those of the
// execution whose result was recorded, never a mix (the other's extra files, or its bytes under a shared name). Driven
// through the host's claim and attempt path (claimAttempt, runAttempt) with the real local executor and the real app;
// each host's results wait at a gate, so the losing execution's files are logged after the winner's and before the
// winner's result is recorded, the order that mixed them.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../executors/local';
import type { Bus, Delivery } from '../../plugins/bus/types';
import { Attempt, type AttemptRuntime, claimAttempt, runAttempt } from '../../plugins/host/attempt';
import type { ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import { packDirectory } from '../../server/artifacts/archive';
import { createHttpArtifactSource } from '../../server/cli/artifact-source';
import { tasks } from '../../server/db/tables/runs';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { type PostgresServer, startPostgres } from '../harness/postgres';

// The module writes its files (one shared name, one of its own), then waits for the test's word to exit 0.
const main = `
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
const { gate } = JSON.parse(process.env.ATELIER_PARAMS);
const who = process.env.EXECUTION_NAME;
mkdirSync(process.env.ATELIER_ARTIFACTS_DIR + '/model', { recursive: true });
writeFileSync(process.env.ATELIER_ARTIFACTS_DIR + '/model/shared.bin', 'written by ' + who);
writeFileSync(process.env.ATELIER_ARTIFACTS_DIR + '/model/' + who + '.bin', who);
writeFileSync(gate + '/' + who + '.ready', '');
while (!existsSync(gate + '/' + who + '.go')) await new Promise((r) => setTimeout(r, 20));
`;

/** The app's bus, except that this host's results wait until `release()`. */
function gatedResults(bus: Bus) {
  let release!: () => void;
  const open = new Promise<void>((resolve) => (release = resolve));
  const hasResult = (events: ExecutorEvent[]) => events.some((e) => e.kind === 'result');
  const gated = new Proxy(bus, {
    get(target, prop) {
      if (prop === 'publishEvent')
        return async (event: ExecutorEvent, msgId?: string) => {
          if (hasResult([event])) await open;
          return target.publishEvent(event, msgId);
        };
      if (prop === 'publishEvents' && target.publishEvents)
        return async (events: ExecutorEvent[], msgId: string, payload?: string) => {
          if (hasResult(events)) await open;
          return target.publishEvents!(events, msgId, payload);
        };
      const value = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { bus: gated, release };
}

/** A delivery the bus calls a first one, however often the message was delivered before. */
function firstDelivery(task: TaskMessage): Delivery<TaskMessage> {
  return { data: { ...task }, redeliveryCount: 0, ack: async () => undefined, nak: () => undefined, working: () => undefined, term: () => undefined };
}

describe.each([
  ['embedded PGlite', false],
  ['Postgres', true],
])('%s', (_name, postgres) => {
  let t: TestApp;
  let scratch: string;
  let pg: PostgresServer | undefined;

  beforeAll(async () => {
    pg = postgres ? await startPostgres() : undefined;
    t = await startTestApp(pg ? { DATABASE_URL: pg.url } : {});
    scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-second-execution-artifacts-'));
    const dir = path.join(scratch, 'module');
    await mkdir(dir);
    await writeFile(
      path.join(dir, 'atelier.module.yaml'),
      'namespace: test\nname: two-files\nentrypoint: main.mjs\nruntime: node\ncache:\n  enabled: false\nparameters:\n  type: object\n  properties:\n    gate: { type: string }\n',
    );
    await writeFile(path.join(dir, 'main.mjs'), main);
    const published = await t.api.upload(
      `mutation ($artifact: File!) { publishModuleVersion(artifact: $artifact, tags: ["latest"]) { version { ref } } }`,
      {},
      'artifact',
      await packDirectory(dir),
    );
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    // A pool no host of the app serves: only this test's two executions run the task.
    await t.createWorkflow({
      name: 'two-files',
      parameters: { gate: {} },
      tasks: [{ name: 'fit', module: 'test/two-files', executor: 'local', pool: 'nobody', parameters: { gate: '${params.gate}' } }],
    });
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
    await pg?.stop();
  });

  it("keeps exactly the files of the execution whose result was recorded, not the other execution's", async () => {
    const gate = await mkdtemp(path.join(scratch, 'gate-'));
    // The task's message as the bus carries it: each execution below gets a delivery of its own of it.
    let task: TaskMessage | undefined;
    const taken = await t.app.bus.consumeTasks(
      'nobody',
      async (delivery) => {
        task ??= delivery.data;
        await delivery.ack();
      },
      { durable: 'pool-nobody', ackWaitMs: 30_000, maxInFlight: 1 },
    );
    const { startRun } = await t.api.gql(`mutation ($p: JSON) { startRun(workflow: "two-files", parameters: $p) { id } }`, { p: { gate } });
    const { db } = t.app.services;
    const row = () =>
      db
        .select()
        .from(tasks)
        .where(eq(tasks.runId, startRun.id))
        .then((r) => r[0]!);
    await until("the task's message", async () => task);
    await taken.stop();
    const queued = await row();

    /** One executor host: its own local executor, work folder and gate on its results. */
    async function host(name: string) {
      const results = gatedResults(t.app.bus);
      const rt: AttemptRuntime = {
        bus: results.bus,
        registry: createExecutorRegistry([
          createLocalExecutor({ isolation: 'none', inheritEnv: { PATH: process.env.PATH!, EXECUTION_NAME: name }, warn: () => {} }),
        ]),
        host: name,
        artifacts: createHttpArtifactSource({ url: t.url, token: t.app.adminToken, cacheDir: path.join(scratch, `${name}-cache`) }),
        workRoot: path.join(scratch, `${name}-work`),
        heartbeatEveryMs: 200,
        logBatch: { bytes: 64_000, ms: 20 },
        maxLogBytes: 1_000_000,
        warn: () => undefined,
        running: () => true,
        verifyClaims: true,
        askClaim: (claim) => t.app.bus.requestClaim(claim, 5_000),
      };
      // Claims (asking again while the control plane holds it) and runs one execution. The claim asked again after the
      // module's download is held too while the other execution's events are still being recorded ('later'): the
      // attempt then ends before its module runs, and the bus would deliver the message again (this stand-in
      // delivery's nak does nothing), so it is delivered again here until the module has started.
      for (;;) {
        const delivery = firstDelivery(task!);
        if (await claimAttempt(rt, delivery)) {
          const attempt = new Attempt(`${queued.id}:1`, delivery.data);
          const done = runAttempt(rt, attempt, delivery, () => undefined);
          const started = await Promise.race([until(`the ${name} execution to start`, () => exists(`${name}.ready`), 30_000), done.then(() => false)]);
          if (started) return { done, releaseResult: results.release };
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const exists = (file: string) =>
      import('node:fs/promises').then((fs) =>
        fs.access(path.join(gate, file)).then(
          () => true,
          () => false,
        ),
      );
    const listed = async () => {
      const res = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`0/${queued.id}/artifacts/model`)}`, {
        headers: { authorization: `Bearer ${t.app.adminToken}` },
      });
      return (((await res.json()) as { files?: { path: string }[] }).files ?? []).map((f) => f.path).sort();
    };

    const first = await host('first');
    await until('the first execution to write its files', () => exists('first.ready'));
    const second = await host('second');
    await until('the second execution to write its files', () => exists('second.ready'));

    // The first exits and logs its files; its result waits. The second then logs its own, over the shared name.
    await writeFile(path.join(gate, 'first.go'), '');
    await until("the first execution's files to be logged", async () => (await listed()).includes('first.bin'));
    await writeFile(path.join(gate, 'second.go'), '');
    await until("the second execution's files to be logged", async () => (await listed()).includes('second.bin'));

    // The first execution's result is recorded first: the attempt is its.
    first.releaseResult();
    await first.done;
    await until('the success to be recorded', () => row().then((r) => r.status === 'SUCCEEDED'));
    second.releaseResult();
    await second.done;

    expect(await listed()).toEqual(['first.bin', 'shared.bin']);
    const shared = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/0/${queued.id}/artifacts/model/shared.bin`, {
      headers: { authorization: `Bearer ${t.app.adminToken}` },
    });
    expect(await shared.text()).toBe('written by first');
  }, 60_000);
});

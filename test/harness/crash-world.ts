// The world of the crash tests (exactly-once, the direct publish, task batches): real Postgres and nats-server, a
// control plane as its own process (so a test can kill it at a crash point and start it again on the same port,
// database and bus), the sleep fixture module published with the given workflows of no-op tasks, and an executor
// host in this process running the counting no-op executor, so every execution is seen.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import type { Bus } from '../../plugins/bus/types';
import { createExecutorHost, type ExecutorHost, type ExecutorHostOptions } from '../../plugins/host';
import { createExecutorRegistry } from '../../plugins/registry';
import { packDirectory } from '../../server/artifacts/archive';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { fixturesDir } from './app';
import { apiClient, PUBLISH } from './client';
import { type ControlPlaneProcess, startControlPlaneProcess } from './control-plane-process';
import { countingNoopExecutor } from './counting-executor';
import { type NatsServer, startNats } from './nats';
import { freePort } from './ports';
import { type PostgresServer, startPostgres } from './postgres';

export interface CrashWorldOptions {
  /** Names the token, data directory and host. */
  name: string;
  /** Workflows to create: name → its tasks (module test/sleep, executor noop, no retries unless said). */
  workflows: Record<string, Record<string, unknown>[]>;
  /** More control-plane settings. */
  env?: Record<string, string>;
  /** Commits that survive the SIGKILL of a control plane, as in any real deployment (startPostgres's durableCommits). */
  durableCommits?: boolean;
  /** The host's settings beyond the defaults here. */
  host?: Partial<ExecutorHostOptions>;
}

export interface CrashWorld {
  env: Record<string, string>;
  token: string;
  sql: postgres.Sql;
  /** The first control plane; tests that kill it keep the current one themselves. */
  cp: ControlPlaneProcess;
  host: ExecutorHost;
  /** The host's bus connection (a test may publish on it as a host would). */
  bus: Bus;
  natsUrl: string;
  /** Every execution of the task by the counting executor, all attempts, in the order they started. */
  executionsOf: ReturnType<typeof countingNoopExecutor>['executionsOf'];
  /** Stops the host, then `controlPlane` (the current one, if the test replaced the first), then the servers. */
  stop(controlPlane?: ControlPlaneProcess): Promise<void>;
}

export async function startCrashWorld(options: CrashWorldOptions): Promise<CrashWorld> {
  let pg: PostgresServer | undefined;
  let nats: NatsServer | undefined;
  let sql: postgres.Sql | undefined;
  let hostBus: Bus | undefined;
  let host: ExecutorHost | undefined;
  let cp: ControlPlaneProcess | undefined;
  const stop = async (controlPlane?: ControlPlaneProcess) => {
    await host?.stop();
    await hostBus?.close();
    await controlPlane?.kill();
    await sql?.end();
    await nats?.stop();
    await pg?.stop();
  };
  try {
    [pg, nats] = await Promise.all([startPostgres({ durableCommits: options.durableCommits, migrated: true }), startNats()]);
    sql = postgres(pg.url, { max: 2, onnotice: () => {} });
    const dataDir = await mkdtemp(path.join(os.tmpdir(), `atelier-${options.name}-`));
    const token = `atl_${options.name}-admin-token`;
    const env = {
      PORT: String(await freePort()),
      DATABASE_URL: pg.url,
      NATS_URL: nats.url,
      ATELIER_DATA_DIR: dataDir,
      ATELIER_ADMIN_TOKEN: token,
      ATELIER_TICK_MS: '200',
      ...options.env,
    };
    cp = await startControlPlaneProcess(env);
    const api = apiClient(cp.url, token);
    const published = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'sleep')));
    if (published.errors) throw new Error(`publishing test/sleep failed: ${JSON.stringify(published.errors)}`);
    for (const [name, tasks] of Object.entries(options.workflows)) {
      const spec = { name, tasks: tasks.map((t) => ({ module: 'test/sleep', executor: 'noop', retries: 0, ...t })) };
      await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(spec) });
    }
    const { executor, executionsOf } = countingNoopExecutor();
    hostBus = await createJetStreamBus({ url: nats.url, name: `${options.name}-host` });
    host = createExecutorHost({
      bus: hostBus,
      registry: createExecutorRegistry([executor]),
      pools: ['noop'],
      hostName: `${options.name}-host`,
      artifacts: { fetch: async () => '/nonexistent' },
      workRoot: path.join(dataDir, 'work'),
      warn: () => undefined,
      ...options.host,
    });
    await host.start();
    return { env, token, sql, cp, host, bus: hostBus, natsUrl: nats.url, executionsOf, stop };
  } catch (error) {
    await stop(cp);
    throw error;
  }
}

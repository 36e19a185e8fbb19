// End to end on real infrastructure: PostgreSQL 15 and nats-server (JetStream) started by the harness on free
// ports, and the executor host in its own process, as `npx atelier executor --pool local`.
import { startTestApp, type TestApp } from '../harness/app';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { endToEndSuite } from './suite';

let pg: PostgresServer | undefined;
let nats: NatsServer | undefined;
let executor: ExecutorProcess | undefined;

endToEndSuite(
  'Postgres + NATS JetStream + executor process',
  async (): Promise<TestApp> => {
    [pg, nats] = await Promise.all([startPostgres({ migrated: true }), startNats()]);
    const t = await startTestApp({ DATABASE_URL: pg.url, NATS_URL: nats.url });
    executor = await startExecutorProcess({
      NATS_URL: nats.url,
      ATELIER_URL: t.url,
      ATELIER_TOKEN: t.app.adminToken,
      ATELIER_DATA_DIR: `${t.dataDir}/executor`,
    });
    return t;
  },
  async () => {
    await executor?.stop();
    await nats?.stop();
    await pg?.stop();
  },
);

// Starts the real control plane in-process on a free port, for end-to-end tests, with helpers to publish the
// fixture modules and create workflows through the API.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type App, type BuildOptions, buildApp } from '../../server/app';
import { packDirectory } from '../../server/artifacts/archive';
import { loadConfig } from '../../server/config';
import { type ApiClient, apiClient, PUBLISH } from './client';
import { seedEmbeddedDatabase } from './pglite-template';
import { appDatabase } from './shared-postgres';

export const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export interface TestApp {
  app: App;
  url: string;
  api: ApiClient;
  dataDir: string;
  /** The app's own Postgres database (`postgres`), or undefined on the embedded database. */
  databaseUrl: string | undefined;
  /** What opens this app's database again, for a test that starts another control plane on it: its data directory, and its DATABASE_URL on Postgres. */
  databaseEnv: Record<string, string>;
  publishFixture(name: string, tags?: string[]): Promise<{ version: string; digest: string }>;
  createWorkflow(spec: string | object): Promise<any>;
  /** Creates a user (role member unless given) and returns an API client with its token. */
  user(name: string, role?: 'admin' | 'member' | 'viewer'): Promise<ApiClient & { token: string }>;
  /** Creates a team with these members (role member) owning these namespaces. */
  team(name: string, members: string[], namespaces?: string[]): Promise<void>;
  stop(): Promise<void>;
}

export interface TestAppOptions extends BuildOptions {
  /**
   * Where the app's database lives. `postgres` (the default): a database of its own on this worker's shared Postgres
   * cluster (shared-postgres.ts). `embedded`: PGlite in its data directory, as `npm start` runs; for what tests the
   * embedded database itself. A test that gives DATABASE_URL or ATELIER_DATA_DIR gets what it gave (the data
   * directory's embedded database, unless a DATABASE_URL is given too). `ATELIER_TEST_DATABASE=embedded npm test`
   * runs every test app on the embedded database.
   */
  database?: 'postgres' | 'embedded';
}

export async function startTestApp(env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const { database: where, ...buildOptions } = options;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-test-'));
  const embedded = (where ?? process.env.ATELIER_TEST_DATABASE ?? 'postgres') === 'embedded' || env.ATELIER_DATA_DIR !== undefined;
  const database = env.DATABASE_URL || embedded ? undefined : await appDatabase();
  if (database) env = { DATABASE_URL: database.url, ...env };
  else if (!env.DATABASE_URL) await seedEmbeddedDatabase(dataDir);
  // A test that stops its app with a request still open (a client it abandoned) waits at most 2 s for it.
  const config = loadConfig({
    PORT: '0',
    ATELIER_DATA_DIR: dataDir,
    ATELIER_LOG_LEVEL: 'silent',
    ATELIER_TICK_MS: '100',
    ATELIER_SHUTDOWN_GRACE_SECONDS: '2',
    ...env,
  });
  const app = await buildApp(config, buildOptions);
  const url = await app.start();
  const api = apiClient(url, app.adminToken);
  return {
    app,
    url,
    api,
    dataDir,
    databaseUrl: config.databaseUrl,
    databaseEnv: { ATELIER_DATA_DIR: config.dataDir, ...(config.databaseUrl ? { DATABASE_URL: config.databaseUrl } : {}) },
    async publishFixture(name, tags) {
      const archive = await packDirectory(path.join(fixturesDir, 'modules', name));
      const result = await api.upload(PUBLISH, { tags: tags ?? ['latest'] }, 'artifact', archive);
      if (result.errors) throw new Error(`publishing ${name}: ${JSON.stringify(result.errors)}`);
      return result.data.publishModuleVersion.version;
    },
    async createWorkflow(spec) {
      const text = typeof spec === 'string' ? spec : JSON.stringify(spec);
      return (await api.gql(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created workflow { id name } version { version } } }`, { spec: text }))
        .createWorkflow;
    },
    async user(name, role = 'member') {
      const { createUser } = await api.gql(`mutation ($n: String!, $r: Role) { createUser(name: $n, role: $r) { token } }`, { n: name, r: role });
      return Object.assign(apiClient(url, createUser.token), { token: createUser.token as string });
    },
    async team(name, members, namespaces = []) {
      await api.gql(`mutation ($n: String!) { createTeam(name: $n) { id } }`, { n: name });
      for (const member of members)
        await api.gql(`mutation ($t: String!, $i: String!) { setTeamMember(team: $t, identity: $i) { id } }`, { t: name, i: member });
      for (const namespace of namespaces)
        await api.gql(`mutation ($ns: String!, $t: String!) { assignNamespace(namespace: $ns, team: $t) { id } }`, { ns: namespace, t: name });
    },
    async stop() {
      await app.stop();
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
